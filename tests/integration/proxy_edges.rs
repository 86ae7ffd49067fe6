//! Peers that fail at the edges, over real sockets: each bad connection is closed or answered
//! cleanly while a concurrent good request still succeeds. (Malformed, oversized, plain-HTTP and
//! 3-byte hellos are in `proxy_e2e.rs`; a dying Redis is in `proxy_store_failure.rs`.)

use std::process::Command;
use std::time::Duration;

use crate::common;

use common::client::{build, closed_by_peer, connect, request, send, Client, Pace};
use common::proxy::{start, Running};
use common::upstream::{full, origin, serve};
use helloguard::config::ConfigDuration;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A bound for a hung test, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(20);

async fn good_request_works(running: &Running) {
    let answer = request(running, Client::Default, "GET", "/whoami", &[], "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["ja4"], answer.sent.ja4.as_str());
}

/// `helloguard fingerprint` (the real binary) of these bytes.
fn cli_fingerprint(records: &[u8]) -> Value {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_helloguard"))
        .arg("fingerprint")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(records).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromium_size_hello_written_in_small_pieces_is_fingerprinted_like_the_cli() {
    let running = start(|c| c.server.hello_timeout = ConfigDuration(Duration::from_secs(5))).await;
    let pace = Pace { piece: 64, pause: Duration::from_millis(5) };
    let target = running.target();
    let slow = async {
        let connected = connect(&target, Client::Large, Some(pace)).await.unwrap();
        send(connected, build("GET", "/whoami", &[], "")).await
    };
    let (slow, ()) = tokio::join!(slow, good_request_works(&running));
    assert!(slow.sent.records.len() > 1800, "as large as Chromium's hello: {}", slow.sent.records.len());
    assert!(slow.sent.records.len() / pace.piece > 25, "written in many pieces");
    assert_eq!(slow.status, 200);
    let cli = cli_fingerprint(&slow.sent.records);
    for key in ["ja3", "ja4", "ja4_stable"] {
        assert_eq!(slow.json[key], cli[key], "{key}: upstream saw {} / CLI {}", slow.json, cli);
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_closed() {
    let running = start(|c| c.server.header_read_timeout = ConfigDuration(Duration::from_secs(1))).await;
    let mut stalled = connect(&running.target(), Client::Default, None).await.unwrap();
    stalled.tls.write_all(b"GET /whoami HTTP/1.1\r\nhost: localhost\r\nx-never: ends").await.unwrap();
    stalled.tls.flush().await.unwrap();
    good_request_works(&running).await;
    assert!(closed_by_peer(&mut stalled.tls, LIMIT).await, "closed at the header read timeout");
    good_request_works(&running).await;
}

#[tokio::test]
async fn half_open_connections_are_closed_or_answered() {
    let running = start(|c| c.server.hello_timeout = ConfigDuration(Duration::from_secs(5))).await;

    // The client shuts its write side before any hello, and in the middle of one.
    let mut before_hello = TcpStream::connect(running.addr).await.unwrap();
    before_hello.shutdown().await.unwrap();
    let mut mid_hello = TcpStream::connect(running.addr).await.unwrap();
    mid_hello.write_all(&[22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3]).await.unwrap();
    mid_hello.shutdown().await.unwrap();
    good_request_works(&running).await;
    assert!(closed_by_peer(&mut before_hello, LIMIT).await);
    assert!(closed_by_peer(&mut mid_hello, LIMIT).await);

    // A whole request, then close_notify and FIN: the answer still comes, then the proxy closes.
    let mut connected = connect(&running.target(), Client::Default, None).await.unwrap();
    connected.tls.write_all(b"GET /whoami HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
    connected.tls.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, connected.tls.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ja4\":\"t13d"), "{answer}");
    good_request_works(&running).await;
}

#[tokio::test]
async fn a_silent_upstream_is_a_504_and_a_refusing_one_a_502() {
    let upstream = serve(|request| async move {
        if request.uri().path() == "/hang" {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        hyper::Response::new(full("fine"))
    })
    .await;
    let running = start(|c| {
        c.server.upstream = origin(upstream);
        c.server.upstream_timeout = ConfigDuration(Duration::from_secs(1));
    })
    .await;
    let hang = request(&running, Client::Default, "GET", "/hang", &[], "");
    let fine = request(&running, Client::Default, "GET", "/fine", &[], "");
    let (hang, fine) = tokio::join!(hang, fine);
    assert_eq!((fine.status, &fine.body[..]), (200, &b"fine"[..]));
    assert_eq!(hang.status, 504);
    assert_eq!(hang.headers["content-type"], "application/json");
    assert_eq!(hang.json["error"], "gateway_timeout");
    assert_eq!(running.metric("helloguard_upstream_timeouts_total").await, 1.0);

    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = refusing.local_addr().unwrap();
    drop(refusing);
    let running = start(|c| c.server.upstream = origin(down)).await;
    let answer = request(&running, Client::Default, "GET", "/anything", &[], "").await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json["error"], "bad_gateway");
    assert!(answer.json["message"].as_str().unwrap().starts_with("upstream unavailable"));
    assert_eq!(running.metric("helloguard_upstream_errors_total").await, 1.0);
}
