//! Instruction counts (callgrind, via gungraun) for the per-connection fingerprint path:
//! a fresh reader + parse + ja3 + ja4 + ja4_stable on the hellos in `pcaps/hellos/`.
//! Needs valgrind and `cargo install gungraun-runner --version <gungraun's version>`.
use gungraun::{library_benchmark, library_benchmark_group, main};
use helloguard::fingerprint::{self, AlpnMode, Binding};
use helloguard::hello::{ClientHello, HelloReader, Transport};
use std::hint::black_box;

#[library_benchmark]
#[bench::curl(include_bytes!("../pcaps/hellos/curl.bin"))]
#[bench::chromium_pq(include_bytes!("../pcaps/hellos/chromium.bin"))]
fn binding(records: &'static [u8]) -> Option<Binding> {
    let mut reader = HelloReader::default();
    reader.feed(black_box(records)).ok()?;
    let hello = ClientHello::parse(reader.message()?, Transport::Tcp).ok()?;
    Some(black_box(fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec)))
}

library_benchmark_group!(name = per_connection; benchmarks = binding);

main!(library_benchmark_groups = per_connection);
