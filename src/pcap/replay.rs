//! The replay driver: frames → packets → flows → ClientHello messages → records.
//!
//! This is the one place where `pcap` meets the shared core: each complete handshake message is
//! handed to `hello::ClientHello::parse` and `fingerprint::all`, exactly as the proxy does for a
//! live connection, so a value from a capture and from a socket is the same function of the same
//! bytes. Nothing here looks inside a ClientHello.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::fingerprint::{self, AlpnMode};
use crate::hello::{ClientHello, Transport, DEFAULT_MAX_LEN};

use super::decide::{DecideOptions, Decided};
use super::decode;
use super::file::{CaptureReader, FileError};
use super::flows::{Event, Flows, Limits};

/// Replay settings.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Report the second ClientHello of a connection too (`hello_index` 2).
    pub all_hellos: bool,
    /// ALPN code rule for every JA4 form.
    pub alpn: AlpnMode,
    /// Largest ClientHello accepted.
    pub max_hello_len: usize,
    /// Connections tracked at once.
    pub max_flows: usize,
    /// Hellos in progress (directions holding buffers) at once. A TCP one holds at most the hello
    /// cap plus the out-of-order window (about 36 KiB with the defaults), QUIC and DTLS ones about
    /// one hello cap: 512 keeps the worst case near 18 MiB beside the flow table.
    pub max_open_hellos: usize,
    /// Capture-time idle timeout after which a connection is forgotten.
    pub idle_timeout: Duration,
    /// Decide on each hello as the engine would (`--decide`).
    pub decide: Option<DecideOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            all_hellos: false,
            alpn: AlpnMode::default(),
            max_hello_len: DEFAULT_MAX_LEN,
            max_flows: 65_536,
            max_open_hellos: 512,
            idle_timeout: Duration::from_secs(300),
            decide: None,
        }
    }
}

/// One ClientHello found in a capture.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub pcap: String,
    pub stream: u64,
    pub transport: Transport,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Seconds since the Unix epoch of the packet that completed the hello.
    pub timestamp: f64,
    pub hello_index: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    #[serde(flatten)]
    pub fingerprints: fingerprint::All,
    /// `decision`, `reason`, `session_key`, `stored`: only with `--decide`.
    #[serde(flatten)]
    pub decided: Option<Decided>,
}

/// Counters over every file replayed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub files: u64,
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub hellos: u64,
    /// Packets or flows that gave no hello, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Hellos by decision (`--decide` only).
    pub decisions: BTreeMap<&'static str, u64>,
}

impl Summary {
    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }
}

/// Replay one capture. Records go to `emit` as they are found; `progress` is told the file offset
/// now and then. An error after the header (a truncated or corrupt record) comes back once every
/// frame before it has been processed: the records already emitted stand.
pub fn replay<R: Read>(
    name: &str,
    source: R,
    options: &Options,
    summary: &mut Summary,
    emit: &mut dyn FnMut(Record),
    progress: &mut dyn FnMut(u64),
) -> Result<(), ReplayError> {
    let mut reader = CaptureReader::new(source).map_err(ReplayError::Open)?;
    summary.files += 1;
    let limits = Limits {
        max_hello_len: options.max_hello_len,
        max_flows: options.max_flows,
        max_open_hellos: options.max_open_hellos,
        idle_timeout: options.idle_timeout,
        all_hellos: options.all_hellos,
    };
    let mut flows = Flows::new(limits);
    let mut events = Vec::new();
    let mut packets = 0u64;
    let result = loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(e) => break Err(ReplayError::Partial(e)),
        };
        packets += 1;
        let timestamp = frame.timestamp;
        match decode::decode(frame.link, frame.data) {
            Ok(packet) => {
                flows.packet(&packet, timestamp, &mut events);
                for event in events.drain(..) {
                    handle(event, &packet, name, timestamp, options, summary, emit);
                }
            }
            Err(skip) => summary.skip(skip.reason()),
        }
        if packets % 4096 == 0 {
            progress(reader.offset());
        }
    };
    summary.packets += packets;
    summary.bytes += reader.offset();
    if reader.oversized() > 0 {
        *summary.skipped.entry("record_too_large").or_default() += reader.oversized();
    }
    progress(reader.offset());
    result
}

fn handle(
    event: Event,
    packet: &decode::Packet<'_>,
    name: &str,
    timestamp: Duration,
    options: &Options,
    summary: &mut Summary,
    emit: &mut dyn FnMut(Record),
) {
    match event {
        Event::NewFlow => summary.flows += 1,
        Event::Skipped(reason) => summary.skip(reason),
        Event::Hello { stream, transport, message, index } => {
            let hello = match ClientHello::parse(&message, transport) {
                Ok(hello) => hello,
                // Every parse failure is a length or layout fault: FINGERPRINTS.md §1.1 calls it malformed.
                Err(_) => return summary.skip("malformed"),
            };
            summary.hellos += 1;
            emit(Record {
                pcap: name.to_string(),
                stream,
                transport,
                src: packet.src,
                dst: packet.dst,
                src_port: packet.src_port,
                dst_port: packet.dst_port,
                timestamp: timestamp.as_secs_f64(),
                hello_index: index,
                sni: hello.sni_str().map(str::to_string),
                alpn: hello.alpn.map(|a| String::from_utf8_lossy(a).into_owned()),
                fingerprints: fingerprint::all(&hello, transport, options.alpn),
                decided: None,
            });
        }
    }
}

/// Why a capture was not (completely) read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Nothing could be read: not a capture, or its header is unreadable.
    #[error(transparent)]
    Open(FileError),
    /// Read up to a bad or truncated record; the frames before it were replayed.
    #[error(transparent)]
    Partial(FileError),
}
