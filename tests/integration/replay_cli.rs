//! `helloguard replay` as a user runs it: output formats, the stderr summary, and exit status for
//! unreadable and truncated files.

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_helloguard");

fn pcap(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps").join(name)
}

fn replay(args: &[&std::ffi::OsStr]) -> (Output, String, String) {
    let output = Command::new(BIN).arg("replay").args(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (output, stdout, stderr)
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn formats_and_summary() {
    let file = pcap("openssl-tls13-resumed.pcap");
    let (out, jsonl, stderr) = replay(&[file.as_os_str()]);
    assert!(out.status.success());
    assert_eq!(jsonl.lines().count(), 2);
    for line in jsonl.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in [
            "pcap",
            "stream",
            "transport",
            "src",
            "dst",
            "src_port",
            "dst_port",
            "timestamp",
            "hello_index",
            "sni",
            "ja3",
            "ja3_full",
            "ja3n",
            "ja4",
            "ja4_r",
            "ja4_o",
            "ja4_ro",
            "ja4_stable",
        ] {
            assert!(record.get(key).is_some(), "{key} missing in {line}");
        }
    }
    assert!(stderr.contains("replay: 1 files, "), "{stderr}");
    assert!(stderr.contains(" 2 hellos"), "{stderr}");

    let (_, json, _) = replay(&["--format".as_ref(), "json".as_ref(), file.as_os_str()]);
    let array: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(array.len(), 2);

    let (_, table, _) = replay(&["--format".as_ref(), "table".as_ref(), file.as_os_str()]);
    assert_eq!(table.lines().count(), 3);
    assert!(table.lines().nth(1).unwrap().contains("helloguard.test"));
}

#[test]
fn unreadable_file_fails_but_the_others_are_replayed() {
    let garbage = scratch("not-a-capture.pcap", b"this is not a capture file at all");
    let good = pcap("openssl-tls12.pcap");
    let (out, stdout, stderr) = replay(&[garbage.as_os_str(), good.as_os_str(), "/no/such/file.pcap".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout.lines().count(), 1, "the readable file is still replayed");
    assert!(stderr.contains("not-a-capture.pcap: cannot read: not a pcap or pcapng file"), "{stderr}");
    assert!(stderr.contains("/no/such/file.pcap"), "{stderr}");
}

#[test]
fn truncated_last_packet_is_reported_and_the_rest_kept() {
    let bytes = std::fs::read(pcap("openssl-tls13-resumed.pcap")).unwrap();
    let cut = scratch("cut.pcap", &bytes[..bytes.len() - 10]);
    let (out, stdout, stderr) = replay(&[cut.as_os_str()]);
    assert!(out.status.success(), "a partly read file is no failure");
    assert_eq!(stdout.lines().count(), 2);
    assert!(stderr.contains("cut.pcap: record at byte "), "{stderr}");
    assert!(stderr.contains("cut short by the end of the file"), "{stderr}");
}
