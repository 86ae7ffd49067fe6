//! The proxy over real sockets with real TLS: rustls clients with different fingerprints, the
//! built-in demo upstream, the memory store. Each client records the bytes it sends (a tee), so
//! the test can check that the fingerprints the upstream received are those of its own hello.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

mod common;

use bytes::Bytes;
use common::proxy::{start, Running};
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, HelloReader, Transport};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that keeps a copy of everything written (the client's hello among it).
struct Tee {
    inner: TcpStream,
    written: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Tee {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tee {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.written.lock().unwrap().extend_from_slice(&buf[..*n]);
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Two clients that differ in their cipher suites, so in JA4 part b and in `ja4_stable`.
#[derive(Clone, Copy)]
enum Client {
    Default,
    Aes128Only,
}

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    json: Value,
    /// The ja4_stable of the hello this connection sent, computed here from the recorded bytes.
    sent_ja4_stable: String,
    sent_ja4: String,
    sent_ja3: String,
}

async fn request(
    running: &Running,
    client: Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(running.root.clone()).unwrap();
    let mut provider = rustls::crypto::ring::default_provider();
    if let Client::Aes128Only = client {
        provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let written = Arc::new(Mutex::new(Vec::new()));
    let tee = Tee { inner: TcpStream::connect(running.addr).await.unwrap(), written: written.clone() };
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tee).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(connection);
    let mut builder = Request::builder().method(method).uri(path).header("host", "localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = sender.send_request(builder.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let sent = written.lock().unwrap().clone();
    let mut reader = HelloReader::default();
    reader.feed(&sent).unwrap();
    let hello = ClientHello::parse(reader.message().unwrap(), Transport::Tcp).unwrap();
    let binding = fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec);
    Answer {
        status,
        headers,
        json,
        sent_ja4_stable: binding.ja4_stable.to_string(),
        sent_ja4: binding.ja4.to_string(),
        sent_ja3: binding.ja3.to_string(),
    }
}

fn cookie_of(answer: &Answer) -> String {
    let set_cookie = answer.headers.get("set-cookie").unwrap().to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test]
async fn login_binds_then_allows_then_challenges_another_client() {
    let running = start(|_| {}).await;
    let login = request(&running, Client::Default, "POST", "/login", &[FORM], "username=alice").await;
    assert_eq!(login.status, 200);
    let echo = &login.json["helloguard"];
    // What the upstream received is exactly the fingerprint of the hello this client sent.
    assert_eq!(echo["ja4_stable"], login.sent_ja4_stable.as_str());
    assert_eq!(echo["ja4"], login.sent_ja4.as_str());
    assert_eq!(echo["ja3"], login.sent_ja3.as_str());
    assert_eq!(echo["decision"], "allow");
    assert_eq!(echo["reason"], "no_session");
    let cookie = cookie_of(&login);
    assert!(login.headers.get("helloguard-user-id").is_none(), "consumed header is stripped");

    let again =
        request(&running, Client::Default, "POST", "/login", &[FORM, ("cookie", &cookie)], "username=alice").await;
    assert_eq!(again.json["helloguard"]["decision"], "allow");
    assert_eq!(again.json["helloguard"]["reason"], "fingerprint_match");
    assert!(again.json["helloguard"]["session_id"].as_str().unwrap().starts_with("ses_"));

    // Each demo login rotates the cookie; the new session inherited the binding.
    let cookie = cookie_of(&again);
    let other =
        request(&running, Client::Aes128Only, "POST", "/login", &[FORM, ("cookie", &cookie)], "username=alice").await;
    assert_ne!(other.sent_ja4_stable, login.sent_ja4_stable, "the clients really differ");
    let echo = &other.json["helloguard"];
    assert_eq!(echo["decision"], "challenge", "{echo}");
    assert_eq!(echo["reason"], "fingerprint_mismatch");
    assert_eq!(echo["challenge"], "otp,push-notification,phone");

    let events = running.events.0.lock().unwrap();
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.starts_with(&["no_session", "new_session", "fingerprint_match", "rotation"]), "{reasons:?}");
    let challenge = events.iter().find(|e| e["decision"] == "challenge").unwrap();
    assert_eq!(challenge["challenge"]["type"], "otp");
    assert_eq!(challenge["additional_factors"][0]["type"], "push-notification");
    assert_eq!(challenge["outcome"], "forwarded");
}

#[tokio::test]
async fn refresh_from_another_client_is_refused_in_enforce_and_annotated_in_annotate() {
    for mode in ["enforce", "annotate"] {
        let running = start(|c| c.policy.mode = mode.parse().unwrap()).await;
        let issued =
            request(&running, Client::Default, "POST", "/oauth/token", &[FORM], "grant_type=password&username=bob")
                .await;
        let token = issued.json["refresh_token"].as_str().unwrap().to_owned();
        let body = format!("grant_type=refresh_token&refresh_token={token}");
        let stolen = request(&running, Client::Aes128Only, "POST", "/oauth/token", &[FORM], &body).await;
        if mode == "enforce" {
            assert_eq!(stolen.status, 403);
            assert_eq!(stolen.json["error"], "mfa_required");
            assert_eq!(stolen.json["mfa_requirements"]["challenge"][0]["type"], "otp");
            assert_eq!(stolen.headers.get("cache-control").unwrap(), "no-store");
            // The token was not spent: its owner refreshes fine and the new token inherits.
            let own = request(&running, Client::Default, "POST", "/oauth/token", &[FORM], &body).await;
            assert_eq!(own.status, 200, "{}", own.json);
            let rotated = own.json["refresh_token"].as_str().unwrap();
            let again = format!("grant_type=refresh_token&refresh_token={rotated}");
            let stolen_again = request(&running, Client::Aes128Only, "POST", "/oauth/token", &[FORM], &again).await;
            assert_eq!(stolen_again.status, 403, "the rotated token kept the binding");
        } else {
            assert_eq!(stolen.status, 200, "annotate forwards");
        }
        let events = running.events.0.lock().unwrap();
        let refresh_challenge = events.iter().find(|e| e["decision"] == "challenge").unwrap();
        assert_eq!(refresh_challenge["route"], "refresh");
        assert_eq!(refresh_challenge["outcome"], if mode == "enforce" { "rejected" } else { "forwarded" });
    }
}

#[tokio::test]
async fn forged_fingerprint_headers_never_reach_the_upstream() {
    let running = start(|_| {}).await;
    let forged = [
        ("helloguard-ja4", "t13d0000h2_forged"),
        ("helloguard-ja4-stable", "forged"),
        ("helloguard-decision", "allow"),
        ("cloudfront-viewer-ja4-fingerprint", "forged"),
    ];
    let answer = request(&running, Client::Default, "GET", "/whoami", &forged, "").await;
    assert_eq!(answer.json["ja4"], answer.sent_ja4.as_str());
    assert_eq!(answer.json["ja4_stable"], answer.sent_ja4_stable.as_str());
    assert_eq!(answer.json["decision"], Value::Null, "no decision on other routes");
}

#[tokio::test]
async fn bad_clients_are_closed_while_others_keep_working() {
    let running = start(|_| {}).await;
    // A malformed hello (record length overruns nothing sensible), an oversized one, plain HTTP,
    // and a client that sends 3 bytes and waits.
    let mut malformed = TcpStream::connect(running.addr).await.unwrap();
    malformed.write_all(&[22, 3, 1, 0, 8, 2, 0, 0, 4, 1, 2, 3, 4]).await.unwrap();
    let mut oversized = TcpStream::connect(running.addr).await.unwrap();
    oversized.write_all(&[22, 3, 1, 0x40, 0, 1, 0x01, 0, 0]).await.unwrap();
    let mut plain = TcpStream::connect(running.addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut silent = TcpStream::connect(running.addr).await.unwrap();
    silent.write_all(&[22, 3, 1]).await.unwrap();

    let ok = request(&running, Client::Default, "GET", "/whoami", &[], "").await;
    assert_eq!(ok.status, 200);

    for (name, stream) in
        [("malformed", &mut malformed), ("oversized", &mut oversized), ("plain", &mut plain), ("silent", &mut silent)]
    {
        let mut buf = [0u8; 64];
        // Closed by the proxy: EOF (or a TLS alert then EOF) well within the handshake timeout.
        let closed = tokio::time::timeout(Duration::from_secs(12), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{name} connection was not closed");
    }
    let ok = request(&running, Client::Default, "GET", "/whoami", &[], "").await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn a_dead_upstream_is_a_502() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let running = start(|c| c.server.upstream = origin.parse().unwrap()).await;
    let answer = request(&running, Client::Default, "GET", "/anything", &[], "").await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json["error"], "bad_gateway");
}

#[tokio::test]
async fn fingerprinting_off_records_sessions_unbound_and_never_challenges() {
    let running = start(|c| c.server.fingerprinting = false).await;
    let login = request(&running, Client::Default, "POST", "/login", &[FORM], "username=alice").await;
    assert_eq!(login.status, 200);
    assert!(login.json["helloguard"]["ja4_stable"].is_null(), "no fingerprint is forwarded: {}", login.json);
    let cookie = cookie_of(&login);
    let other =
        request(&running, Client::Aes128Only, "POST", "/login", &[FORM, ("cookie", &cookie)], "username=alice").await;
    let echo = &other.json["helloguard"];
    assert_eq!(echo["decision"], "allow", "{echo}");
    assert_eq!(echo["reason"], "fingerprint_unknown");
    assert!(echo["session_id"].as_str().unwrap().starts_with("ses_"), "the session was recorded: {echo}");
}
