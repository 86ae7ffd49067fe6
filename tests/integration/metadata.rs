//! CONTRACT §2 through the public API: every message verbatim, validation order, the 25-entry and
//! 255-UTF-16-unit limits (non-ASCII included), JSON typing (never coerced, `null` deletes), the
//! §6.5 API mapping and atomicity of every edit.

use helloguard::session::metadata::{LIMITS_API_MESSAGE, MAX_ENTRIES};
use helloguard::session::{Metadata, MetadataError, RecordKind};
use serde_json::json;

fn entries(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("k{i:02}"), "v".to_owned())).collect()
}

#[test]
fn every_message_is_verbatim() {
    let expected = [
        (MetadataError::NotAnObject, "Invalid metadata: Metadata must be an object"),
        (MetadataError::TooManyEntries, "Invalid metadata: Metadata must not contain more than 25 entries"),
        (MetadataError::KeyNotString, "Invalid metadata: Metadata key must be a string"),
        (MetadataError::KeyTooLong, "Invalid metadata: All metadata keys must be at most 255 characters long"),
        (MetadataError::KeyContainsNul, r"Invalid metadata: Metadata keys must not contain null bytes (\x00)"),
        (
            MetadataError::KeyCharset,
            "Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens",
        ),
        (MetadataError::ValueNotString, "Invalid metadata: Metadata value must be a string"),
        (MetadataError::ValueTooLong, "Invalid metadata: All metadata values must be at most 255 characters long"),
        (MetadataError::ValueContainsNul, r"Invalid metadata: Metadata values must not contain null bytes (\x00)"),
    ];
    assert_eq!(expected.len(), MetadataError::ALL.len());
    for (error, message) in expected {
        assert_eq!(error.to_string(), message);
        assert!(!message.contains('\0'), "never a real NUL");
    }
}

#[test]
fn each_check_fires_on_its_input() {
    let cases: Vec<(serde_json::Value, MetadataError)> = vec![
        (json!("x"), MetadataError::NotAnObject),
        (json!(["a"]), MetadataError::NotAnObject),
        (json!(null), MetadataError::NotAnObject),
        (
            serde_json::Value::Object(entries(26).into_iter().map(|(k, v)| (k, json!(v))).collect()),
            MetadataError::TooManyEntries,
        ),
        (json!({ "k".repeat(256): "v" }), MetadataError::KeyTooLong),
        (json!({ "a\u{0}b": "v" }), MetadataError::KeyContainsNul),
        (json!({ "a b": "v" }), MetadataError::KeyCharset),
        (json!({ "": "v" }), MetadataError::KeyCharset),
        (json!({ "é": "v" }), MetadataError::KeyCharset),
        (json!({ "k": 1 }), MetadataError::ValueNotString),
        (json!({ "k": true }), MetadataError::ValueNotString),
        (json!({ "k": ["admin"] }), MetadataError::ValueNotString),
        (json!({ "k": {"a": "b"} }), MetadataError::ValueNotString),
        (json!({ "k": "v".repeat(256) }), MetadataError::ValueTooLong),
        (json!({ "k": "a\u{0}b" }), MetadataError::ValueContainsNul),
    ];
    for (input, expected) in cases {
        assert_eq!(Metadata::from_json(&input), Err(expected), "input {input}");
    }
}

#[test]
fn first_failure_wins_in_contract_order_then_map_order() {
    // Count (#2) before any entry check.
    let mut too_many: serde_json::Map<String, serde_json::Value> =
        entries(25).into_iter().map(|(k, v)| (k, json!(v))).collect();
    too_many.insert("bad key".into(), json!(1));
    assert_eq!(Metadata::from_json(&json!(too_many)), Err(MetadataError::TooManyEntries));
    // Within an entry: key length (#4) before NUL (#5) before charset (#6).
    let long_nul_key = format!("{}\u{0} ", "k".repeat(256));
    assert_eq!(Metadata::from_json(&json!({ long_nul_key: "v" })), Err(MetadataError::KeyTooLong));
    assert_eq!(Metadata::from_json(&json!({ "a\u{0} ": "v" })), Err(MetadataError::KeyContainsNul));
    // Key checks (#6) before the value type (#7) of the same entry.
    assert_eq!(Metadata::from_json(&json!({ "a b": 5 })), Err(MetadataError::KeyCharset));
    // Value length (#8) before value NUL (#9).
    let long_nul = format!("{}\u{0}", "v".repeat(255));
    assert_eq!(Metadata::from_json(&json!({ "k": long_nul })), Err(MetadataError::ValueTooLong));
    // Map order is key order: "a" is checked before "b", whatever the document order.
    let doc: serde_json::Value = serde_json::from_str(r#"{"b": 1, "a": "x\u0000"}"#).unwrap();
    assert_eq!(Metadata::from_json(&doc), Err(MetadataError::ValueContainsNul));
    let doc: serde_json::Value = serde_json::from_str(r#"{"b": "x\u0000", "a": 1}"#).unwrap();
    assert_eq!(Metadata::from_json(&doc), Err(MetadataError::ValueNotString));
}

#[test]
fn limits_are_inclusive_and_counted_in_utf16_units() {
    assert!(Metadata::from_pairs(entries(MAX_ENTRIES)).is_ok());
    assert_eq!(Metadata::from_pairs(entries(26)), Err(MetadataError::TooManyEntries));

    let key = "k".repeat(255);
    assert!(Metadata::from_pairs([(key.as_str(), "v")]).is_ok());
    // '€' is one UTF-16 unit (three UTF-8 bytes): 255 of them fit.
    let euros = "€".repeat(255);
    assert_eq!(euros.len(), 765);
    assert!(Metadata::from_pairs([("k", euros.as_str())]).is_ok());
    assert_eq!(Metadata::from_pairs([("k", "€".repeat(256))]), Err(MetadataError::ValueTooLong));
    // '😀' is a surrogate pair: 127 = 254 units fit, 128 = 256 units fail, though only 128 chars.
    assert!(Metadata::from_pairs([("k", "😀".repeat(127))]).is_ok());
    assert_eq!(Metadata::from_pairs([("k", "😀".repeat(128))]), Err(MetadataError::ValueTooLong));
    assert!(Metadata::from_pairs([("k", format!("{}a", "😀".repeat(127)))]).is_ok());
    // A non-ASCII key fails the charset, but length is checked first, in UTF-16 units.
    assert_eq!(Metadata::from_pairs([("é".repeat(255), "v")]), Err(MetadataError::KeyCharset));
    assert_eq!(Metadata::from_pairs([("é".repeat(256), "v")]), Err(MetadataError::KeyTooLong));
}

#[test]
fn null_deletes_and_nothing_is_coerced() {
    let replaced = Metadata::from_json(&json!({"a": "1", "b": null})).unwrap();
    assert_eq!(replaced.iter().collect::<Vec<_>>(), vec![("a", "1")]);
    assert!(Metadata::from_json(&json!({})).unwrap().is_empty());
    // 25 strings plus nulls: the nulls are not entries.
    let mut map: serde_json::Map<String, serde_json::Value> =
        entries(25).into_iter().map(|(k, v)| (k, json!(v))).collect();
    map.insert("gone".into(), json!(null));
    assert_eq!(Metadata::from_json(&json!(map)).unwrap().len(), 25);

    let mut m = Metadata::from_pairs([("a", "1"), ("b", "2")]).unwrap();
    m.merge_json(&json!({"a": null, "c": "3"})).unwrap();
    assert_eq!(m.iter().collect::<Vec<_>>(), vec![("b", "2"), ("c", "3")]);
    assert_eq!(m.merge_json(&json!({"d": 4})), Err(MetadataError::ValueNotString));
    assert_eq!(m.merge_json(&json!({"d": 4.5})), Err(MetadataError::ValueNotString));
    assert_eq!(m.merge_json(&json!("x")), Err(MetadataError::NotAnObject));
}

#[test]
fn every_edit_is_atomic() {
    let original = Metadata::from_pairs(entries(24)).unwrap();

    let mut m = original.clone();
    assert_eq!(m.set("bad key", "v"), Err(MetadataError::KeyCharset));
    assert_eq!(m, original);
    assert_eq!(m.set("k99", &"v".repeat(256)), Err(MetadataError::ValueTooLong));
    assert_eq!(m, original);

    // One good and one bad write: neither lands.
    assert_eq!(m.merge([("ok", "1"), ("k00", "bad\u{0}")]), Err(MetadataError::ValueContainsNul));
    assert_eq!(m, original);
    // The 26th entry fails the whole merge, even though each key alone would fit.
    assert_eq!(m.merge([("x1", "1"), ("x2", "2")]), Err(MetadataError::TooManyEntries));
    assert_eq!(m, original);
    // A JSON change whose later entry is invalid leaves the map as it was.
    assert_eq!(m.merge_json(&json!({"k00": null, "k01": 7})), Err(MetadataError::ValueNotString));
    assert_eq!(m, original);

    // A delete in the same change frees the slot the set needs.
    m.merge_json(&json!({"k00": null, "new1": "a", "k01": null, "new2": "b"})).unwrap();
    assert_eq!(m.len(), 24);
    m.set("x", "y").unwrap();
    assert_eq!(m.len(), 25);
    assert_eq!(m.delete("x").as_deref(), Some("y"));
    m.evict(["new1", "new2", "absent"]);
    assert_eq!(m.len(), 22);
}

#[test]
fn serde_round_trip_validates() {
    let m = Metadata::from_pairs([("ja4_stable", "t13d1515h2_8daaf6152771_f37e75b10bcc")]).unwrap();
    let text = serde_json::to_string(&m).unwrap();
    assert_eq!(text, r#"{"ja4_stable":"t13d1515h2_8daaf6152771_f37e75b10bcc"}"#);
    assert_eq!(serde_json::from_str::<Metadata>(&text).unwrap(), m);
    assert_eq!(serde_json::to_string(&Metadata::new()).unwrap(), "{}");
    assert!(serde_json::from_str::<Metadata>(r#"{"a b":"x"}"#).is_err());
}

#[test]
fn api_messages_follow_6_5() {
    assert_eq!(LIMITS_API_MESSAGE, "Metadata must not exceed 25 entries. Each key and value must be ≤ 255 characters.");
    for error in MetadataError::ALL {
        let api = error.api_message();
        match error {
            MetadataError::TooManyEntries | MetadataError::KeyTooLong | MetadataError::ValueTooLong => {
                assert_eq!(api, LIMITS_API_MESSAGE)
            }
            other => assert_eq!(api, other.to_string()),
        }
    }
    assert_eq!(
        RecordKind::Session.wrap(&MetadataError::KeyCharset),
        "Failed to set session metadata: Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens"
    );
    assert_eq!(
        RecordKind::RefreshToken.wrap(&MetadataError::ValueTooLong),
        "Failed to set refresh token metadata: Invalid metadata: All metadata values must be at most 255 characters long"
    );
    assert_eq!(RecordKind::Session.missing_message(), "Cannot set metadata on a session that does not exist.");
    assert_eq!(
        RecordKind::RefreshToken.missing_message(),
        "Cannot set metadata on a refresh token that does not exist."
    );
}

/// A stored map is read straight into its flat form; whatever order or repetition a document has,
/// the result is the map `from_json` builds from the same document, and so is the first failure.
#[test]
fn reading_a_document_equals_validating_it_as_json() {
    let long = "é".repeat(256);
    let documents = [
        r#"{}"#.to_owned(),
        r#"{"ja3":"a","ja4":"b","ja4_stable":"c"}"#.to_owned(),
        r#"{"ja4_stable":"c","ja3":"a","ja4":"b"}"#.to_owned(),
        r#"{"a":"1","b":"2","a":"3"}"#.to_owned(),
        r#"{"b":"2","a":"1","b":"4"}"#.to_owned(),
        r#"{"q\"uote":"x","ok":"\u00e9\n\"\\"}"#.to_owned(),
        r#"{"ok":"\u00e9\n\"\\","k-1_":"\ud83d\ude00"}"#.to_owned(),
        r#"{"z":"1","a b":"2","c":"\u0000"}"#.to_owned(),
        r#"{"z":"\u0000","a b":"2"}"#.to_owned(),
        r#"{"a b":"2","z":"\u0000"}"#.to_owned(),
        format!(r#"{{"a":"x","b":"{long}"}}"#),
        format!(r#"{{"b":"{long}","a":"x"}}"#),
        format!(r#"{{"a":"{long}","a":"x"}}"#),
        r#"{"a":1}"#.to_owned(),
        r#"{"a":null}"#.to_owned(),
        r#"["a"]"#.to_owned(),
        format!("{{{}}}", (0..25).map(|i| format!(r#""k{i:02}":"v""#)).collect::<Vec<_>>().join(",")),
        format!("{{{}}}", (0..26).map(|i| format!(r#""k{i:02}":"v""#)).collect::<Vec<_>>().join(",")),
        format!("{{{}}}", (0..26).rev().map(|i| format!(r#""k{i:02}":"v""#)).collect::<Vec<_>>().join(",")),
        format!("{{{},\"k00\":\"w\"}}", (0..25).map(|i| format!(r#""k{i:02}":"v""#)).collect::<Vec<_>>().join(",")),
    ];
    for document in &documents {
        let read = serde_json::from_str::<Metadata>(document);
        let value: serde_json::Value = serde_json::from_str(document).unwrap();
        // A stored map holds strings only: anything else is a type error when read, before §2
        // (where `from_json`, the API's check, drops a `null` and reports other types in order).
        let only_strings = value.as_object().is_some_and(|o| o.values().all(|v| v.is_string()));
        match (read, Metadata::from_json(&value)) {
            (Err(read), _) if !only_strings => assert!(read.to_string().starts_with("invalid type"), "{read}"),
            (Ok(read), Ok(json)) => {
                assert_eq!(read, json, "{document}");
                assert_eq!(serde_json::to_string(&read).unwrap(), serde_json::to_string(&json).unwrap());
                assert_eq!(serde_json::from_str::<Metadata>(&serde_json::to_string(&read).unwrap()).unwrap(), read);
            }
            (Err(read), Err(json)) => assert!(read.to_string().contains(&json.to_string()), "{document}: {read}"),
            (read, json) => panic!("{document}: read {read:?}, from_json {json:?}"),
        }
    }
}

#[test]
fn edits_keep_the_map_in_order() {
    let mut m = Metadata::from_pairs([("m", "1"), ("c", "2"), ("x", "3")]).unwrap();
    m.set("a", "0").unwrap();
    m.merge([("z", "9"), ("c", "22")]).unwrap();
    assert_eq!(m.iter().collect::<Vec<_>>(), [("a", "0"), ("c", "22"), ("m", "1"), ("x", "3"), ("z", "9")]);
    assert_eq!(m.delete("m").as_deref(), Some("1"));
    assert_eq!(m.delete("m"), None);
    m.evict(["a", "z", "absent"]);
    assert_eq!(m.iter().collect::<Vec<_>>(), [("c", "22"), ("x", "3")]);
    assert_eq!((m.get("c"), m.get("x"), m.get("a"), m.len()), (Some("22"), Some("3"), None, 2));
    assert_eq!(m, Metadata::from_pairs([("x", "3"), ("c", "22")]).unwrap());
    assert_eq!(format!("{m:?}"), r#"{"c": "22", "x": "3"}"#);
}
