//! Generated captures for the replay tests and the replay bench: a classic pcap writer (Ethernet,
//! IPv4, TCP and UDP), a plausible TLS 1.3 ClientHello, QUIC v1 client Initials sealed with the
//! keys any observer derives (RFC 9001 §5), and three captures: bulk traffic, handshakes only, and a
//! hostile capture shaped to make the replay hold as much memory as it can.
//!
//! Everything is deterministic: the same arguments write the same bytes.
#![allow(dead_code)] // the bench and the tests use their own subsets

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce};
use etherparse::PacketBuilder;
use hkdf::Hkdf;
use sha2::Sha256;

const SERVER: [u8; 4] = [10, 255, 0, 1];
const MSS: usize = 1448;

/// A classic pcap file (little endian, microseconds, Ethernet) written frame by frame. Each frame
/// is 10 µs after the previous one unless [`PcapWriter::pause`] moves the clock on.
pub struct PcapWriter<W: Write> {
    out: W,
    /// Bytes written so far.
    pub written: u64,
    micros: u64,
}

impl PcapWriter<BufWriter<File>> {
    pub fn create(path: &Path) -> Self {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        Self::new(BufWriter::new(File::create(path).unwrap()))
    }
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W) -> Self {
        let mut header = Vec::new();
        for field in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
            header.extend(field.to_le_bytes());
        }
        out.write_all(&header).unwrap();
        Self { out, written: header.len() as u64, micros: 1_700_000_000_000_000 }
    }

    /// Move the capture clock on by `secs` (past the replay's idle timeout, to start afresh).
    pub fn pause(&mut self, secs: u64) {
        self.micros += secs * 1_000_000;
    }

    /// One captured frame with its pcap record header.
    pub fn frame(&mut self, frame: &[u8]) {
        self.micros += 10;
        let (secs, micros) = ((self.micros / 1_000_000) as u32, (self.micros % 1_000_000) as u32);
        for field in [secs, micros, frame.len() as u32, frame.len() as u32] {
            self.out.write_all(&field.to_le_bytes()).unwrap();
        }
        self.out.write_all(frame).unwrap();
        self.written += 16 + frame.len() as u64;
    }

    /// A TCP segment of connection `flow` (client `10.a.b.c:port` to `10.255.0.1:443`).
    pub fn tcp(&mut self, flow: u32, from_client: bool, seq: u32, syn: bool, payload: &[u8]) {
        let (client, port) = client_of(flow);
        let builder = if from_client {
            PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(client, SERVER, 64).tcp(port, 443, seq, 64240)
        } else {
            PacketBuilder::ethernet2([4; 6], [2; 6]).ipv4(SERVER, client, 64).tcp(443, port, seq, 64240)
        };
        let builder = if syn { builder.syn() } else { builder.ack(1) };
        let mut frame = Vec::with_capacity(builder.size(payload.len()));
        builder.write(&mut frame, payload).unwrap();
        self.frame(&frame);
    }

    /// A UDP datagram from the client of `flow` to `10.255.0.1:server_port`.
    pub fn udp(&mut self, flow: u32, server_port: u16, payload: &[u8]) {
        let (client, port) = client_of(flow);
        let builder = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(client, SERVER, 64).udp(port, server_port);
        let mut frame = Vec::with_capacity(builder.size(payload.len()));
        builder.write(&mut frame, payload).unwrap();
        self.frame(&frame);
    }

    pub fn finish(mut self) {
        self.out.flush().unwrap();
    }
}

/// A distinct client address and port per connection number.
fn client_of(flow: u32) -> ([u8; 4], u16) {
    ([10, (flow >> 16) as u8, (flow >> 8) as u8, flow as u8], 20_000 + (flow % 40_000) as u16)
}

/// A plausible TLS 1.3 ClientHello record (SNI, groups, signature algorithms, ALPN,
/// supported_versions, key share), varied by `flow`.
pub fn client_hello(flow: u32) -> Vec<u8> {
    let host = format!("host{}.example", flow % 97);
    let mut key_share = vec![0, 36, 0, 0x1d, 0, 32];
    key_share.extend((0..32u8).map(|i| i.wrapping_mul(flow as u8)));
    let extensions = [
        (0x0000, super::sni(&host)),
        (0x000a, super::u16_list(&[0x1d, 0x17])),
        (0x000d, super::u16_list(&[0x0403, 0x0804, 0x0401])),
        (0x0010, super::alpn(&[b"h2"])),
        (0x002b, super::versions(&[0x0304, 0x0303])),
        (0x0033, key_share),
    ];
    super::records(&super::build_hello(0x0303, &[0x1301, 0x1302, 0xc02b], &extensions), 1 << 14)
}

/// Connections (SYN, SYN-ACK, then a ClientHello or, one in four, an HTTP request), each followed
/// by `server_packets` full-size segments from the server, until at least `target_bytes` are
/// written (and at least one connection).
pub fn bulk(path: &Path, target_bytes: u64, server_packets: u32) {
    let mut pcap = PcapWriter::create(path);
    let download = [0x17u8; MSS];
    let mut flow = 0;
    while flow == 0 || pcap.written < target_bytes {
        first_flight(&mut pcap, flow);
        for i in 0..server_packets {
            pcap.tcp(flow, false, 5001 + i * MSS as u32, false, &download);
        }
        flow += 1;
    }
    pcap.finish();
}

/// `flows` connections of a first flight only: the most hellos per byte.
pub fn handshakes(path: &Path, flows: u32) {
    let mut pcap = PcapWriter::create(path);
    for flow in 0..flows {
        first_flight(&mut pcap, flow);
    }
    pcap.finish();
}

fn first_flight<W: Write>(pcap: &mut PcapWriter<W>, flow: u32) {
    pcap.tcp(flow, true, 1000, true, &[]);
    pcap.tcp(flow, false, 5000, true, &[]);
    let hello = if flow % 4 == 3 { b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec() } else { client_hello(flow) };
    pcap.tcp(flow, true, 1001, false, &hello);
}

/// How many connections of each hostile phase also send the heavy follow-up (everything a held
/// hello can be made to buffer): more than the replay's default 512 hellos in progress. The first
/// connections of a phase win the slots, so every held slot is filled to its limits.
pub const HEAVY_FLOWS: u32 = 640;
/// Capture time between phases: past the replay's 300 s idle timeout, so each phase starts with an
/// empty connection table.
const PHASE_GAP_SECS: u64 = 400;
/// A handshake length just under the 16 KiB hello limit: the reader reserves it at once.
const PROMISED: usize = 16 * 1024 - 8;
/// The size of the datagrams full of 1-byte fragments.
const GAPS_DATAGRAM: usize = 32 * 1024;

/// Connection numbers of the plain-text connections, apart from the others.
const PLAIN_FLOWS: u32 = 1 << 23;
/// A record past the replay's 1 MiB read buffer.
const OVERSIZED_RECORD: usize = 2 << 20;

/// A capture made to exhaust memory, in phases of `flows` concurrent connections each. Every
/// connection opens, then the first [`HEAVY_FLOWS`] send the heavy follow-ups, round by round, so
/// the held state of all of them peaks together:
///
/// 1. TCP connections that start with plain text (an HTTP request line), each a candidate for a
///    later hello behind a proxy preamble: they fill the connection table while phase 2 runs;
/// 2. TCP hellos promising 16 KiB, sent up to a few bytes short, then full-size out-of-order
///    segments (overlapping, each stored whole) held beyond the gap, then a hundred 1-byte
///    segments with gaps between them;
/// 3. QUIC Initials whose CRYPTO stream promises a 16 KiB hello, then a CRYPTO frame near the end
///    of it, then a 32 KB Initial of 1-byte CRYPTO frames with gaps;
/// 4. DTLS ClientHello fragments near the end of a 16 KiB body, then a 32 KB datagram of 1-byte
///    fragments with gaps;
/// 5. one 2 MiB record.
///
/// Phases 3 and 4 come after the replay's idle timeout, so they start with an empty table.
pub fn hostile(path: &Path, flows: u32) {
    let mut pcap = PcapWriter::create(path);
    plain_text_starts(&mut pcap, flows);
    tcp_held_hellos(&mut pcap, flows);
    pcap.pause(PHASE_GAP_SECS);
    quic_held_hellos(&mut pcap, flows);
    pcap.pause(PHASE_GAP_SECS);
    dtls_held_hellos(&mut pcap, flows);
    pcap.frame(&vec![0; OVERSIZED_RECORD]);
    pcap.finish();
}

fn tcp_held_hellos<W: Write>(pcap: &mut PcapWriter<W>, flows: u32) {
    let mut stream = vec![22, 3, 1];
    stream.extend((PROMISED as u16).to_be_bytes());
    stream.extend([1, 0]);
    stream.extend(((PROMISED - 4) as u16).to_be_bytes());
    stream.resize(5 + PROMISED, 0x42);
    const OPENING: usize = 128;
    for flow in 0..flows {
        pcap.tcp(flow, true, 0, true, &[]);
        pcap.tcp(flow, true, 1, false, &stream[..OPENING]);
    }
    let heavy = flows.min(HEAVY_FLOWS);
    // Everything but the last 3 bytes arrives: the reader holds the whole message.
    let held = stream.len() - 3;
    let beyond = 1 + stream.len() as u32 + 2;
    for flow in 0..heavy {
        for start in (OPENING..held).step_by(MSS) {
            pcap.tcp(flow, true, 1 + start as u32, false, &stream[start..held.min(start + MSS)]);
        }
        for i in 0..20 {
            pcap.tcp(flow, true, beyond + i, false, &[0x42; MSS]);
        }
    }
    for flow in 0..heavy {
        for i in 0..100 {
            pcap.tcp(flow, true, beyond + 1_500 + 2 * i, false, &[0x42]);
        }
    }
}

fn plain_text_starts<W: Write>(pcap: &mut PcapWriter<W>, flows: u32) {
    for flow in PLAIN_FLOWS..PLAIN_FLOWS + flows {
        pcap.tcp(flow, true, 0, true, &[]);
        pcap.tcp(flow, true, 1, false, b"GET / HTTP/1.1\r\n");
    }
}

fn quic_held_hellos<W: Write>(pcap: &mut PcapWriter<W>, flows: u32) {
    let initials = QuicInitials::new();
    let body = PROMISED - 4;
    let opening = initials.seal(0, &padded(crypto_frame(0, &[1, 0, (body >> 8) as u8, body as u8])));
    for flow in 0..flows {
        pcap.udp(flow, 443, &opening);
    }
    let heavy = flows.min(HEAVY_FLOWS);
    let near_end = initials.seal(1, &padded(crypto_frame(PROMISED as u64 - 100, &[0x42; 50])));
    for flow in 0..heavy {
        pcap.udp(flow, 443, &near_end);
    }
    let mut gaps = Vec::new();
    let mut offset = 8u64;
    while gaps.len() < GAPS_DATAGRAM {
        gaps.extend(crypto_frame(offset, &[0x42]));
        offset += 2;
    }
    let gaps = initials.seal(2, &gaps);
    for flow in 0..heavy {
        pcap.udp(flow, 443, &gaps);
    }
}

/// Frames followed by PADDING, long enough for the header protection sample.
fn padded(mut frames: Vec<u8>) -> Vec<u8> {
    frames.resize(frames.len().max(32), 0);
    frames
}

fn dtls_held_hellos<W: Write>(pcap: &mut PcapWriter<W>, flows: u32) {
    let length = PROMISED - 12;
    let fragment = |offset: usize, data: &[u8]| {
        let mut f = vec![1];
        f.extend(&(length as u32).to_be_bytes()[1..]);
        f.extend([0, 0]);
        f.extend(&(offset as u32).to_be_bytes()[1..]);
        f.extend(&(data.len() as u32).to_be_bytes()[1..]);
        f.extend(data);
        f
    };
    let record = |payload: &[u8]| {
        let mut r = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
        r.extend((payload.len() as u16).to_be_bytes());
        r.extend(payload);
        r
    };
    let opening = record(&fragment(length - 50, &[0x42; 50]));
    for flow in 0..flows {
        pcap.udp(flow, 4433, &opening);
    }
    let mut gaps = Vec::new();
    let mut offset = 0;
    while gaps.len() < GAPS_DATAGRAM {
        gaps.extend(fragment(offset, &[0x42]));
        offset += 2;
    }
    let gaps = record(&gaps);
    for flow in 0..flows.min(HEAVY_FLOWS) {
        pcap.udp(flow, 4433, &gaps);
    }
}

/// A QUIC CRYPTO frame (type 0x06) with 4-byte varint offset and length.
fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x06];
    frame.extend((0x8000_0000 | offset as u32).to_be_bytes());
    frame.extend((0x8000_0000 | data.len() as u32).to_be_bytes());
    frame.extend(data);
    frame
}

/// QUIC v1 client Initials for one Destination Connection ID (RFC 9001 §5.2, §5.3, §5.4).
pub struct QuicInitials {
    aead: Aes128Gcm,
    iv: [u8; 12],
    hp: Aes128,
}

/// RFC 9001 Appendix A's Destination Connection ID.
const DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

impl QuicInitials {
    pub fn new() -> Self {
        const SALT: [u8; 20] = [
            0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb,
            0x7f, 0x0a,
        ];
        let (_, initial) = Hkdf::<Sha256>::extract(Some(&SALT), &DCID);
        let client = Hkdf::<Sha256>::from_prk(&label::<32>(&initial, b"client in")).unwrap();
        Self {
            aead: Aes128Gcm::new(&label::<16>(&client, b"quic key").into()),
            iv: label::<12>(&client, b"quic iv"),
            hp: Aes128::new(&label::<16>(&client, b"quic hp").into()),
        }
    }

    /// A protected Initial packet (4-byte packet number `pn`) carrying `frames`.
    pub fn seal(&self, pn: u32, frames: &[u8]) -> Vec<u8> {
        let mut packet = vec![0xc3, 0, 0, 0, 1, DCID.len() as u8];
        packet.extend(DCID);
        packet.extend([0, 0]); // no source connection ID, no token
        packet.extend((0x8000_0000 | (4 + frames.len() + 16) as u32).to_be_bytes());
        let pn_offset = packet.len();
        packet.extend(pn.to_be_bytes());
        let mut nonce = self.iv;
        for (n, p) in nonce[8..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        let mut body = frames.to_vec();
        let tag = self.aead.encrypt_in_place_detached(Nonce::from_slice(&nonce), &packet, &mut body).unwrap();
        packet.extend(body);
        packet.extend(tag);
        let mut mask = aes::Block::clone_from_slice(&packet[pn_offset + 4..pn_offset + 20]);
        self.hp.encrypt_block(&mut mask);
        packet[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            packet[pn_offset + i] ^= mask[1 + i];
        }
        packet
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn label<const N: usize>(secret: &Hkdf<Sha256>, label: &[u8]) -> [u8; N] {
    let mut info = (N as u16).to_be_bytes().to_vec();
    info.push((6 + label.len()) as u8);
    info.extend(b"tls13 ");
    info.extend(label);
    info.push(0);
    let mut out = [0; N];
    secret.expand(&info, &mut out).unwrap();
    out
}
