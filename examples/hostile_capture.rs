//! Write the hostile capture of `tests/common/capture.rs` with a chosen number of connections per
//! phase, to measure the replay's peak memory at sizes the test does not run:
//!
//! ```text
//! cargo run --release --example hostile_capture -- /tmp/hostile.pcap 200000
//! /usr/bin/time -v target/release/helloguard replay /tmp/hostile.pcap > /dev/null
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, flows] = args.as_slice() else {
        eprintln!("usage: hostile_capture FILE CONNECTIONS_PER_PHASE");
        std::process::exit(2);
    };
    let Ok(flows) = flows.parse() else {
        eprintln!("hostile_capture: {flows:?} is not a number of connections");
        std::process::exit(2);
    };
    common::capture::hostile(std::path::Path::new(path), flows);
}
