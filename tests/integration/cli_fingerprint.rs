//! `helloguard fingerprint` as a user runs it: real process, stdin/files, exit codes.
use crate::common;

use common::binary::run;
use common::*;

fn chrome_example() -> Vec<u8> {
    let extensions = vec![
        (0x0000, sni("example.com")),
        (0x0010, alpn(&[b"h2", b"http/1.1"])),
        (0x002b, versions(&[0x0304, 0x0303])),
        (0x000d, u16_list(&[0x0403, 0x0804])),
        (0x0015, vec![0; 20]),
    ];
    build_hello(0x0303, &[0x1301, 0x1302], &extensions)
}

#[test]
fn prints_one_json_object_from_records_hex_and_files() {
    let message = chrome_example();
    let stream = records(&message, 30);
    let from_raw = run(&["fingerprint"], &stream);
    assert!(from_raw.status.success(), "{}", String::from_utf8_lossy(&from_raw.stderr));
    let json: serde_json::Value = serde_json::from_slice(&from_raw.stdout).unwrap();
    assert_eq!(json["sni"], "example.com");
    assert_eq!(json["alpn"], "h2");
    assert_eq!(json["tls_version"], "TLS 1.3");
    assert_eq!(json["transport"], "tcp");
    assert_eq!(json["ja3_full"], "771,4865-4866,0-16-43-13-21,,");
    let ja4 = json["ja4"].as_str().unwrap();
    let stable = json["ja4_stable"].as_str().unwrap();
    assert!(ja4.starts_with("t13d0205h2_"), "{ja4}");
    assert!(stable.starts_with("t13d0204h2_"), "padding is not counted: {stable}");
    for key in ["ja3", "ja3n", "ja4_r", "ja4_o", "ja4_ro"] {
        assert!(json[key].is_string(), "{key}");
    }

    // The bare message as spaced hex, from a file, gives the same object.
    let spaced: String = hex::encode(&message)
        .as_bytes()
        .chunks(8)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" \n");
    let path = std::env::temp_dir().join(format!("helloguard-cli-{}.hex", std::process::id()));
    std::fs::write(&path, spaced).unwrap();
    let from_hex = run(&["fingerprint", "--hex", path.to_str().unwrap()], b"");
    std::fs::remove_file(&path).ok();
    assert!(from_hex.status.success());
    assert_eq!(from_hex.stdout, from_raw.stdout);

    let quic = run(&["fingerprint", "--transport", "quic"], &message);
    let json: serde_json::Value = serde_json::from_slice(&quic.stdout).unwrap();
    assert!(json["ja4"].as_str().unwrap().starts_with("q13"));
}

#[test]
fn bad_input_is_one_line_and_status_2() {
    let message = chrome_example();
    let cases: [(&[&str], Vec<u8>, &str); 6] = [
        (&["fingerprint"], b"GET / HTTP/1.1\r\n\r\n".to_vec(), "not a TLS handshake record (first byte 0x47)"),
        (&["fingerprint"], vec![], "empty input"),
        (
            &["fingerprint"],
            records(&message, 4096)[..40].to_vec(),
            "input ends after 40 bytes, before the ClientHello is complete",
        ),
        (&["fingerprint", "--hex"], b"16 03 zz".to_vec(), "input is not hex text"),
        (&["fingerprint"], vec![0x80, 0x2e, 0x01, 0x03, 0x01], "SSLv2-format ClientHello"),
        (&["fingerprint"], vec![1, 0, 0, 2, 3, 3], "malformed ClientHello: random is truncated"),
    ];
    for (args, input, message) in cases {
        let out = run(args, &input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{message}: {stderr}");
        assert!(stderr.contains(message), "expected {message:?} in {stderr:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let missing = run(&["fingerprint", "/nonexistent/hello.bin"], b"");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading /nonexistent/hello.bin"));
}
