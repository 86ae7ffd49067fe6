//! Instruction counts (callgrind, via gungraun) for the per-connection fingerprint path:
//! a fresh reader + parse + ja3 + ja4 + ja4_stable on the hellos in `pcaps/hellos/`.
//!
//! `warm_*`: this client build was fingerprinted before on this thread (the memo hits): the
//! steady state of a proxy. `cold_*`: the thread has seen only the *other* client, so every hash
//! is computed. `shuffled_*`: the thread has seen this build with its extensions in another
//! order, as each new connection of a client that shuffles them (Chrome, rustls) is: `ja4` and
//! `ja4_stable` are memoised, JA3 is new. valgrind cannot execute SHA-NI, so cold counts include
//! software SHA-256.
//! Needs valgrind and `cargo install gungraun-runner --version <gungraun's version>`.
#[path = "support/shuffle.rs"]
mod shuffle;

use gungraun::{library_benchmark, library_benchmark_group, main};
use helloguard::fingerprint::{self, AlpnMode, Binding};
use helloguard::hello::{ClientHello, HelloReader, Transport};
use std::hint::black_box;

const CURL: &[u8] = include_bytes!("../pcaps/hellos/curl.bin");
const CHROMIUM: &[u8] = include_bytes!("../pcaps/hellos/chromium.bin");

fn fingerprint_records(records: &[u8]) -> Option<Binding> {
    let mut reader = HelloReader::default();
    reader.feed(black_box(records)).ok()?;
    let hello = ClientHello::parse(reader.message()?, Transport::Tcp).ok()?;
    Some(fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec))
}

/// Setup (not measured): fingerprint `seen` once on this thread, then hand over `measured`.
fn after(seen: &'static [u8], measured: &'static [u8]) -> &'static [u8] {
    black_box(fingerprint_records(seen));
    measured
}

/// Setup (not measured): fingerprint `records` with its extensions in one order, then hand over
/// the same hello in another order.
fn reshuffled(records: &'static [u8]) -> &'static [u8] {
    black_box(fingerprint_records(&shuffle::shuffle_extensions(records, 1)));
    Box::leak(shuffle::shuffle_extensions(records, 2).into_boxed_slice())
}

#[library_benchmark]
#[bench::warm_curl(after(CURL, CURL))]
#[bench::warm_chromium_pq(after(CHROMIUM, CHROMIUM))]
#[bench::cold_curl(after(CHROMIUM, CURL))]
#[bench::cold_chromium_pq(after(CURL, CHROMIUM))]
#[bench::shuffled_curl(reshuffled(CURL))]
#[bench::shuffled_chromium_pq(reshuffled(CHROMIUM))]
fn binding(records: &'static [u8]) -> Option<Binding> {
    black_box(fingerprint_records(records))
}

library_benchmark_group!(name = per_connection; benchmarks = binding);

main!(library_benchmark_groups = per_connection);
