//! The fingerprint core against the reference vectors in `../shared/vectors`.
use crate::common;

use common::*;
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, HelloReader, Progress, Transport};
use md5::{Digest, Md5};
use serde_json::Value;

const FORMS: [&str; 6] = ["ja4", "ja4_r", "ja4_o", "ja4_ro", "ja3", "ja3_full"];

fn forms(all: &fingerprint::All) -> [String; 6] {
    [
        all.ja4.to_string(),
        all.ja4_r.clone(),
        all.ja4_o.to_string(),
        all.ja4_ro.clone(),
        all.ja3.to_string(),
        all.ja3_full.clone(),
    ]
}

fn fingerprint_hex(hex_text: &str, transport: Transport, alpn: AlpnMode) -> fingerprint::All {
    let message = hex::decode(hex_text).unwrap();
    let hello = ClientHello::parse(&message, transport).unwrap();
    fingerprint::all(&hello, transport, alpn)
}

fn str_field<'v>(row: &'v Value, key: &str) -> &'v str {
    row[key].as_str().unwrap_or_else(|| panic!("missing {key} in {row}"))
}

#[test]
fn clienthellos_give_all_six_reference_values() {
    let Some(dir) = vectors() else { return };
    let rows = jsonl(&dir.join("clienthellos.jsonl"));
    assert_eq!(rows.len(), 113);
    let mut deviations = Vec::new();
    let mut compat_checked = 0;
    for row in &rows {
        let seen = &row["seen_in"][0];
        let transport: Transport = str_field(row, "transport").parse().unwrap();
        let all = fingerprint_hex(str_field(row, "handshake_hex"), transport, AlpnMode::Spec);
        for (form, got) in FORMS.iter().zip(forms(&all)) {
            assert_eq!(got, str_field(row, form), "{form} of {seen}");
        }
        // ja3n: the ja3 string with its extension field sorted numerically.
        let fields: Vec<&str> = all.ja3_full.split(',').collect();
        let mut extensions: Vec<u32> =
            fields[2].split('-').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        extensions.sort();
        let sorted = extensions.iter().map(u32::to_string).collect::<Vec<_>>().join("-");
        let ja3n_full = [fields[0], fields[1], &sorted, fields[3], fields[4]].join(",");
        assert_eq!(all.ja3n.to_string(), hex::encode(Md5::digest(ja3n_full.as_bytes())), "ja3n of {seen}");
        if let Some(disagreements) = row.get("disagreements").and_then(Value::as_object) {
            for (tool, value) in disagreements {
                deviations.push((seen.to_string(), tool.clone(), value.as_str().unwrap().to_string()));
            }
        }
        if let Some(compat) = row.get("alpn_compat") {
            let all = fingerprint_hex(str_field(row, "handshake_hex"), transport, AlpnMode::Compat);
            for (form, got) in FORMS[..4].iter().zip(forms(&all)) {
                assert_eq!(got, str_field(compat, form), "compat {form} of {seen}");
            }
            compat_checked += 1;
        }
    }
    // The documented deviations (FINGERPRINTS.md §3.6): the Python tool zeroes ja4_o's part c when
    // the only extension is SNI; the spec hashes "0000" to 9af15b336e6a, and so do we.
    assert_eq!(deviations.len(), 4, "{deviations:?}");
    for (seen, tool, theirs) in &deviations {
        assert_eq!(tool, "foxio_python_ja4_o", "{seen}");
        assert!(theirs.ends_with("_000000000000"), "{seen}: {theirs}");
    }
    assert_eq!(compat_checked, 1);
}

#[test]
fn ja4_stable_ignores_resumption_and_padding() {
    let Some(dir) = vectors() else { return };
    let rows = jsonl(&dir.join("clienthellos.jsonl"));
    // FINGERPRINTS.md §5: expected values listed there.
    let cases = [
        ("latest.pcapng", ":52938#", "t13d1516h2_8daaf6152771_9b887d9acb53", "t13d1514h2_8daaf6152771_59204b37da4c"),
        ("latest.pcapng", ":52936#", "t13d1516h2_8daaf6152771_e5627efa2ab1", "t13d1514h2_8daaf6152771_59204b37da4c"),
        ("latest.pcapng", ":52940#", "t13d1516h2_8daaf6152771_e5627efa2ab1", "t13d1514h2_8daaf6152771_59204b37da4c"),
        ("latest.pcapng", ":52941#", "t13d1516h2_8daaf6152771_e5627efa2ab1", "t13d1514h2_8daaf6152771_59204b37da4c"),
        ("tls3.pcapng", "", "q13d0311h3_55b375c5d22e_3512bcbbc9ec", "q13d0310h3_55b375c5d22e_cd85d2d88918"),
        ("tls3.pcapng", "", "q13d0310h3_55b375c5d22e_cd85d2d88918", "q13d0310h3_55b375c5d22e_cd85d2d88918"),
    ];
    for (pcap, port, ja4, stable) in cases {
        let row = rows
            .iter()
            .find(|r| {
                r["ja4"] == ja4
                    && r["seen_in"].as_array().unwrap().iter().any(|s| {
                        let s = s.as_str().unwrap();
                        s.starts_with(pcap) && s.contains(port)
                    })
            })
            .unwrap_or_else(|| panic!("no vector {pcap}{port} {ja4}"));
        let transport: Transport = str_field(row, "transport").parse().unwrap();
        let message = hex::decode(str_field(row, "handshake_hex")).unwrap();
        let hello = ClientHello::parse(&message, transport).unwrap();
        let binding = fingerprint::binding(&hello, transport, AlpnMode::Spec);
        assert_eq!(binding.ja4.as_str(), ja4);
        assert_eq!(binding.ja4_stable.as_str(), stable, "{pcap}{port}");
        assert_eq!(fingerprint::ja4_stable(&hello, transport, AlpnMode::Spec), binding.ja4_stable);
    }
}

#[test]
fn edge_cases() {
    let Some(dir) = vectors() else { return };
    let cases = json(&dir.join("edge/expected.json"));
    let mut checked = 0;
    for (name, case) in cases.as_object().unwrap() {
        let Some(hex_text) = case["client_hello_hex"].as_str() else {
            assert!(case["expected"].is_null(), "{name}");
            continue;
        };
        let expected = &case["expected"];
        let all = fingerprint_hex(hex_text, Transport::Tcp, AlpnMode::Spec);
        for (form, got) in FORMS.iter().zip(forms(&all)) {
            assert_eq!(got, str_field(expected, form), "{form} of {name}");
        }
        checked += 1;
    }
    assert_eq!(checked, 18);
}

/// The §8 worked example, rebuilt from its listed inputs (0x000d carries `signatures`, maybe none).
fn worked_example(signatures: &[u16]) -> Vec<u8> {
    let case = [
        0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b,
        0x000a, 0x0015,
    ];
    let ciphers = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f,
        0x0035,
    ];
    let extensions: Vec<(u16, Vec<u8>)> = case
        .iter()
        .map(|&k| {
            let data = match k {
                0x0010 => alpn(&[b"h2", b"http/1.1"]),
                0x002b => versions(&[0x0304, 0x0303]),
                0x000d => u16_list(signatures),
                other => minimal_data(other),
            };
            (k, data)
        })
        .collect();
    build_hello(0x0303, &ciphers, &extensions)
}

fn hex_list(value: &Value) -> Vec<u16> {
    value.as_array().unwrap().iter().map(|v| u16::from_str_radix(v.as_str().unwrap(), 16).unwrap()).collect()
}

#[test]
fn strings_json_ja4_cases() {
    let Some(dir) = vectors() else { return };
    let strings = json(&dir.join("strings.json"));
    let ja4_cases = strings["ja4"].as_array().unwrap();

    // The worked example: inputs listed, all four forms expected.
    let example = &ja4_cases[0];
    let inputs = &example["inputs"];
    let message = worked_example(&hex_list(&inputs["sigalgs_wire"]));
    let hello = ClientHello::parse(&message, Transport::Tcp).unwrap();
    assert_eq!(hello.cipher_suites.iter().collect::<Vec<_>>(), hex_list(&inputs["ciphers_wire"]));
    assert_eq!(hello.extensions.kinds().collect::<Vec<_>>(), hex_list(&inputs["extensions_wire"]));
    let all = fingerprint::all(&hello, Transport::Tcp, AlpnMode::Spec);
    for (form, got) in FORMS[..4].iter().zip(forms(&all)) {
        assert_eq!(got, str_field(example, form), "worked example {form}");
    }
    // FINGERPRINTS.md §8: removing padding and session_ticket; the earlier rule removed padding
    // only, which gives the retry value.
    assert_eq!(all.ja4_stable.as_str(), "t13d1514h2_8daaf6152771_59204b37da4c");
    let v1 = fingerprint::ja4_stable_v1_with_ticket(&hello, Transport::Tcp, AlpnMode::Spec);
    assert_eq!(v1.as_str(), "t13d1515h2_8daaf6152771_f37e75b10bcc");

    // Same extensions, no signature algorithms: part c has no trailing `_`.
    let no_sigs = &ja4_cases[1];
    let c_string = str_field(no_sigs, "c_string");
    assert_eq!(&hex::encode(sha2::Sha256::digest(c_string.as_bytes()))[..12], str_field(no_sigs, "c_hash"));
    let message = worked_example(&[]);
    let hello = ClientHello::parse(&message, Transport::Tcp).unwrap();
    let ja4 = fingerprint::ja4(&hello, Transport::Tcp, AlpnMode::Spec);
    assert_eq!(&ja4.as_str()[24..], str_field(no_sigs, "c_hash"));
    let ja4_r = fingerprint::ja4_r(&hello, Transport::Tcp, AlpnMode::Spec);
    assert!(ja4_r.ends_with(&format!("_{c_string}")), "{ja4_r}");

    // The stale headline is never what we produce.
    let stale = str_field(&ja4_cases[2], "c_hash");
    assert_ne!(&all.ja4.as_str()[24..], stale);

    // Chrome 152 with GREASE in signature_algorithms: rebuild it from its raw wire-order form,
    // adding GREASE to every list, and expect the published values.
    let grease_case = &ja4_cases[3];
    let ro = str_field(grease_case, "ja4_ro");
    let parts: Vec<&str> = ro.splitn(4, '_').collect();
    let parse_list = |s: &str| s.split(',').map(|v| u16::from_str_radix(v, 16).unwrap()).collect::<Vec<u16>>();
    let mut ciphers = vec![0x3a3a];
    ciphers.extend(parse_list(parts[1]));
    let mut signatures = vec![0x8a8a];
    signatures.extend(parse_list(parts[3]));
    let mut extensions = vec![(0x0a0a, vec![])];
    for kind in parse_list(parts[2]) {
        let data = match kind {
            0x0010 => alpn(&[b"h2"]),
            0x002b => versions(&[0x2a2a, 0x0304, 0x0303]),
            0x000d => u16_list(&signatures),
            other => minimal_data(other),
        };
        extensions.push((kind, data));
    }
    extensions.push((0xfafa, vec![0]));
    let message = build_hello(0x0303, &ciphers, &extensions);
    let hello = ClientHello::parse(&message, Transport::Tcp).unwrap();
    let all = fingerprint::all(&hello, Transport::Tcp, AlpnMode::Spec);
    for (form, got) in FORMS[..4].iter().zip(forms(&all)) {
        assert_eq!(got, str_field(grease_case, form), "sigalg GREASE {form}");
    }

    // The empty-hash sentinel: no cipher suites give twelve zeros in part b.
    let sentinel = &ja4_cases[4];
    assert_eq!(str_field(sentinel, "b_string"), "");
    let message = build_hello(0x0303, &[], &[]);
    let hello = ClientHello::parse(&message, Transport::Tcp).unwrap();
    let ja4 = fingerprint::ja4(&hello, Transport::Tcp, AlpnMode::Spec);
    assert_eq!(&ja4.as_str()[11..23], str_field(sentinel, "b_hash"));

    // The ALPN table, through whole hellos.
    let table = ja4_cases[5]["alpn_first_bytes_hex_to_code"].as_object().unwrap();
    assert_eq!(table.len(), 12);
    for (value_hex, code) in table {
        let value = hex::decode(value_hex).unwrap();
        let message = build_hello(0x0303, &[0x002f], &[(0x0010, alpn(&[&value, b"h2"]))]);
        let hello = ClientHello::parse(&message, Transport::Tcp).unwrap();
        let ja4 = fingerprint::ja4(&hello, Transport::Tcp, AlpnMode::Spec);
        assert_eq!(&ja4.as_str()[8..10], code.as_str().unwrap(), "ALPN {value_hex}");
    }
}

/// Rebuild a hello from a JA3 string (decimal fields) so the JA3 code runs on real bytes.
fn hello_from_ja3(ja3_full: &str) -> Vec<u8> {
    let fields: Vec<Vec<u16>> = ja3_full
        .split(',')
        .map(|f| f.split('-').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect())
        .collect();
    let (groups, formats) = (&fields[3], &fields[4]);
    let extensions: Vec<(u16, Vec<u8>)> = fields[2]
        .iter()
        .map(|&kind| {
            let data = match kind {
                0x000a => u16_list(groups),
                0x000b => {
                    let mut out = vec![formats.len() as u8];
                    out.extend(formats.iter().map(|&f| f as u8));
                    out
                }
                other => minimal_data(other),
            };
            (kind, data)
        })
        .collect();
    let mut message = build_hello(fields[0][0], &fields[1], &extensions);
    if extensions.is_empty() {
        // "no extensions" in the JA3 README means no extension block at all.
        let body_len = message.len() - 4 - 2;
        message.truncate(message.len() - 2);
        message[1..4].copy_from_slice(&(body_len as u32).to_be_bytes()[1..]);
    }
    message
}

#[test]
fn strings_json_ja3_and_ja3n_cases() {
    let Some(dir) = vectors() else { return };
    let strings = json(&dir.join("strings.json"));
    for case in strings["ja3"].as_array().unwrap() {
        let full = str_field(case, "ja3_full");
        let message = hello_from_ja3(full);
        let hello = ClientHello::parse(&message, Transport::Tcp).unwrap();
        assert_eq!(fingerprint::ja3_full(&hello), full);
        assert_eq!(fingerprint::ja3(&hello).as_str(), str_field(case, "ja3"), "{full}");
    }
    for case in strings["ja3n"].as_array().unwrap() {
        let message = hello_from_ja3(str_field(case, "ja3_full"));
        let hello = ClientHello::parse(&message, Transport::Tcp).unwrap();
        assert_eq!(fingerprint::ja3(&hello).as_str(), str_field(case, "ja3"));
        assert_eq!(fingerprint::ja3n_full(&hello), str_field(case, "ja3n_full"));
        assert_eq!(fingerprint::ja3n(&hello).as_str(), str_field(case, "ja3n"));
    }
}

#[test]
fn record_stream_and_bare_message_agree() {
    let Some(dir) = vectors() else { return };
    for row in jsonl(&dir.join("clienthellos.jsonl")).iter().filter(|r| r["transport"] == "tcp") {
        let message = hex::decode(str_field(row, "handshake_hex")).unwrap();
        let stream = records(&message, 16384);
        let mut reader = HelloReader::default();
        assert_eq!(reader.feed(&stream), Ok(Progress::Complete { consumed: stream.len() }));
        assert_eq!(reader.message(), Some(message.as_slice()));
    }
}

/// Firefox's fresh and resumed hellos as this project captured them (`pcaps/hellos/firefox-*.bin`,
/// `pcaps/capture_firefox.py`), against the values `nss/expected.json` gives for the same
/// Firefox build: one `ja4_stable`; the earlier rule's value of the resumed hello, session_ticket
/// counted, is the fresh hello's, so a binding stored under that rule is upgraded, not challenged.
#[test]
fn firefox_fresh_and_resumed_hellos_share_ja4_stable_and_upgrade() {
    use helloguard::engine::{decide, Event, Observed, Policy, Reason, Route, Verdict};
    use helloguard::session::Metadata;
    let Some(dir) = vectors() else { return };
    let expected = json(&dir.join("nss/expected.json"));
    let connections = expected["connections"].as_array().unwrap();
    let fresh_row = connections.iter().find(|c| c["resumed"] == false).unwrap();
    let resumed_row = connections.iter().find(|c| c["resumed"] == true).unwrap();
    let parse = |records: &[u8]| {
        let mut reader = HelloReader::default();
        assert!(matches!(reader.feed(records), Ok(Progress::Complete { .. })));
        reader.message().unwrap().to_vec()
    };
    let fresh_message = parse(include_bytes!("../../pcaps/hellos/firefox-fresh.bin"));
    let resumed_message = parse(include_bytes!("../../pcaps/hellos/firefox-resumed.bin"));
    let fresh = ClientHello::parse(&fresh_message, Transport::Tcp).unwrap();
    let resumed = ClientHello::parse(&resumed_message, Transport::Tcp).unwrap();
    assert!(fresh.extensions.kinds().any(|k| k == 0x0023) && !fresh.extensions.kinds().any(|k| k == 0x0029));
    assert!(resumed.extensions.kinds().any(|k| k == 0x0029) && !resumed.extensions.kinds().any(|k| k == 0x0023));
    let fresh_binding = fingerprint::binding(&fresh, Transport::Tcp, AlpnMode::Spec);
    let resumed_binding = fingerprint::binding(&resumed, Transport::Tcp, AlpnMode::Spec);
    assert_eq!(fresh_binding.ja4.as_str(), fresh_row["ja4"]);
    assert_eq!(resumed_binding.ja4.as_str(), resumed_row["ja4"]);
    assert_eq!(fresh_binding.ja4_stable.as_str(), fresh_row["ja4_stable"]);
    assert_eq!(resumed_binding.ja4_stable, fresh_binding.ja4_stable);
    assert_eq!(resumed_binding.ja4_stable_v1.as_str(), resumed_row["ja4_stable_v1_with_session_ticket"]);
    assert_eq!(fresh_binding.ja4_stable_v1.as_str(), fresh_row["ja4_stable_v1"]);

    // A session bound by the previous release on the fresh hello, met on the resumed one.
    let stored = Metadata::from_pairs([
        ("ja3", fresh_row["ja3"].as_str().unwrap()),
        ("ja4", fresh_row["ja4"].as_str().unwrap()),
        ("ja4_stable", fresh_row["ja4_stable_v1"].as_str().unwrap()),
    ])
    .unwrap();
    let observed = Observed {
        ja3: resumed_binding.ja3.as_str(),
        ja3n: "",
        ja4: resumed_binding.ja4.as_str(),
        ja4_stable: resumed_binding.ja4_stable.as_str(),
        ja4_stable_v1: resumed_binding.ja4_stable_v1.as_str(),
    };
    let policy = Policy::default();
    let event = Event {
        route: Route::Login,
        session_id: Some("ses_x"),
        refresh_token_id: None,
        stored: Some(&stored),
        observed: Some(observed),
    };
    let decision = decide(&event, &policy);
    assert_eq!((decision.verdict, decision.reason), (Verdict::Bind, Reason::BindingUpgraded));
    let written: Vec<_> = decision.writes.iter().collect();
    assert_eq!(written, [("ja3", observed.ja3), ("ja4", observed.ja4), ("ja4_stable", observed.ja4_stable)]);
    // A value that matches neither rule is a mismatch, never an upgrade.
    let other = Metadata::from_pairs([("ja4_stable", "t13d1617h2_86a278354501_000000000000")]).unwrap();
    let decision = decide(&Event { stored: Some(&other), ..event }, &policy);
    assert_eq!((decision.verdict, decision.reason), (Verdict::Challenge, Reason::FingerprintMismatch));
    // Comparing another key never upgrades.
    let ja4_policy = Policy { compare: helloguard::engine::CompareKey::Ja4, ..Policy::default() };
    let stored_ja4 = Metadata::from_pairs([("ja4", fresh_row["ja4"].as_str().unwrap())]).unwrap();
    let decision = decide(&Event { stored: Some(&stored_ja4), ..event }, &ja4_policy);
    assert_eq!(decision.reason, Reason::FingerprintMismatch);
}
