//! What must not be buffered: WebSocket upgrades pass through (bytes both ways after `101`; an
//! upgrade request answered otherwise is an ordinary exchange, bound as usual), and
//! large request and response bodies stream (the far side sees the first chunk before the near side
//! sends the rest; a buffering proxy would deadlock here and hit the bound).

use std::sync::Arc;
use std::time::Duration;

use crate::common;

use bytes::Bytes;
use common::client::{connect, cookie_of, request, Client, FORM};
use common::proxy::start;
use common::upstream::{full, origin, serve, UpstreamBody};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// A bound for a hung test, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(20);

/// A body fed from a channel, chunk by chunk.
fn channel_body() -> (mpsc::Sender<Bytes>, UpstreamBody) {
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    let frames = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(chunk)), receiver))
    });
    (sender, StreamBody::new(frames).boxed())
}

#[tokio::test]
async fn a_websocket_upgrade_passes_through() {
    let upstream = serve(|mut request| async move {
        assert_eq!(request.headers()["upgrade"], "websocket");
        assert!(request.headers().contains_key("helloguard-ja4"), "fingerprints go along");
        let upgraded = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            let mut io = TokioIo::new(upgraded.await.unwrap());
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = io.read(&mut buf).await {
                io.write_all(&buf[..n].to_ascii_uppercase()).await.unwrap();
            }
        });
        let mut response = hyper::Response::new(full(""));
        *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
        response.headers_mut().insert("upgrade", "websocket".parse().unwrap());
        response.headers_mut().insert("connection", "upgrade".parse().unwrap());
        response.headers_mut().insert("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".parse().unwrap());
        response
    })
    .await;
    let running = start(|c| c.server.upstream = origin(upstream)).await;
    let mut connected = connect(&running.target(), Client::Default, None).await.unwrap();
    let handshake = "GET /socket HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
                     sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    connected.tls.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(connected.tls.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket") && head.contains("sec-websocket-accept"), "{head}");
    for message in ["hello", "frames both ways"] {
        connected.tls.write_all(message.as_bytes()).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(LIMIT, connected.tls.read_exact(&mut echoed)).await.unwrap().unwrap();
        assert_eq!(echoed, message.to_ascii_uppercase().as_bytes());
    }
}

#[tokio::test]
async fn a_login_that_asks_for_an_upgrade_is_still_bound() {
    let running = start(|_| {}).await;
    let upgrade = [FORM, ("connection", "upgrade"), ("upgrade", "websocket")];
    let first = request(&running, Client::Default, "POST", "/login", &upgrade, "username=alice").await;
    assert_eq!(first.status, 200, "the demo does not switch: {}", first.json);
    let cookie = cookie_of(&first);
    let again =
        request(&running, Client::Default, "POST", "/login", &[FORM, ("cookie", &cookie)], "username=alice").await;
    assert_eq!(again.json["helloguard"]["reason"], "fingerprint_match", "{}", again.json);
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    // The upstream sends its first chunk, then the rest only once the client has the first; it
    // reports the request's first chunk before the client sends the rest.
    let client_has_first = Arc::new(Notify::new());
    let upstream_has_first = Arc::new(Notify::new());
    let (client_signal, upstream_signal) = (client_has_first.clone(), upstream_has_first.clone());
    let upstream = serve(move |request| {
        let (client_has_first, upstream_has_first) = (client_signal.clone(), upstream_signal.clone());
        async move {
            if request.uri().path() == "/upload" {
                let mut body = request.into_body();
                let mut received = 0;
                while let Some(frame) = body.frame().await {
                    received += frame.unwrap().data_ref().map_or(0, Bytes::len);
                    upstream_has_first.notify_one();
                }
                return hyper::Response::new(full(received.to_string()));
            }
            let (sender, body) = channel_body();
            tokio::spawn(async move {
                sender.send(Bytes::from(vec![b'a'; 64 * 1024])).await.unwrap();
                client_has_first.notified().await;
                for _ in 0..32 {
                    sender.send(Bytes::from(vec![b'b'; 64 * 1024])).await.unwrap();
                }
            });
            hyper::Response::new(body)
        }
    })
    .await;
    let running = start(|c| c.server.upstream = origin(upstream)).await;

    let connected = connect(&running.target(), Client::Default, None).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(connected.tls)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/download").header("host", "localhost").body(full("")).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let mut body = response.into_body();
    let mut total = 0;
    while let Some(frame) = tokio::time::timeout(LIMIT, body.frame()).await.expect("response streams") {
        total += frame.unwrap().data_ref().map_or(0, Bytes::len);
        client_has_first.notify_one();
    }
    assert_eq!(total, 33 * 64 * 1024);

    let (chunks, upload) = channel_body();
    let request = hyper::Request::post("/upload").header("host", "localhost").body(upload).unwrap();
    let answer = tokio::spawn(sender.send_request(request));
    chunks.send(Bytes::from(vec![b'x'; 64 * 1024])).await.unwrap();
    tokio::time::timeout(LIMIT, upstream_has_first.notified()).await.expect("request streams");
    for _ in 0..32 {
        chunks.send(Bytes::from(vec![b'y'; 64 * 1024])).await.unwrap();
    }
    drop(chunks);
    let answer = answer.await.unwrap().unwrap().into_body().collect().await.unwrap().to_bytes();
    assert_eq!(answer, (33 * 64 * 1024).to_string());
}

#[tokio::test]
async fn the_header_timeout_spares_a_slow_response_and_closes_the_idle_connection_after_it() {
    // A 1 s header read timeout; the response takes about 2 s to stream. The timeout is for request
    // heads: the response arrives whole, and the connection is closed once it then sits idle.
    let upstream = serve(|_request| async move {
        let (sender, body) = channel_body();
        tokio::spawn(async move {
            for _ in 0..4 {
                sender.send(Bytes::from_static(b"tick")).await.unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        hyper::Response::new(body)
    })
    .await;
    let running = start(|c| {
        c.server.upstream = origin(upstream);
        c.server.header_read_timeout = helloguard::config::ConfigDuration(Duration::from_secs(1));
    })
    .await;

    let connected = connect(&running.target(), Client::Default, None).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(connected.tls)).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get("/slow").header("host", "localhost").body(full("")).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let body = tokio::time::timeout(LIMIT, response.into_body().collect()).await.expect("the response ends");
    assert_eq!(body.unwrap().to_bytes(), "ticktickticktick", "the whole response, though slower than the timeout");
    let closed = tokio::time::timeout(LIMIT, connection).await;
    assert!(closed.is_ok(), "the idle connection is closed at the header read timeout");
}
