//! Criterion: the per-connection fingerprint path on real hellos captured on this machine
//! (`pcaps/hellos/`: curl/OpenSSL ~0.5 KB, Chromium post-quantum ~1.9 KB, as TLS records).
//!
//! `binding`: reader + parse + ja3 + ja4 + ja4_stable, what the proxy runs once per connection.
//! `all_forms`: reader + parse + all eight forms, what the replay prints.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, HelloReader, Transport};
use std::hint::black_box;

const HELLOS: [(&str, &[u8]); 2] = [
    ("curl_517B", include_bytes!("../pcaps/hellos/curl.bin")),
    ("chromium_pq_1917B", include_bytes!("../pcaps/hellos/chromium.bin")),
];

fn read(reader: &mut HelloReader, records: &[u8]) {
    reader.reset();
    reader.feed(records).expect("captured hello reads");
}

fn benches(c: &mut Criterion) {
    for (group_name, all_forms) in [("binding", false), ("all_forms", true)] {
        let mut group = c.benchmark_group(group_name);
        for (name, records) in HELLOS {
            group.throughput(Throughput::Elements(1));
            let mut reader = HelloReader::default();
            group.bench_function(name, |b| {
                b.iter(|| {
                    read(&mut reader, black_box(records));
                    let hello =
                        ClientHello::parse(reader.message().unwrap_or_default(), Transport::Tcp).expect("parses");
                    if all_forms {
                        black_box(fingerprint::all(&hello, Transport::Tcp, AlpnMode::Spec));
                    } else {
                        black_box(fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec));
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(fingerprint_benches, benches);
criterion_main!(fingerprint_benches);
