//! Criterion: the per-connection fingerprint path on real hellos captured on this machine
//! (`pcaps/hellos/`: curl/OpenSSL ~0.5 KB, Chromium post-quantum ~1.9 KB, as TLS records).
//!
//! `binding`: a fresh reader + parse + ja3 + ja4 + ja4_stable, what the proxy runs once per
//! connection. Repeated iterations hit the per-thread memo of hashed parts, as a proxy does for a
//! client build it has seen; `binding_shuffled` gives the same client build with its extensions
//! in another order each time (Chrome and rustls clients shuffle them per connection: a new `ja3`,
//! the same `ja4`); `binding_cold` alternates two hellos with another `ja3`/`ja4` each time (an
//! unseen client build) by changing one cipher suite. `all_forms`: all eight forms.
#[path = "support/shuffle.rs"]
mod shuffle;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, HelloReader, Transport};
use std::hint::black_box;

/// Extension orders per hello in `binding_shuffled`.
const SHUFFLES: u64 = 4096;

const HELLOS: [(&str, &[u8]); 2] = [
    ("curl_517B", include_bytes!("../pcaps/hellos/curl.bin")),
    ("chromium_pq_1917B", include_bytes!("../pcaps/hellos/chromium.bin")),
];

fn fingerprint_records(records: &[u8], all_forms: bool) {
    let mut reader = HelloReader::default();
    reader.feed(black_box(records)).expect("captured hello reads");
    let hello = ClientHello::parse(reader.message().unwrap_or_default(), Transport::Tcp).expect("parses");
    if all_forms {
        black_box(fingerprint::all(&hello, Transport::Tcp, AlpnMode::Spec));
    } else {
        black_box(fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec));
    }
}

/// Offset of the first cipher suite in a single-record hello: record 5 + handshake 4 + version 2
/// + random 32, then the session id, then the cipher list length.
fn first_cipher_at(records: &[u8]) -> usize {
    let session_id_len = usize::from(records[43]);
    44 + session_id_len + 2
}

fn benches(c: &mut Criterion) {
    for (group_name, all_forms) in [("binding", false), ("all_forms", true)] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(1));
        for (name, records) in HELLOS {
            group.bench_function(name, |b| b.iter(|| fingerprint_records(records, all_forms)));
        }
        group.finish();
    }
    let mut group = c.benchmark_group("binding_shuffled");
    group.throughput(Throughput::Elements(1));
    for (name, records) in HELLOS {
        // More orders than any memo has slots, as from a stream of connections.
        let orders: Vec<Vec<u8>> = (0..SHUFFLES).map(|seed| shuffle::shuffle_extensions(records, seed)).collect();
        let forms: Vec<_> = orders
            .iter()
            .map(|o| {
                let hello = ClientHello::parse(&o[5..], Transport::Tcp).expect("a shuffled hello parses");
                fingerprint::all(&hello, Transport::Tcp, AlpnMode::Spec)
            })
            .collect();
        assert!(forms.iter().all(|f| f.ja4 == forms[0].ja4), "one client build");
        assert!(forms.iter().any(|f| f.ja3 != forms[0].ja3), "in another order");
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                fingerprint_records(&orders[n % orders.len()], false)
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("binding_cold");
    group.throughput(Throughput::Elements(1));
    for (name, records) in HELLOS {
        let mut hello = records.to_vec();
        let at = first_cipher_at(&hello);
        let mut n: u16 = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                // A cipher value never seen before on this thread: every hash is computed.
                n = n.wrapping_add(1);
                hello[at..at + 2].copy_from_slice(&(0x6000 + n % 0x1000).to_be_bytes());
                fingerprint_records(&hello, false)
            })
        });
    }
    group.finish();
}

criterion_group!(fingerprint_benches, benches);
criterion_main!(fingerprint_benches);
