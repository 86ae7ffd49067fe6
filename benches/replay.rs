//! Replay throughput on one core: the largest reference captures, and a generated capture of
//! at least 200 MB that is mostly bulk (non-hello) traffic, the shape of a real network tap.
//!
//! A second generated capture holds handshakes only (60 000 connections), the worst case per byte,
//! for hellos/s.
//!
//! The generated files are written once to `target/replay-bench/` (not committed) so they can
//! also be measured from the command line: peak RSS with `/usr/bin/time -v helloguard replay …`,
//! and tshark side by side (see the README's performance table). Throughput is reported in bytes/s
//! by criterion; the number of hellos per file is printed so hellos/s follows from the time.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;
use helloguard::pcap::{replay, Options, Summary};

const BULK_TARGET_BYTES: u64 = 210 * 1000 * 1000;
const MSS: usize = 1448;
/// Packets from the server per connection: a mid-size download after each handshake.
const BULK_PACKETS_PER_FLOW: u32 = 96;
/// Connections in the handshake-only capture (distinct 4-tuples: under the flow table's cap).
const HELLO_FLOWS: u32 = 60_000;

fn generated(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/replay-bench").join(name)
}

/// A plausible TLS 1.3 ClientHello record (SNI, supported_versions, ALPN, groups, key share).
fn client_hello(flow: u32) -> Vec<u8> {
    let host = format!("host{}.example", flow % 97);
    let mut ext = Vec::new();
    let mut push_ext = |kind: u16, data: &[u8]| {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(data);
    };
    let mut sni = vec![0];
    sni.extend_from_slice(&(host.len() as u16).to_be_bytes());
    sni.extend_from_slice(host.as_bytes());
    let mut sni_list = (sni.len() as u16).to_be_bytes().to_vec();
    sni_list.extend_from_slice(&sni);
    push_ext(0x0000, &sni_list);
    push_ext(0x000a, &[0, 4, 0, 0x1d, 0, 0x17]);
    push_ext(0x000d, &[0, 6, 4, 3, 8, 4, 4, 1]);
    push_ext(0x0010, &[0, 3, 2, b'h', b'2']);
    push_ext(0x002b, &[4, 3, 4, 3, 3]);
    let mut key_share = vec![0, 36, 0, 0x1d, 0, 32];
    key_share.extend((0..32u8).map(|i| i.wrapping_mul(flow as u8)));
    push_ext(0x0033, &key_share);
    let mut body = vec![3, 3];
    body.extend((0..32u8).map(|i| i ^ flow as u8));
    body.push(0);
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2b]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut record = vec![22, 3, 1];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

struct PcapOut<W: Write> {
    out: W,
    written: u64,
    ts: u32,
}

impl<W: Write> PcapOut<W> {
    fn new(mut out: W) -> Self {
        // Classic pcap, little endian, microseconds, Ethernet.
        let mut header = Vec::new();
        for v in
            [0xa1b2_c3d4u32.to_le_bytes(), [2, 0, 4, 0], [0; 4], [0; 4], 65535u32.to_le_bytes(), 1u32.to_le_bytes()]
        {
            header.extend_from_slice(&v);
        }
        out.write_all(&header).unwrap();
        Self { out, written: header.len() as u64, ts: 0 }
    }

    fn tcp(&mut self, client: bool, flow: u32, seq: u32, syn: bool, payload: &[u8]) {
        let (a, b) = ([10, 0, (flow >> 8) as u8, flow as u8], [10, 1, 0, 1]);
        let port = 20000 + (flow % 40000) as u16;
        let builder = if client {
            PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(a, b, 64).tcp(port, 443, seq, 64240)
        } else {
            PacketBuilder::ethernet2([4; 6], [2; 6]).ipv4(b, a, 64).tcp(443, port, seq, 64240)
        };
        let builder = if syn { builder.syn() } else { builder.ack(1) };
        let mut frame = Vec::with_capacity(builder.size(payload.len()));
        builder.write(&mut frame, payload).unwrap();
        self.ts += 1;
        let (secs, micros) = (1_700_000_000 + self.ts / 100_000, (self.ts % 100_000) * 10);
        for v in [secs, micros, frame.len() as u32, frame.len() as u32] {
            self.out.write_all(&v.to_le_bytes()).unwrap();
        }
        self.out.write_all(&frame).unwrap();
        self.written += 16 + frame.len() as u64;
    }
}

/// Connections of a handshake and a download; one in four is not TLS at all.
fn generate_bulk(path: &Path) {
    generate(path, |pcap, flow| {
        let bulk = [0x17u8; MSS];
        for i in 0..BULK_PACKETS_PER_FLOW {
            pcap.tcp(false, flow, 5001 + i * MSS as u32, false, &bulk);
        }
        pcap.written < BULK_TARGET_BYTES
    });
}

/// Handshakes only: the worst case per byte, for hellos/s.
fn generate_hellos(path: &Path) {
    generate(path, |_, flow| flow + 1 < HELLO_FLOWS);
}

/// Write connections (SYN, SYN-ACK, then a ClientHello or, one in four, an HTTP request) until
/// `then` (called after each connection's first flight) says stop.
fn generate(path: &Path, mut then: impl FnMut(&mut PcapOut<BufWriter<File>>, u32) -> bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut pcap = PcapOut::new(BufWriter::new(File::create(path).unwrap()));
    let mut flow = 0u32;
    loop {
        pcap.tcp(true, flow, 1000, true, &[]);
        pcap.tcp(false, flow, 5000, true, &[]);
        let hello = if flow % 4 == 3 { b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec() } else { client_hello(flow) };
        pcap.tcp(true, flow, 1001, false, &hello);
        if !then(&mut pcap, flow) {
            break;
        }
        flow += 1;
    }
    pcap.out.flush().unwrap();
}

fn replay_file(path: &Path) -> Summary {
    let mut summary = Summary::default();
    let file = File::open(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    replay(&name, file, &Options::default(), &mut summary, &mut |_| {}, &mut |_| {}).unwrap();
    summary
}

fn bench(c: &mut Criterion) {
    let bulk = generated("bulk.pcap");
    if std::fs::metadata(&bulk).map(|m| m.len()).unwrap_or(0) < BULK_TARGET_BYTES {
        generate_bulk(&bulk);
    }
    let hellos = generated("hellos.pcap");
    if !hellos.is_file() {
        generate_hellos(&hellos);
    }
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/foxio/pcap");
    let mut files = vec![("bulk_210MB", bulk), ("hellos_60k", hellos)];
    // The largest reference captures: with TLS and QUIC, and the largest overall (SSH, no TLS).
    for name in ["tls3.pcapng", "ssh-scp-1050.pcap"] {
        if vectors.join(name).is_file() {
            files.push((name, vectors.join(name)));
        } else {
            eprintln!("skipping {name}: reference vectors not found");
        }
    }
    let mut group = c.benchmark_group("replay");
    for (label, path) in files {
        let summary = replay_file(&path);
        eprintln!(
            "{label}: {} bytes, {} packets, {} flows, {} hellos per replay",
            summary.bytes, summary.packets, summary.flows, summary.hellos
        );
        group.throughput(Throughput::Bytes(summary.bytes));
        if summary.bytes > 100_000_000 {
            group.sample_size(10);
        } else {
            group.sample_size(50);
        }
        group.bench_function(label, |b| b.iter(|| replay_file(&path)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
