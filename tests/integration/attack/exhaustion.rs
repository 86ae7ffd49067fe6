//! What a client can make the proxy hold: a token-route body trickled in one-byte TLS records (its
//! memory is bounded by its size plus a constant, and it has a deadline), idle HTTP/2 connections
//! (closed after `idle_timeout` whatever their pings, so they cannot hold `max_connections`), and
//! request heads over `max_header_size` (refused at that size exactly).

use std::time::{Duration, Instant};

use crate::common;
use common::binary::Served;
use common::client::{build, connect, connect_h2, request, send, Client, Connected, Target};
use common::proxy::start;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Token-route bodies trickled one byte per TLS record, this many connections at once.
const TRICKLERS: usize = 20;
const BODY: usize = 500;

/// A token request head whose body (`BODY` bytes) follows byte by byte.
fn trickled_head(length: usize) -> String {
    format!(
        "POST /oauth/token HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {length}\r\n\r\n"
    )
}

fn body_of(length: usize) -> Vec<u8> {
    let mut body = b"grant_type=password&username=trickle&pad=".to_vec();
    body.resize(length, b'a');
    body
}

/// Writes every byte but the last of `body`, each in its own TLS record, pausing now and then so
/// that the proxy reads them one by one.
async fn trickle(connected: &mut Connected, body: &[u8]) {
    connected.tls.write_all(trickled_head(body.len()).as_bytes()).await.unwrap();
    for (at, byte) in body[..body.len() - 1].iter().enumerate() {
        connected.tls.write_all(&[*byte]).await.unwrap();
        connected.tls.flush().await.unwrap();
        if at % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_token_body_costs_its_size_not_a_buffer_per_record() {
    let served = Served::start("[server]\nworkers = 1\n");
    let roots = [served.root()];
    let target = Target { addr: served.addr, roots: &roots, server_name: "localhost" };
    let warm = send(connect(&target, Client::Default, None).await.unwrap(), build("GET", "/whoami", &[], "")).await;
    assert_eq!(warm.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = served.rss_kib();

    let body = body_of(BODY);
    let mut tricklers = Vec::new();
    for _ in 0..TRICKLERS {
        let (target_addr, roots, body) = (served.addr, roots.clone(), body.clone());
        tricklers.push(tokio::spawn(async move {
            let target = Target { addr: target_addr, roots: &roots, server_name: "localhost" };
            let mut connected = connect(&target, Client::Default, None).await.unwrap();
            trickle(&mut connected, &body).await;
            connected
        }));
    }
    let mut open = Vec::new();
    for trickler in tricklers {
        open.push(trickler.await.unwrap());
    }
    let during = served.rss_kib();
    println!(
        "{} one-byte records on {TRICKLERS} token bodies: VmRSS {before} KiB -> {during} KiB",
        TRICKLERS * (BODY - 1)
    );
    // The old code held a read buffer (kilobytes) per record: tens of MiB here.
    assert!(during < before + 6 * 1024, "VmRSS {before} KiB -> {during} KiB");

    // Each body completes and is answered.
    for mut connected in open {
        connected.tls.write_all(&body[BODY - 1..]).await.unwrap();
        let mut answer = vec![0; 4096];
        let read = connected.tls.read(&mut answer).await.unwrap();
        assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_comes_back_after_a_thousand_trickling_clients_leave() {
    const CLIENTS: usize = 1000;
    rlimit::increase_nofile_limit(4 * CLIENTS as u64 + 256).unwrap();
    let served = Served::start("[server]\nworkers = 1\n");
    let roots = [served.root()];
    let target = Target { addr: served.addr, roots: &roots, server_name: "localhost" };
    send(connect(&target, Client::Default, None).await.unwrap(), build("GET", "/whoami", &[], "")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = served.rss_kib();
    let body = body_of(200);
    let mut held = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS / 50 {
        let batch = (0..50).map(|_| connect(&target, Client::Default, None));
        for connected in futures_util::future::join_all(batch).await {
            let mut connected = connected.unwrap();
            connected.tls.write_all(trickled_head(body.len()).as_bytes()).await.unwrap();
            for byte in &body[..100] {
                connected.tls.write_all(&[*byte]).await.unwrap();
                connected.tls.flush().await.unwrap();
            }
            held.push(connected);
        }
    }
    let peak = served.rss_kib();
    drop(held);
    // The connections close; the allocator returns what they held (give it a moment).
    let mut after = served.rss_kib();
    for _ in 0..50 {
        if after <= before + before / 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = served.rss_kib();
    }
    println!("{CLIENTS} trickling clients: VmRSS {before} KiB -> {peak} KiB held -> {after} KiB after they left");
    assert!(after <= before + before / 5, "VmRSS {before} KiB -> {peak} KiB -> {after} KiB");
}

#[tokio::test]
async fn a_token_body_not_sent_in_time_is_answered_408_and_the_connection_closed() {
    let running =
        start(|c| c.server.body_read_timeout = helloguard::config::ConfigDuration(Duration::from_secs(1))).await;
    let mut connected = connect(&running.target(), Client::Default, None).await.unwrap();
    connected.tls.write_all(trickled_head(100).as_bytes()).await.unwrap();
    connected.tls.write_all(b"grant_type=").await.unwrap();
    connected.tls.flush().await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), connected.tls.read_to_end(&mut answer)).await.unwrap().ok();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(9), "answered at the deadline, then closed");
    assert_eq!(running.metric("helloguard_body_read_timeouts_total").await, 1.0);
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_whatever_its_pings() {
    let idle = Duration::from_secs(2);
    let running = start(|c| {
        c.server.idle_timeout = helloguard::config::ConfigDuration(idle);
        c.server.max_connections = 3;
    })
    .await;
    // The client answers the server's pings (hyper does), opens one stream, then nothing.
    let mut idle_clients = Vec::new();
    for _ in 0..3 {
        let mut sender = connect_h2(&running.target(), Client::Default).await.unwrap();
        let response = sender.send_request(build("GET", "https://localhost/whoami", &[], "")).await.unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.into_body().collect().await;
        idle_clients.push(sender);
    }
    // All three slots are held now.
    let started = Instant::now();
    for sender in &mut idle_clients {
        while !sender.is_closed() {
            assert!(
                started.elapsed() < idle * 4,
                "an idle HTTP/2 connection was still open after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(started.elapsed() >= idle / 2, "closed by the idle timeout, not at once");
    // The slots are free again.
    let answer = request(&running, Client::Default, "GET", "/whoami", &[], "").await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn a_busy_http2_connection_is_not_closed_while_a_stream_is_open() {
    let running = start(|c| c.server.idle_timeout = helloguard::config::ConfigDuration(Duration::from_secs(1))).await;
    let mut sender = connect_h2(&running.target(), Client::Default).await.unwrap();
    for _ in 0..5 {
        let response = sender.send_request(build("GET", "https://localhost/whoami", &[], "")).await.unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.into_body().collect().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!sender.is_closed(), "requests every half second keep it open");
}

#[tokio::test]
async fn a_request_head_over_max_header_size_is_refused() {
    let running = start(|_| {}).await;
    let limit = 64 * 1024;
    let fits = "a".repeat(limit - 1024);
    let answer = request(&running, Client::Default, "GET", "/whoami", &[("x-big", &fits)], "").await;
    assert_eq!(answer.status, 200);
    let over = "a".repeat(limit + 512);
    let mut connected = connect(&running.target(), Client::Default, None).await.unwrap();
    let head = format!("GET /whoami HTTP/1.1\r\nhost: localhost\r\nx-big: {over}\r\n\r\n");
    connected.tls.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), connected.tls.read_to_end(&mut answer)).await.unwrap().ok();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 431"), "{}", text.lines().next().unwrap_or_default());
}
