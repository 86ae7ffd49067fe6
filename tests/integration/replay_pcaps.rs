//! Replays the project's own captures (`pcaps/`, made by `pcaps/make.sh` from real clients on
//! loopback) and compares every record with the committed `pcaps/expected.jsonl`, and every JA3
//! with tshark's own `tls.handshake.ja3` / `ja3_full` from `pcaps/tshark-ja3.tsv`.

use std::fs::File;
use std::path::Path;

use helloguard::pcap::{replay, Options, Record, Summary};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps");
const FILES: [&str; 5] =
    ["curl.pcap", "openssl-tls12.pcap", "openssl-tls13-resumed.pcap", "openssl-hrr.pcapng", "python-ssl.pcap"];

fn replay_all() -> Vec<Record> {
    let options = Options { all_hellos: true, ..Options::default() };
    let mut records = Vec::new();
    let mut summary = Summary::default();
    for name in FILES {
        let file = File::open(Path::new(DIR).join(name)).unwrap();
        replay(name, file, &options, &mut summary, &mut |r| records.push(r), &mut |_| {}).unwrap();
    }
    assert_eq!(summary.files, 5);
    records
}

#[test]
fn records_match_committed_expectations() {
    let expected: Vec<Value> = std::fs::read_to_string(Path::new(DIR).join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours: Vec<Value> = replay_all().iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    assert_eq!(ours.len(), expected.len());
    for (mut ours, mut want) in ours.into_iter().zip(expected) {
        // Timestamps are f64 seconds: compare to the microsecond, the rest byte for byte.
        let (a, b) = (ours["timestamp"].take(), want["timestamp"].take());
        assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-6, "{a} vs {b}");
        assert_eq!(ours, want);
    }
}

#[test]
fn ja3_agrees_with_tshark() {
    let records = replay_all();
    let tsv = std::fs::read_to_string(Path::new(DIR).join("tshark-ja3.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = tsv.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), records.len(), "tshark saw as many ClientHellos as the replay");
    for (row, record) in rows.iter().zip(&records) {
        assert_eq!(row[0], record.pcap);
        assert_eq!(row[1], record.src_port.to_string());
        assert_eq!(row[2], record.fingerprints.ja3_full, "{} port {}", row[0], row[1]);
        assert_eq!(row[3], record.fingerprints.ja3.as_str(), "{} port {}", row[0], row[1]);
    }
}

#[test]
fn resumption_and_retry_behave_as_documented() {
    let records = replay_all();
    let in_file = |name: &str| records.iter().filter(|r| r.pcap == name).collect::<Vec<_>>();
    // The resumed connection adds pre_shared_key: JA4 changes, ja4_stable does not.
    let resumed = in_file("openssl-tls13-resumed.pcap");
    assert_eq!(resumed.len(), 2);
    assert!(resumed[1].fingerprints.ja4_r.contains("0029"));
    assert_ne!(resumed[0].fingerprints.ja4, resumed[1].fingerprints.ja4);
    assert_eq!(resumed[0].fingerprints.ja4_stable, resumed[1].fingerprints.ja4_stable);
    // After the HelloRetryRequest the same connection sends hello 2.
    let hrr = in_file("openssl-hrr.pcapng");
    assert_eq!(hrr.iter().map(|r| r.hello_index).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(hrr[0].stream, hrr[1].stream);
}
