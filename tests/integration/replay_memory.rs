//! Peak memory of `helloguard replay` on hostile captures (`common::capture::hostile`): thousands
//! of connections holding partial hellos, out-of-order segments, fragmented QUIC CRYPTO streams and
//! DTLS fragments. Whatever a capture holds back, the process stays under 64 MiB with the default
//! limits, and the summary counts what was refused. Memory is the replay's peak RSS as GNU `time`
//! reports it (`%M`), measured, not timed. Not this process's own `wait4` rusage: a child started
//! with `posix_spawn` (vfork) shares this process's memory until it execs, and Linux carries that
//! high-water mark into the child's `ru_maxrss`, so the figure would be the test binary's peak
//! whenever that is the larger (CI once saw 236 MiB). `time` forks from a process of ~1 MiB.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_helloguard");
/// GNU time, which `.ci/run` installs.
const TIME: &str = "/usr/bin/time";
const LIMIT_KIB: i64 = 64 * 1024;
/// The replay's default connection table size.
const TABLE: u32 = 65_536;

/// Run `helloguard replay path` under GNU `time`: its exit status, peak RSS in KiB and stderr.
fn replay_peak(path: &Path) -> (i32, i64, String) {
    let report = scratch(&format!("{}.time", path.file_name().unwrap().to_string_lossy()));
    let output = Command::new(TIME)
        .args(["--format=%M", "--output"])
        .arg(&report)
        .args([BIN, "replay"])
        .arg(path)
        .stdout(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{TIME} (Debian package `time`) measures the replay's peak memory: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let status = output.status.code().unwrap_or_else(|| panic!("replay did not exit normally: {}", output.status));
    // `time` writes a line about a non-zero exit status before the figure.
    let text = std::fs::read_to_string(&report).unwrap();
    std::fs::remove_file(&report).unwrap();
    let peak_kib = text.lines().last().and_then(|l| l.trim().parse().ok());
    (status, peak_kib.unwrap_or_else(|| panic!("no peak RSS in {TIME}'s report {text:?}")), stderr)
}

/// The count after `reason ` in the summary's `skipped:` line.
fn skipped(stderr: &str, reason: &str) -> u64 {
    let line = stderr.lines().find(|l| l.starts_with("replay: skipped: ")).unwrap_or_default();
    line.split(", ")
        .find_map(|part| part.trim_start_matches("replay: skipped: ").strip_prefix(&format!("{reason} ")))
        .map_or(0, |n| n.parse().unwrap())
}

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn hostile_captures_stay_under_64_mib_and_report_what_they_refused() {
    // A few thousand connections per phase, then enough plain-text ones to fill the table while
    // 512 hellos are held: the most the replay keeps at once with its default limits.
    for flows in [2_000, 65_000] {
        let path = scratch(&format!("hostile-{flows}.pcap"));
        common::capture::hostile(&path, flows);
        let (status, peak_kib, stderr) = replay_peak(&path);
        std::fs::remove_file(&path).unwrap();
        eprintln!("{flows} connections per phase: peak RSS {peak_kib} KiB\n{stderr}");
        assert_eq!(status, 0, "{stderr}");
        assert!(peak_kib <= LIMIT_KIB, "peak RSS {peak_kib} KiB over {LIMIT_KIB} KiB with {flows} connections");
        assert!(stderr.contains(" 0 hellos"), "{stderr}");
        // The table holds 65 536 connections: the plain-text ones come first, the TCP hellos get
        // what is left. QUIC and DTLS come after the idle timeout, to an empty table.
        let tcp_hellos_in_table = u64::from(flows.min(TABLE - flows));
        assert_eq!(skipped(&stderr, "flow_table_full") > 0, tcp_hellos_in_table < u64::from(flows), "{stderr}");
        // Only 512 hellos are held at once: in the TCP, QUIC and DTLS phases, the rest are refused.
        let refused = tcp_hellos_in_table - 512 + 2 * (u64::from(flows) - 512);
        assert_eq!(skipped(&stderr, "too_many_open_hellos"), refused, "{stderr}");
        // The held ones go on to overflow their limits.
        assert_eq!(skipped(&stderr, "tcp_out_of_order_overflow"), 512, "{stderr}");
        assert_eq!(skipped(&stderr, "too_fragmented"), 2 * 512, "{stderr}");
        assert_eq!(skipped(&stderr, "record_too_large"), 1, "{stderr}");
    }
}
