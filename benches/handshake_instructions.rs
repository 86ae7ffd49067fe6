//! What helloguard adds to a TLS handshake, in instructions (callgrind, via gungraun), in memory
//! with no sockets: capture + fingerprint + decision on a ClientHello, against the server side of
//! the full TLS 1.3 handshake that the same hello starts (rustls with the ring provider and the
//! self-signed ECDSA P-256 certificate `serve` makes).
//!
//! The server's handshake is measured in its two steps: `server_first_flight` (read the hello,
//! answer ServerHello … Finished) and `server_last_flight` (read the client's Finished, send the
//! session tickets). The share is `capture_fingerprint_decide / (first + last)`.
//!
//! `warm`: the client build was fingerprinted before on this thread (a proxy's steady state, the
//! memo hits); `cold`: a never-seen client build. valgrind cannot execute SHA-NI, so SHA-256 runs
//! in software on both sides of the ratio. Needs valgrind and
//! `cargo install gungraun-runner --version <gungraun's version>`.
use std::hint::black_box;
use std::sync::Arc;

use gungraun::{library_benchmark, library_benchmark_group, main};
use helloguard::engine::{decide, Decision, Event, Observed, Policy, Route, Verdict};
use helloguard::fingerprint::{self, AlpnMode, Binding};
use helloguard::hello::{ClientHello, HelloReader, Transport};
use helloguard::proxy::certificates::Certificates;
use helloguard::proxy::tls::{self_signed_files, server_config, Identity};
use helloguard::session::Metadata;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

const CURL: &[u8] = include_bytes!("../pcaps/hellos/curl.bin");
/// The proxy's default `[server] max_hello_size`.
const MAX_HELLO: usize = 16 * 1024;

fn configs() -> (Arc<rustls::ServerConfig>, Arc<ClientConfig>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed_files(dir.path()).expect("self-signed files");
    let identity = Identity::from_pem_files(&cert, &key).expect("self-signed identity");
    let certificates = Certificates::load((cert, key), Vec::new(), Default::default()).expect("certificates");
    let server = server_config(Arc::new(certificates)).expect("server config");
    let mut roots = RootCertStore::empty();
    roots.add(identity.chain[0].clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("client versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (server, Arc::new(client))
}

/// Moves everything `from` wants to write into a buffer.
fn drain(from: &mut impl FnMut(&mut Vec<u8>) -> std::io::Result<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    while from(&mut out).expect("write_tls") > 0 {}
    out
}

/// A fresh server connection and the bytes it is about to read.
struct Step {
    server: ServerConnection,
    incoming: Vec<u8>,
}

/// Setup (not measured): a new client's ClientHello, for a new server connection.
fn before_first_flight() -> Step {
    let (server_config, client_config) = configs();
    let mut client = ClientConnection::new(client_config, "localhost".try_into().expect("name")).expect("client");
    let incoming = drain(&mut |out| client.write_tls(out));
    Step { server: ServerConnection::new(server_config).expect("server"), incoming }
}

/// Setup (not measured): a handshake up to the client's Finished, which the server has yet to read.
fn before_last_flight() -> Step {
    let (server_config, client_config) = configs();
    let mut client = ClientConnection::new(client_config, "localhost".try_into().expect("name")).expect("client");
    let mut server = ServerConnection::new(server_config).expect("server");
    let hello = drain(&mut |out| client.write_tls(out));
    server.read_tls(&mut hello.as_slice()).expect("read hello");
    server.process_new_packets().expect("server step 1");
    let flight = drain(&mut |out| server.write_tls(out));
    client.read_tls(&mut flight.as_slice()).expect("read flight");
    client.process_new_packets().expect("client step");
    let incoming = drain(&mut |out| client.write_tls(out));
    Step { server, incoming }
}

fn server_step(mut step: Step) -> Vec<u8> {
    let mut incoming = step.incoming.as_slice();
    while !incoming.is_empty() {
        step.server.read_tls(&mut incoming).expect("read_tls");
        step.server.process_new_packets().expect("handshake step");
    }
    drain(&mut |out| step.server.write_tls(out))
}

#[library_benchmark]
#[bench::tls13_ecdsa_p256(before_first_flight())]
fn server_first_flight(step: Step) -> Vec<u8> {
    black_box(server_step(step))
}

#[library_benchmark]
#[bench::tls13_ecdsa_p256(before_last_flight())]
fn server_last_flight(step: Step) -> Vec<u8> {
    black_box(server_step(step))
}

/// The per-connection work the proxy adds: read the hello with the capture's reader, parse,
/// fingerprint, and decide a login against a stored binding.
fn capture_and_decide(records: &[u8], stored: &Metadata, policy: &Policy) -> Option<(Binding, Verdict)> {
    let mut reader = HelloReader::new(MAX_HELLO);
    reader.feed(records).ok()?;
    let hello = ClientHello::parse(reader.message()?, Transport::Tcp).ok()?;
    let binding = fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec);
    let observed = Observed {
        ja3: binding.ja3.as_str(),
        ja3n: "",
        ja4: binding.ja4.as_str(),
        ja4_stable: binding.ja4_stable.as_str(),
        ja4_stable_v1: binding.ja4_stable_v1.as_str(),
    };
    let event = Event {
        route: Route::Login,
        session_id: Some("ses_0123456789abcdefghijklmnopqrstuv"),
        refresh_token_id: None,
        stored: Some(stored),
        observed: Some(observed),
    };
    let decision: Decision<'_> = decide(&event, policy);
    Some((binding, decision.verdict))
}

struct Hello {
    records: Vec<u8>,
    stored: Metadata,
    policy: Policy,
}

/// Setup (not measured): a rustls client's hello, its stored binding, and (when `warm`) one
/// earlier fingerprint of the same client build on this thread.
fn rustls_hello(warm: bool) -> Hello {
    let records = before_first_flight().incoming;
    let policy = Policy::default();
    let mut reader = HelloReader::new(MAX_HELLO);
    reader.feed(CURL).expect("curl hello");
    let other = ClientHello::parse(reader.message().expect("message"), Transport::Tcp).expect("parse");
    black_box(fingerprint::binding(&other, Transport::Tcp, AlpnMode::Spec));
    // Warm: this build logged in before (the stored binding is its own). Cold: a new build meets
    // a session bound to another client.
    let stored_key = if warm {
        let (binding, _) = capture_and_decide(&records, &Metadata::new(), &policy).expect("rustls hello");
        binding.ja4_stable.as_str().to_owned()
    } else {
        "t13d1516h2_8daaf6152771_e5627efa2ab1".to_owned()
    };
    let stored = Metadata::from_pairs([("ja4_stable", stored_key)]).expect("metadata");
    Hello { records, stored, policy }
}

#[library_benchmark]
#[bench::warm(rustls_hello(true))]
#[bench::cold(rustls_hello(false))]
fn capture_fingerprint_decide(hello: Hello) -> Option<(Binding, Verdict)> {
    black_box(capture_and_decide(black_box(&hello.records), &hello.stored, &hello.policy))
}

library_benchmark_group!(
    name = handshake;
    benchmarks = server_first_flight, server_last_flight, capture_fingerprint_decide
);

main!(library_benchmark_groups = handshake);
