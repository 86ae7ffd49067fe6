//! helloguard's own header names sent by a client (in any case, with `_` for `-`) never reach the
//! service, and the headers helloguard consumes never reach the client, a `101` included.

use super::{Scene, OWNER, THIEF};
use crate::common::client::{build, connect, send, FORM};

/// Names a client might forge, as a CGI/WSGI app would read them.
const FORGED: [(&str, &str); 8] = [
    ("helloguard_decision", "allow"),
    ("helloguard-decision", "allow"),
    ("helloguard_decision_reason", "fingerprint_match"),
    ("helloguard_session_id", "ses_forged"),
    ("helloguard-user-id", "mallory"),
    ("helloguard_user_id", "mallory"),
    ("helloguard-mfa-confirmed", "1"),
    ("helloguard_ja4_stable", "t13d1516h2_8daaf6152771_02713d6af862"),
];

#[tokio::test]
async fn forged_helloguard_headers_never_reach_the_service() {
    let Some(scene) = Scene::start(super::Backend::Memory, |_| {}).await else { return };
    let cookie = format!("session={}", scene.cookie);
    let mut headers = vec![FORM, ("cookie", cookie.as_str())];
    headers.extend(FORGED);
    let seen = scene.login(THIEF, &headers).await;
    // Each name arrives once (`header` panics on a second value), with helloguard's value.
    assert_eq!(seen.header("helloguard-decision"), Some("challenge"), "{seen:?}");
    assert_eq!(seen.header("helloguard-decision-reason"), Some("fingerprint_mismatch"));
    assert!(seen.header("helloguard-session-id").is_some_and(|id| id != "ses_forged"));
    assert_ne!(seen.header("helloguard-ja4-stable"), Some("t13d1516h2_8daaf6152771_02713d6af862"));
    assert_eq!(seen.header("helloguard-user-id"), None);
    assert_eq!(seen.header("helloguard-mfa-confirmed"), None);

    // A request with no decision carries none of them either.
    let mark = scene.mark();
    let connected = connect(&scene.running.target(), OWNER, None).await.unwrap();
    send(connected, build("GET", "/account", &FORGED, "")).await;
    let seen = scene.seen_since(mark).pop().unwrap();
    for name in ["helloguard-decision", "helloguard-decision-reason", "helloguard-session-id", "helloguard-user-id"] {
        assert_eq!(seen.header(name), None, "{name}: {seen:?}");
    }
}

#[tokio::test]
async fn a_switching_protocols_answer_keeps_consumed_headers_from_the_client() {
    let Some(scene) = Scene::start(super::Backend::Memory, |_| {}).await else { return };
    let connected = connect(&scene.running.target(), OWNER, None).await.unwrap();
    let request = build("GET", "/ws", &[("connection", "upgrade"), ("upgrade", "websocket")], "");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(connected.tls)).await.unwrap();
    tokio::spawn(connection.with_upgrades());
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert!(response.headers().get("helloguard-user-id").is_none(), "{:?}", response.headers());
    assert!(response.headers().get("helloguard-mfa-confirmed").is_none());
    assert_eq!(response.headers().get("upgrade").unwrap(), "websocket");
}
