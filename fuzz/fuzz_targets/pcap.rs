//! Arbitrary bytes as a pcap or pcapng file through the whole replay path: file parsing, link/IP
//! decoding, TCP/QUIC/DTLS reassembly and the hello parser. Nothing may panic or grow unbounded.
#![no_main]

use helloguard::pcap::{replay, Options, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = Options { all_hellos: true, ..Options::default() };
    let mut summary = Summary::default();
    let _ = replay("fuzz", data, &options, &mut summary, &mut |_| {}, &mut |_| {});
});
