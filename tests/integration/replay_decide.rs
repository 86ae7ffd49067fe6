//! `helloguard replay --decide` as a user runs it: each replayed hello is a login of the session
//! named by `--session-key`, decided by the engine with `--compare`. The decision sequences on
//! `latest.pcapng` (one host: Chrome, a TLS 1.2 client, Chrome resuming TLS 1.3, Chrome, Chrome)
//! are the contract's case for `ja4_stable` over `ja4` and `ja3`.

use crate::common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_helloguard");

/// `ja4_stable` of Chrome in `latest.pcapng` (FINGERPRINTS.md §5).
const CHROME_JA4_STABLE: &str = "t13d1514h2_8daaf6152771_59204b37da4c";

fn foxio(vectors: &Path, name: &str) -> PathBuf {
    vectors.join("foxio/pcap").join(name)
}

/// Runs `helloguard replay` and returns the JSON records and stderr; fails unless it exits 0.
fn replay(args: &[&str], pcaps: &[impl AsRef<OsStr>]) -> (Vec<Value>, String) {
    let output = Command::new(BIN).arg("replay").args(args).args(pcaps).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "replay {args:?} failed: {stderr}");
    let records = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    (records, stderr)
}

fn field<'a>(records: &'a [Value], name: &str) -> Vec<&'a str> {
    records.iter().map(|r| r[name].as_str().unwrap_or_else(|| panic!("{name} missing in {r}"))).collect()
}

#[test]
fn latest_decisions_per_compare_key() {
    let Some(vectors) = common::vectors() else { return };
    let latest = foxio(&vectors, "latest.pcapng");
    for (compare, expected, summary) in [
        (
            "ja4_stable",
            ["bind", "challenge", "allow", "allow", "allow"],
            "replay: decisions: allow 3, bind 1, challenge 1, skipped 0",
        ),
        ("ja4", ["bind", "challenge", "challenge", "allow", "allow"], "allow 2, bind 1, challenge 2, skipped 0"),
        ("ja3n", ["bind", "challenge", "challenge", "allow", "allow"], "allow 2, bind 1, challenge 2, skipped 0"),
        (
            "ja3",
            ["bind", "challenge", "challenge", "challenge", "challenge"],
            "allow 0, bind 1, challenge 4, skipped 0",
        ),
    ] {
        let (records, stderr) = replay(&["--decide", "--session-key", "client-ip", "--compare", compare], &[&latest]);
        assert_eq!(field(&records, "decision"), expected, "--compare {compare}");
        assert!(stderr.contains(summary), "--compare {compare}: {stderr}");
        assert!(records.iter().all(|r| r["session_key"] == "172.16.225.48"), "one host");
        // The first hello binds with nothing stored; every later one is compared with the first's value.
        assert_eq!(records[0]["reason"], "first_binding");
        assert_eq!(records[0]["stored"], Value::Null);
        let bound = records[0][compare].as_str().unwrap();
        for record in &records[1..] {
            assert_eq!(record["stored"], bound, "--compare {compare}: {record}");
            let reason = if record["decision"] == "allow" { "fingerprint_match" } else { "fingerprint_mismatch" };
            assert_eq!(record["reason"], reason);
        }
    }

    // The default is client-ip and ja4_stable; the one challenge is the TLS 1.2 client.
    let (records, _) = replay(&["--decide"], &[latest]);
    assert_eq!(field(&records, "decision"), ["bind", "challenge", "allow", "allow", "allow"]);
    assert_eq!(records[1]["ja4"], "t12d190800_d83cc789557e_7af1ed941c26");
    assert_eq!(records[1]["stored"], CHROME_JA4_STABLE);
}

#[test]
fn json_and_table_show_the_decision() {
    let Some(vectors) = common::vectors() else { return };
    let latest = foxio(&vectors, "latest.pcapng");
    let output = Command::new(BIN).args(["replay", "--decide", "--format", "json"]).arg(&latest).output().unwrap();
    let array: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(field(&array, "decision"), ["bind", "challenge", "allow", "allow", "allow"]);

    let output = Command::new(BIN).args(["replay", "--decide", "--format", "table"]).arg(&latest).output().unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    for name in ["decision", "reason", "session_key", "stored"] {
        assert!(lines[0].contains(name), "{name} missing in the header: {}", lines[0]);
    }
    assert!(lines[1].contains(" bind ") && lines[1].contains(" first_binding "), "{}", lines[1]);
    assert!(lines[2].contains(" challenge ") && lines[2].ends_with(CHROME_JA4_STABLE), "{}", lines[2]);
}

#[test]
fn quic_and_dtls_hellos_are_skipped() {
    let Some(vectors) = common::vectors() else { return };
    let pcaps = ["tls3.pcapng", "quic-tls-handshake.pcapng", "dtls-udp.notest.cap"].map(|n| foxio(&vectors, n));
    let (records, stderr) = replay(&["--decide"], &pcaps);
    let udp: Vec<&Value> = records.iter().filter(|r| r["transport"] != "tcp").collect();
    assert!(udp.iter().filter(|r| r["transport"] == "quic").count() >= 7, "{records:?}");
    assert!(udp.iter().any(|r| r["transport"] == "dtls"), "{records:?}");
    for record in &udp {
        assert_eq!((&record["decision"], &record["reason"]), (&"skipped".into(), &"not_tcp".into()), "{record}");
    }
    // TLS over TCP in the same capture is decided: Chrome on one host binds once, then matches.
    let tcp: Vec<Value> = records.iter().filter(|r| r["transport"] == "tcp").cloned().collect();
    assert_eq!(field(&tcp, "decision"), ["bind", "allow", "allow", "allow", "allow", "allow", "allow"]);
    assert!(stderr.contains(&format!("skipped {}", udp.len())), "{stderr}");
}

#[test]
fn session_key_sni_and_flow() {
    let Some(vectors) = common::vectors() else { return };
    let tls3 = foxio(&vectors, "tls3.pcapng");
    let (records, _) = replay(&["--decide", "--session-key", "sni"], &[&tls3]);
    let tcp: Vec<Value> = records.iter().filter(|r| r["transport"] == "tcp").cloned().collect();
    assert!(tcp.iter().all(|r| r["session_key"] == r["sni"]), "{tcp:?}");
    assert_eq!(field(&tcp, "session_key")[..2], ["darksail.ai", "rsms.me"]);
    assert_eq!(field(&tcp, "decision"), ["bind", "bind", "allow", "allow", "allow", "allow", "allow"]);

    // With one session remembered, rsms.me evicts darksail.ai, which then binds afresh.
    let (records, _) = replay(&["--decide", "--session-key", "sni", "--max-sessions", "1"], &[&tls3]);
    let tcp: Vec<Value> = records.iter().filter(|r| r["transport"] == "tcp").cloned().collect();
    assert_eq!(field(&tcp, "decision"), ["bind", "bind", "bind", "allow", "allow", "allow", "allow"]);

    // A hello without SNI has no session under `sni`.
    let (records, _) = replay(&["--decide", "--session-key", "sni"], &[foxio(&vectors, "https-connect.pcap")]);
    assert_eq!(records.len(), 1);
    assert_eq!((&records[0]["decision"], &records[0]["reason"]), (&"skipped".into(), &"no_sni".into()));
    assert_eq!(records[0]["session_key"], Value::Null);

    // Each connection is its own session under `flow`: every TCP hello binds.
    let (records, _) = replay(&["--decide", "--session-key", "flow"], &[foxio(&vectors, "latest.pcapng"), tls3]);
    let tcp: Vec<&Value> = records.iter().filter(|r| r["transport"] == "tcp").collect();
    assert_eq!(tcp.len(), 12);
    for record in tcp {
        assert_eq!(record["decision"], "bind");
        let key = format!(
            "{}:{} -> {}:{}",
            record["src"].as_str().unwrap(),
            record["src_port"],
            record["dst"].as_str().unwrap(),
            record["dst_port"]
        );
        assert_eq!(record["session_key"], key.as_str());
    }
}

#[test]
fn retry_hello_is_skipped() {
    let hrr = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/openssl-hrr.pcapng");
    let (records, _) = replay(&["--decide", "--all-hellos"], &[hrr]);
    assert_eq!(field(&records, "decision"), ["bind", "skipped"]);
    assert_eq!(records[1]["reason"], "retry_hello");
}

#[test]
fn without_decide_records_are_unchanged() {
    let hrr = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/openssl-tls13-resumed.pcap");
    let (records, stderr) = replay(&[], &[&hrr]);
    assert_eq!(records.len(), 2);
    for record in &records {
        for name in ["decision", "reason", "session_key", "stored"] {
            assert!(record.get(name).is_none(), "{name} in {record}");
        }
    }
    assert!(!stderr.contains("decisions"), "{stderr}");

    // The decision flags need --decide.
    let output = Command::new(BIN).args(["replay", "--compare", "ja3"]).arg(&hrr).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn actions_fold_into_the_replayed_decisions() {
    let Some(vectors) = common::vectors() else { return };
    let latest = foxio(&vectors, "latest.pcapng");
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("deny.js");
    std::fs::write(
        &deny,
        "exports.onExecutePostLogin = async (event, api) => {\n  if (event.security_context.ja4.startsWith('t12')) api.access.deny('TLS 1.2 is closed');\n};\n",
    )
    .unwrap();
    let (records, stderr) = replay(&["--decide", "--actions", deny.to_str().unwrap()], &[&latest]);
    assert_eq!(field(&records, "decision"), ["bind", "deny", "allow", "allow", "allow"]);
    assert_eq!(records[1]["reason"], "action_deny");
    assert!(stderr.contains("deny 1"), "{stderr}");

    // The adaptive example comparing ja3, as the reference does: every later Chrome hello has
    // another extension order, so another ja3, and is challenged by the Action; the TLS 1.2
    // client is challenged by the engine already (its reason stays).
    let ja3 = common::adaptive_action(dir.path(), "ja3");
    let both = format!("{},{}", ja3.display(), deny.display());
    let (records, _) = replay(&["--decide", "--actions", &both], &[&latest]);
    assert_eq!(field(&records, "decision"), ["bind", "deny", "challenge", "challenge", "challenge"]);
    assert_eq!(
        field(&records, "reason"),
        ["first_binding", "action_deny", "action_challenge", "action_challenge", "action_challenge"]
    );
}
