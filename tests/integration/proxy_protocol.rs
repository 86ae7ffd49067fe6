//! PROXY protocol v1 and v2 in front of the TLS listener, over real sockets: the source address a
//! trusted peer names becomes the client address in `X-Forwarded-For`, the audit's `client_addr` and
//! the session's `device`; untrusted, malformed, missing or disabled-version headers close the
//! connection while other connections keep working.

use std::time::Duration;

use crate::common;

use common::client::{build, connect_after, cookie_of, send, Answer, Client, Pace, FORM};
use common::proxy::{start, Running};
use common::upstream::{full, origin, serve};
use helloguard::config::ProxyProtocol;

/// An upstream whose `/login` sets a session cookie and which echoes `X-Forwarded-For`.
async fn upstream() -> std::net::SocketAddr {
    serve(|request| async move {
        let forwarded = request.headers().get("x-forwarded-for").map(|v| v.to_str().unwrap().to_owned());
        let mut response = hyper::Response::new(full(serde_json::json!({ "xff": forwarded }).to_string()));
        if request.uri().path() == "/login" {
            let cookie = format!("session=s{}; Path=/", rand_suffix());
            response.headers_mut().insert("set-cookie", cookie.parse().unwrap());
        }
        response
    })
    .await
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

async fn proxy(protocol: ProxyProtocol, trusted: &str) -> Running {
    let upstream = upstream().await;
    start(|c| {
        c.server.upstream = origin(upstream);
        c.server.proxy_protocol = protocol;
        c.server.trusted_proxies = vec![trusted.parse().unwrap()];
        c.server.hello_timeout = helloguard::config::ConfigDuration(Duration::from_secs(3));
    })
    .await
}

async fn login(running: &Running, preamble: &[u8], pace: Option<Pace>) -> std::io::Result<Answer> {
    let connected = connect_after(&running.target(), Client::Default, pace, preamble).await?;
    Ok(send(connected, build("POST", "/login", &[FORM], "username=x")).await)
}

/// The client address as the upstream, the audit and the store saw it.
async fn client_address_seen(running: &Running, answer: &Answer) -> (String, String, String) {
    let xff = answer.json["xff"].as_str().unwrap().to_owned();
    let audit = running.events.0.lock().unwrap().last().unwrap()["client_addr"].as_str().unwrap().to_owned();
    let cookie = cookie_of(answer);
    let id = helloguard::session::session_id(cookie.split_once('=').unwrap().1);
    let session = running.store.get_session(&id).await.unwrap().expect("session recorded").record;
    (xff, audit, session.device.initial_ip.unwrap())
}

fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend([0x20 | command, family]);
    header.extend((addresses.len() as u16).to_be_bytes());
    header.extend(addresses);
    header
}

fn same(address: &str) -> (String, String, String) {
    (address.to_owned(), address.to_owned(), address.to_owned())
}

#[tokio::test]
async fn trusted_headers_name_the_client() {
    let running = proxy(ProxyProtocol::Any, "127.0.0.0/8").await;

    let v1 = login(&running, b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 443\r\n", None).await.unwrap();
    assert_eq!(client_address_seen(&running, &v1).await, same("203.0.113.7"));

    let mut ipv4 = vec![198, 51, 100, 9, 127, 0, 0, 1];
    ipv4.extend(40000u16.to_be_bytes());
    ipv4.extend(443u16.to_be_bytes());
    let answer = login(&running, &v2(1, 0x11, &ipv4), None).await.unwrap();
    assert_eq!(client_address_seen(&running, &answer).await, same("198.51.100.9"));

    let mut ipv6 = "2001:db8::9".parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec();
    ipv6.extend(std::net::Ipv6Addr::LOCALHOST.octets());
    ipv6.extend([0x9c, 0x40, 0x01, 0xbb]);
    ipv6.extend([0x04, 0x00, 0x01, 0x00]); // a TLV (PP2_TYPE_NOOP), skipped
    let answer = login(&running, &v2(1, 0x21, &ipv6), None).await.unwrap();
    assert_eq!(client_address_seen(&running, &answer).await, same("2001:db8::9"));

    // LOCAL (a balancer's health check): the TCP peer is the client.
    let answer = login(&running, &v2(0, 0x00, &[]), None).await.unwrap();
    assert_eq!(client_address_seen(&running, &answer).await, same("127.0.0.1"));

    // The header split over many reads, then the hello split too.
    let pace = Pace { piece: 5, pause: Duration::from_millis(5) };
    let split = login(&running, b"PROXY TCP6 2001:db8::77 ::1 1234 443\r\n", Some(pace)).await.unwrap();
    assert_eq!(client_address_seen(&running, &split).await, same("2001:db8::77"));
    assert_eq!(running.metric("helloguard_proxy_headers_rejected_total").await, 0.0);
}

#[tokio::test]
async fn bad_headers_close_the_connection_while_others_work() {
    let running = proxy(ProxyProtocol::V1, "127.0.0.0/8").await;
    let good = b"PROXY TCP4 203.0.113.8 127.0.0.1 51000 443\r\n";
    let cases: [(&str, &[u8]); 4] = [
        ("malformed", b"PROXY TCP4 203.0.113.8 nonsense\r\n"),
        ("missing", b""),
        ("v2 when only v1 is on", &v2(0, 0x00, &[])),
        ("unknown protocol", b"PROXY SCTP 1.2.3.4 5.6.7.8 1 2\r\n"),
    ];
    for (i, (name, preamble)) in cases.iter().enumerate() {
        assert!(login(&running, preamble, None).await.is_err(), "{name}: closed before TLS");
        let answer = login(&running, good, None).await.unwrap();
        assert_eq!(answer.json["xff"], "203.0.113.8", "{name}: others keep working");
        assert_eq!(running.metric("helloguard_proxy_headers_rejected_total").await, (i + 1) as f64);
    }
}

#[tokio::test]
async fn an_untrusted_peer_is_served_directly_and_its_header_closes_the_connection() {
    let running = proxy(ProxyProtocol::Any, "127.0.0.2/32").await;
    let spoofed = login(&running, b"PROXY TCP4 203.0.113.9 127.0.0.1 51000 443\r\n", None).await;
    assert!(spoofed.is_err(), "a header from an untrusted peer is refused");
    assert_eq!(running.metric("helloguard_proxy_headers_rejected_total").await, 1.0);
    let direct = login(&running, b"", None).await.unwrap();
    assert_eq!(client_address_seen(&running, &direct).await, same("127.0.0.1"));
}
