//! Arbitrary bytes through the reader, the parser and every fingerprint, on every transport.
#![no_main]

use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, HelloReader, Progress, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = HelloReader::default();
    if let Ok(Progress::Complete { consumed }) = reader.feed(data) {
        assert!(consumed <= data.len());
        let message = reader.message().expect("complete reader has a message");
        if let Ok(hello) = ClientHello::parse(message, Transport::Tcp) {
            check_forms(&hello, Transport::Tcp);
        }
    }
    // The same bytes as a bare message on each transport (QUIC CRYPTO data, DTLS reassembled).
    for transport in [Transport::Tcp, Transport::Quic, Transport::Dtls] {
        if let Ok(hello) = ClientHello::parse(data, transport) {
            check_forms(&hello, transport);
        }
    }
    let _ = fingerprint::report(data, Transport::Tcp, AlpnMode::Spec);
});

fn check_forms(hello: &ClientHello, transport: Transport) {
    for alpn in [AlpnMode::Spec, AlpnMode::Compat] {
        let all = fingerprint::all(hello, transport, alpn);
        let binding = fingerprint::binding(hello, transport, alpn);
        assert_eq!(all.ja4, binding.ja4);
        assert_eq!(all.ja4_stable, binding.ja4_stable);
        assert_eq!(all.ja3, binding.ja3);
        // Every value is header-safe ASCII (FINGERPRINTS.md §6).
        for value in [all.ja3.as_str(), &all.ja3_full, all.ja3n.as_str(), all.ja4.as_str(), &all.ja4_r, all.ja4_o.as_str(), &all.ja4_ro, all.ja4_stable.as_str()] {
            assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_,-".contains(&b)), "{value}");
        }
        assert_eq!(all.ja4.as_str()[..10], all.ja4_r[..10]);
    }
}
