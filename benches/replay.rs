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
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use helloguard::pcap::{replay, Options, Summary};

#[path = "../tests/common/mod.rs"]
mod common;

const BULK_TARGET_BYTES: u64 = 210 * 1000 * 1000;
/// Packets from the server per connection: a mid-size download after each handshake.
const BULK_PACKETS_PER_FLOW: u32 = 96;
/// Connections in the handshake-only capture (distinct 4-tuples: under the flow table's cap).
const HELLO_FLOWS: u32 = 60_000;

fn generated(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/replay-bench").join(name)
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
        common::capture::bulk(&bulk, BULK_TARGET_BYTES, BULK_PACKETS_PER_FLOW);
    }
    let hellos = generated("hellos.pcap");
    if !hellos.is_file() {
        common::capture::handshakes(&hellos, HELLO_FLOWS);
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
