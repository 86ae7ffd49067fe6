//! The proxy over real sockets with real TLS: rustls clients with different fingerprints, the
//! built-in demo upstream, the memory store. Each client records the bytes it sends (a tee), so
//! the test can check that the fingerprints the upstream received are those of its own hello.

use std::time::Duration;

use crate::common;

use common::client::{closed_by_peer, cookie_of, request, Client, FORM};
use common::proxy::start;
use common::upstream::{full, origin, serve};
use helloguard::session::{refresh_token_id, session_id};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn login_binds_then_allows_then_challenges_another_client() {
    let running = start(|_| {}).await;
    let login = request(&running, Client::Default, "POST", "/login", &[FORM], "username=alice").await;
    assert_eq!(login.status, 200);
    let echo = &login.json["helloguard"];
    // What the upstream received is exactly the fingerprint of the hello this client sent.
    assert_eq!(echo["ja4_stable"], login.sent.ja4_stable.as_str());
    assert_eq!(echo["ja4"], login.sent.ja4.as_str());
    assert_eq!(echo["ja3"], login.sent.ja3.as_str());
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
    assert_ne!(other.sent.ja4_stable, login.sent.ja4_stable, "the clients really differ");
    // The demo answers a challenged login with its one-time-password page.
    assert_eq!(other.status, 401);
    let page = String::from_utf8_lossy(&other.body);
    assert!(page.contains("otp,push-notification,phone") && page.contains("fingerprint_mismatch"), "{page}");
    assert!(page.contains(helloguard::proxy::demo::DEMO_OTP), "the page says the demo's code");
    assert!(other.headers.get("set-cookie").is_none(), "not logged in");

    {
        let events = running.events.0.lock().unwrap();
        let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
        assert!(reasons.starts_with(&["no_session", "new_session", "fingerprint_match", "rotation"]), "{reasons:?}");
        let challenge = events.iter().find(|e| e["decision"] == "challenge").unwrap();
        assert_eq!(challenge["challenge"]["type"], "otp");
        assert_eq!(challenge["additional_factors"][0]["type"], "push-notification");
        assert_eq!(challenge["outcome"], "forwarded");
    }

    // A wrong code: the page again. The right one logs in and confirms, which rebinds the session
    // to this client: its next login is allowed, and the first client is now the other one.
    let wrong = request(
        &running,
        Client::Aes128Only,
        "POST",
        "/login",
        &[FORM, ("cookie", &cookie)],
        "username=alice&otp=000000",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(String::from_utf8_lossy(&wrong.body).contains("not right"));
    let form = format!("username=alice&otp={}", helloguard::proxy::demo::DEMO_OTP);
    let confirmed = request(&running, Client::Aes128Only, "POST", "/login", &[FORM, ("cookie", &cookie)], &form).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.json);
    assert_eq!(confirmed.json["logged_in"], "alice");
    assert!(confirmed.headers.get("helloguard-mfa-confirmed").is_none(), "consumed header is stripped");
    assert!(running.events.reasons().contains(&"mfa_confirmed".to_owned()), "{:?}", running.events.reasons());
    let cookie = cookie_of(&confirmed);
    let after =
        request(&running, Client::Aes128Only, "POST", "/login", &[FORM, ("cookie", &cookie)], "username=alice").await;
    assert_eq!(after.json["helloguard"]["reason"], "fingerprint_match", "{}", after.json);
    let first =
        request(&running, Client::Default, "POST", "/login", &[FORM, ("cookie", &cookie_of(&after))], "username=alice")
            .await;
    assert_eq!(first.status, 401, "the first client is challenged now");
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
async fn a_cookie_rotation_carries_the_sessions_refresh_tokens_to_the_new_session() {
    let running = start(|_| {}).await;
    let login = request(&running, Client::Default, "POST", "/login", &[FORM], "username=cat").await;
    let first = cookie_of(&login);
    let with_cookie = [FORM, ("cookie", first.as_str())];
    let issued =
        request(&running, Client::Default, "POST", "/oauth/token", &with_cookie, "grant_type=password&username=cat")
            .await;
    let token_id = refresh_token_id(issued.json["refresh_token"].as_str().unwrap());
    let old_session = session_id(first.split_once('=').unwrap().1);
    let token = running.store.get_refresh_token(&token_id).await.unwrap().expect("recorded").record;
    assert_eq!(token.session_id.as_deref(), Some(old_session.as_str()));

    let again = request(&running, Client::Default, "POST", "/login", &with_cookie, "username=cat").await;
    assert_eq!(again.json["helloguard"]["reason"], "fingerprint_match");
    let second = cookie_of(&again);
    assert_ne!(second, first, "the demo rotates the cookie on each login");
    let new_session = session_id(second.split_once('=').unwrap().1);
    assert!(running.store.get_session(&old_session).await.unwrap().is_none(), "the old session is retired");

    let token = running.store.get_refresh_token(&token_id).await.unwrap().expect("still live").record;
    assert_eq!(token.session_id.as_deref(), Some(new_session.as_str()));
    let now = helloguard::session::Timestamp::now();
    let followed = running.store.session_refresh_token_ids(&new_session, now, 10).await.unwrap();
    assert_eq!(followed, vec![token_id.clone()], "ending the new session ends the token");
    assert!(running.store.session_refresh_token_ids(&old_session, now, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn consumed_and_hop_by_hop_response_headers_never_reach_a_client_without_session_or_route() {
    let upstream = serve(|_| async {
        hyper::Response::builder()
            .header("helloguard-user-id", "u-1")
            .header("helloguard-mfa-confirmed", "1")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "secret")
            .header("x-kept", "yes")
            .body(full("{}"))
            .unwrap()
    })
    .await;
    let running = start(|c| c.server.upstream = origin(upstream)).await;
    let answer = request(&running, Client::Default, "GET", "/elsewhere", &[], "").await;
    assert_eq!(answer.status, 200);
    for name in ["helloguard-user-id", "helloguard-mfa-confirmed", "connection", "x-hop"] {
        assert!(answer.headers.get(name).is_none(), "{name} reached the client");
    }
    assert_eq!(answer.headers.get("x-kept").unwrap(), "yes");
    assert!(running.events.0.lock().unwrap().is_empty(), "no route, no session: no decision");
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
    assert_eq!(answer.json["ja4"], answer.sent.ja4.as_str());
    assert_eq!(answer.json["ja4_stable"], answer.sent.ja4_stable.as_str());
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
        // Closed by the proxy: EOF (or a TLS alert then EOF) well within the handshake timeout.
        assert!(closed_by_peer(stream, Duration::from_secs(12)).await, "{name} connection was not closed");
    }
    let ok = request(&running, Client::Default, "GET", "/whoami", &[], "").await;
    assert_eq!(ok.status, 200);
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
