//! Arbitrary client datagrams through QUIC Initial handling. The first byte picks the layer: the
//! full path (header parsing, key derivation, header protection, AEAD) or, since random bytes
//! rarely pass the AEAD tag, the decrypted-payload path (frame walk and CRYPTO reassembly).
#![no_main]

use helloguard::pcap::fuzz_quic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_quic(data);
});
