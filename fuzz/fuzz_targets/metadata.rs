//! Fuzz target `metadata`: arbitrary JSON into the CONTRACT §2 validator, and arbitrary bytes
//! into the stored-map reader. It must never panic; every error's message must be one of the
//! contract's messages (listed here verbatim, not taken from the library); an accepted map must
//! satisfy every limit; a failed merge must leave the map untouched; the reader must agree with
//! the JSON path.
#![no_main]

use helloguard::session::Metadata;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// CONTRACT §2 inner messages, verbatim.
const CONTRACT_MESSAGES: [&str; 9] = [
    "Invalid metadata: Metadata must be an object",
    "Invalid metadata: Metadata must not contain more than 25 entries",
    "Invalid metadata: Metadata key must be a string",
    "Invalid metadata: All metadata keys must be at most 255 characters long",
    r"Invalid metadata: Metadata keys must not contain null bytes (\x00)",
    "Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens",
    "Invalid metadata: Metadata value must be a string",
    "Invalid metadata: All metadata values must be at most 255 characters long",
    r"Invalid metadata: Metadata values must not contain null bytes (\x00)",
];

/// CONTRACT §6.5: what the API shows for count and length violations.
const API_LIMITS: &str = "Metadata must not exceed 25 entries. Each key and value must be ≤ 255 characters.";

fn check_valid(m: &Metadata) {
    assert!(m.len() <= 25);
    for (k, v) in m.iter() {
        assert!(!k.is_empty() && k.len() <= 255);
        assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert!(v.encode_utf16().count() <= 255);
        assert!(!v.contains('\0'));
    }
}

fn check_error(e: &helloguard::session::MetadataError) {
    let message = e.to_string();
    assert!(CONTRACT_MESSAGES.contains(&message.as_str()), "not a contract message: {message}");
    let api = e.api_message();
    assert!(api == API_LIMITS || api == message, "bad API message: {api}");
}

fuzz_target!(|data: &[u8]| {
    // As a stored map read back (the stores' path, straight into the flat form): what it accepts
    // is valid, reads back the same once written, and is what the JSON path builds.
    let read = serde_json::from_slice::<Metadata>(data);
    if let Ok(m) = &read {
        check_valid(m);
        let written = serde_json::to_string(m).expect("a map serializes");
        assert_eq!(serde_json::from_str::<Metadata>(&written).ok().as_ref(), Some(m), "{written}");
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        assert!(read.is_err(), "read a map from a document that is not JSON");
        return;
    };
    if let Ok(m) = &read {
        assert_eq!(Metadata::from_json(&value).as_ref(), Ok(m), "the stored path and the JSON path disagree");
    }
    // As a whole replacement map (API PATCH).
    match Metadata::from_json(&value) {
        Ok(m) => check_valid(&m),
        Err(e) => check_error(&e),
    }
    // As a change merged into a non-empty valid map (set/delete), which must be atomic.
    let mut base = Metadata::new();
    for i in 0..20 {
        base.set(&format!("k{i}"), "v").unwrap_or_default();
    }
    let before = base.clone();
    match base.merge_json(&value) {
        Ok(()) => check_valid(&base),
        Err(e) => {
            check_error(&e);
            assert_eq!(base, before, "a failed merge changed the map");
        }
    }
    // The same string pairs through the internal-caller API agree with the JSON path.
    if let Value::Object(object) = &value {
        if object.values().all(Value::is_string) {
            let pairs = object.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()));
            let from_pairs = Metadata::from_pairs(pairs);
            assert_eq!(from_pairs, Metadata::from_json(&value));
            if let Err(e) = from_pairs {
                check_error(&e);
            }
        }
    }
});
