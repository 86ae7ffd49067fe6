//! Property: however a hello is split into TLS records and TCP reads, the reader returns the same
//! message and the fingerprints are those of the whole.
use crate::common;

use common::*;
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, HelloReader, Progress, Transport};
use proptest::prelude::*;

/// Real TCP hellos from the vectors (a synthetic Chrome-like one when the vectors are absent).
fn hellos() -> Vec<Vec<u8>> {
    let Some(dir) = vectors() else {
        let exts = vec![(0x0000, sni("example.com")), (0x0010, alpn(&[b"h2"])), (0x0015, vec![0; 1500])];
        return vec![build_hello(0x0303, &[0x1301, 0x1302, 0x1303], &exts)];
    };
    jsonl(&dir.join("clienthellos.jsonl"))
        .iter()
        .filter(|r| r["transport"] == "tcp")
        .map(|r| hex::decode(r["handshake_hex"].as_str().unwrap()).unwrap())
        .collect()
}

/// Split `message` into records at the given sizes (cycled), as a client or middlebox might.
fn spread(message: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= message.len() {
            break;
        }
        let end = (at + size).min(message.len());
        out.extend(records(&message[at..end], usize::MAX));
        at = end;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_records_any_chunks_same_fingerprints(
        pick in any::<prop::sample::Index>(),
        record_sizes in prop::collection::vec(1usize..2000, 1..8),
        chunk_sizes in prop::collection::vec(1usize..700, 1..16),
    ) {
        let all = hellos();
        let message = pick.get(&all);
        let stream = spread(message, &record_sizes);
        let mut reader = HelloReader::default();
        let mut at = 0;
        let mut progress = Progress::NeedMore;
        for size in chunk_sizes.iter().cycle() {
            if at >= stream.len() { break; }
            let end = (at + size).min(stream.len());
            progress = reader.feed(&stream[at..end]).unwrap();
            at = end;
            if progress != Progress::NeedMore { break; }
        }
        let complete = matches!(progress, Progress::Complete { .. });
        prop_assert!(complete);
        prop_assert_eq!(at, stream.len(), "completes exactly at the last record's end");
        let got = reader.message().unwrap();
        prop_assert_eq!(got, message.as_slice());
        let whole = fingerprint::all(&ClientHello::parse(message, Transport::Tcp).unwrap(), Transport::Tcp, AlpnMode::Spec);
        let split = fingerprint::all(&ClientHello::parse(got, Transport::Tcp).unwrap(), Transport::Tcp, AlpnMode::Spec);
        prop_assert_eq!(whole, split);
    }
}
