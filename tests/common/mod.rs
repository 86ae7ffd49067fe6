//! Shared test support: where the reference vectors are, a ClientHello builder, generated captures.
#![allow(dead_code)] // the integration tests, `no_alloc`, a bench and an example each use a subset

pub mod api;
pub mod binary;
pub mod capture;
pub mod chromium;
pub mod client;
pub mod firefox;
pub mod forwarder;
pub mod logout;
pub mod permissive;
pub mod proxy;
pub mod rp;
pub mod upstream;

use std::path::PathBuf;

/// `../shared/vectors`, or `None` (with a printed reason) when absent. With
/// `HELLOGUARD_REQUIRE_VECTORS=1` (set by `.ci/run`) an absent folder fails the test instead.
pub fn vectors() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors"));
    if dir.is_dir() {
        return Some(dir);
    }
    skip_unless_required("HELLOGUARD_REQUIRE_VECTORS", &format!("reference vectors not found at {}", dir.display()));
    None
}

/// A prerequisite from outside the crate (the vectors, a tool, a server) is missing: print why, so
/// the caller can skip its test, or panic when the environment variable `require` is `1`, as
/// `.ci/run` sets it for everything it installs, so that CI never passes by skipping.
pub fn skip_unless_required(require: &str, why: &str) {
    if std::env::var(require).as_deref() == Ok("1") {
        panic!("{why}, but {require}=1 requires it");
    }
    eprintln!("skipping: {why} (set {require}=1 to fail instead)");
}

/// Read a JSON-lines file of the vectors.
pub fn jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

pub fn json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A TLS ClientHello handshake message (4-byte header) from its parts.
pub fn build_hello(legacy_version: u16, ciphers: &[u16], extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = legacy_version.to_be_bytes().to_vec();
    body.extend([0x5a; 32]);
    body.push(0);
    body.extend(((ciphers.len() * 2) as u16).to_be_bytes());
    ciphers.iter().for_each(|c| body.extend(c.to_be_bytes()));
    body.extend([1, 0]);
    let mut block = Vec::new();
    for (kind, data) in extensions {
        block.extend(kind.to_be_bytes());
        block.extend((data.len() as u16).to_be_bytes());
        block.extend(data);
    }
    body.extend((block.len() as u16).to_be_bytes());
    body.extend(block);
    let mut message = vec![1];
    message.extend(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend(body);
    message
}

/// A u16-length-prefixed list of u16 values (signature_algorithms, supported_groups).
pub fn u16_list(values: &[u16]) -> Vec<u8> {
    let mut out = ((values.len() * 2) as u16).to_be_bytes().to_vec();
    values.iter().for_each(|v| out.extend(v.to_be_bytes()));
    out
}

/// An ALPN extension body with the given protocol names.
pub fn alpn(names: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for name in names {
        list.push(name.len() as u8);
        list.extend_from_slice(name);
    }
    let mut out = (list.len() as u16).to_be_bytes().to_vec();
    out.extend(list);
    out
}

/// A server_name extension body for one host name.
pub fn sni(host: &str) -> Vec<u8> {
    let mut entry = vec![0];
    entry.extend((host.len() as u16).to_be_bytes());
    entry.extend(host.as_bytes());
    let mut out = (entry.len() as u16).to_be_bytes().to_vec();
    out.extend(entry);
    out
}

/// A supported_versions extension body (client form: u8 length, u16 values).
pub fn versions(values: &[u16]) -> Vec<u8> {
    let mut out = vec![(values.len() * 2) as u8];
    values.iter().for_each(|v| out.extend(v.to_be_bytes()));
    out
}

/// Well-formed minimal data for an extension type, so the builder's hellos parse.
pub fn minimal_data(kind: u16) -> Vec<u8> {
    match kind {
        0x0000 => sni("example.com"),
        0x000a | 0x000d | 0x0010 => vec![0, 0],
        0x000b | 0x002b => vec![0],
        _ => vec![],
    }
}

/// Wrap a handshake message in TLS records of at most `record_size` payload bytes.
pub fn records(message: &[u8], record_size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in message.chunks(record_size.max(1)) {
        out.extend([22, 3, 1]);
        out.extend((part.len() as u16).to_be_bytes());
        out.extend(part);
    }
    out
}

/// The adaptive-security example (`examples/actions/adaptive.js`) comparing `compare` instead of
/// what it ships with.
pub fn adaptive_action(dir: &std::path::Path, compare: &str) -> PathBuf {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/actions/adaptive.js");
    let text = std::fs::read_to_string(shipped).unwrap();
    let line = "const COMPARE = [\"ja4_stable\"];";
    assert!(text.contains(line), "the example names what it compares on one line");
    let file = dir.join(format!("adaptive-{compare}.js"));
    std::fs::write(&file, text.replace(line, &format!("const COMPARE = [\"{compare}\"];"))).unwrap();
    file
}
