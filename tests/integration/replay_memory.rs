//! Peak memory of `helloguard replay` on hostile captures (`common::capture::hostile`): thousands
//! of connections holding partial hellos, out-of-order segments, fragmented QUIC CRYPTO streams and
//! DTLS fragments. Whatever a capture holds back, the process stays under 64 MiB with the default
//! limits, and the summary counts what was refused. Memory is the child's peak RSS (VmHWM, from
//! `wait4`'s rusage), measured, not timed.

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_helloguard");
const LIMIT_KIB: i64 = 64 * 1024;
/// The replay's default connection table size.
const TABLE: u32 = 65_536;

/// Run `helloguard replay path`; its exit status, peak RSS in KiB and stderr.
#[allow(clippy::zombie_processes)] // reaped by `wait4`, which also reports the peak
fn replay_peak(path: &Path) -> (i32, i64, String) {
    let mut child =
        Command::new(BIN).arg("replay").arg(path).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is this process's child, not yet reaped; both pointers are valid for the call.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "replay did not exit normally: {status}");
    // ru_maxrss is in KiB on Linux.
    (libc::WEXITSTATUS(status), usage.ru_maxrss, stderr)
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
