//! Offline replay: ClientHello fingerprints from pcap and pcapng captures (`helloguard replay`).
//!
//! The data path, one module per step:
//!
//! | module | owns |
//! |---|---|
//! | `file` | streaming pcap/pcapng reading in bounded memory, errors with byte offsets |
//! | `decode` | link layers, IPv4/IPv6, TCP/UDP, tunnels (GRE, ERSPAN, VXLAN, Geneve) |
//! | `flows` | the bounded connection table, per-direction hello state, HelloRetryRequest retries |
//! | `tcp` | per-direction TCP reassembly (out of order, retransmissions, overlaps, mid-stream) |
//! | `quic` | QUIC v1/v2 Initial decryption and CRYPTO reassembly |
//! | `dtls` | DTLS record walking and handshake fragment reassembly |
//! | `reassembly` | the by-offset buffer QUIC and DTLS share |
//! | `replay` | the driver: messages to `hello` + `fingerprint`, records, summary |
//! | `decide` | `--decide`: each hello as a login, through the engine, per session key |
//! | `output` | JSON lines / JSON / table, and the summary text |
//!
//! ClientHello parsing and fingerprinting are not here: they are the same `hello` and
//! `fingerprint` code the proxy runs.

mod decide;
mod decode;
mod dtls;
mod file;
mod flows;
mod output;
mod quic;
mod reassembly;
mod replay;
mod tcp;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::Path;

use decide::Decider;
pub use decide::{DecideOptions, Decided, DecisionKind, DecisionReason, SessionKey, SkipReason};
pub use file::FileError;
pub use output::{write_summary, Format, RecordWriter};
pub use replay::{replay, Options, Record, ReplayError, Summary};

/// Fuzzing entry point for QUIC Initials (`fuzz/fuzz_targets/quic_initial.rs`). The first byte
/// picks the layer: even runs the rest as datagrams (each prefixed by a u16 length) through
/// [`quic::ClientInitials`]; odd runs it as a decrypted Initial payload through the frame walk.
#[doc(hidden)]
pub fn fuzz_quic(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        quic::fuzz_frames(rest);
        return;
    }
    let mut initials = quic::ClientInitials::new(crate::hello::DEFAULT_MAX_LEN);
    let mut scratch = Vec::new();
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        let _ = initials.datagram(datagram, &mut scratch);
        let _ = initials.message();
        rest = next;
    }
}

/// Replay every file in `paths` to `out` in `format`, the summary and any file errors to `err`, with
/// a progress bar on stderr when it is a terminal. Returns `false` when some file could not be read
/// at all (a file read partly, up to a truncated or corrupt record, is reported but is no failure).
pub fn run(
    paths: &[impl AsRef<Path>],
    (options, actions): (&Options, Option<crate::actions::Actions>),
    format: Format,
    out: impl Write,
    err: &mut dyn Write,
) -> io::Result<bool> {
    let mut writer = RecordWriter::new(out, format);
    let mut summary = Summary::default();
    let mut decider = options.decide.map(|decide| Decider::new(decide).with_actions(actions));
    // Counted here, not through `summary`, which `replay` holds while records are emitted. Every
    // decision is listed, zeros too.
    let mut decisions: BTreeMap<&'static str, u64> =
        decider.iter().flat_map(|_| DecisionKind::ALL.map(|kind| (kind.as_str(), 0))).collect();
    let mut all_read = true;
    let mut write_error = None;
    for path in paths {
        let path = path.as_ref();
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) => {
                writeln!(err, "replay: {}: {e}", path.display())?;
                all_read = false;
                continue;
            }
        };
        let bar = progress_bar(&file);
        let mut emit = |mut record: Record| {
            if let Some(decider) = &mut decider {
                let decided = decider.decide(&record);
                *decisions.entry(decided.decision.as_str()).or_default() += 1;
                record.decided = Some(decided);
            }
            if write_error.is_none() {
                write_error = writer.write(&record).err();
            }
        };
        let mut progress = |offset: u64| {
            if let Some(bar) = &bar {
                bar.set_position(offset);
            }
        };
        let result = replay(&name, file, options, &mut summary, &mut emit, &mut progress);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(()) => {}
            Err(ReplayError::Open(e)) => {
                writeln!(err, "replay: {}: cannot read: {e}", path.display())?;
                all_read = false;
            }
            Err(ReplayError::Partial(e)) => {
                writeln!(err, "replay: {}: {e}; the packets before it were replayed", path.display())?
            }
        }
        if let Some(e) = write_error.take() {
            return Err(e);
        }
    }
    writer.finish()?;
    summary.decisions = decisions;
    write_summary(err, &summary)?;
    Ok(all_read)
}

fn progress_bar(file: &File) -> Option<indicatif::ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}");
    if let Ok(style) = style {
        bar.set_style(style);
    }
    Some(bar)
}
