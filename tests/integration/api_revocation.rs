//! Revocation through the API is enforced on the proxy path (CONTRACT §1): after a delete or a
//! revoke, the session's cookie no longer reaches the upstream and a refresh exchange presenting
//! an ended token is answered `invalid_grant` without reaching it. The upstream is a real HTTP
//! server that echoes the `Cookie` header it receives and counts token requests.
use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::api::{call, Keys, Target, ALL_SCOPES};
use common::proxy::{start, Running};
use helloguard::session::{refresh_token_id, session_id, Timestamp};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;

/// A login service: `/login` sets `session=cookie-<n>`, `/oauth/token` issues `refresh-<n>`,
/// every other path echoes the `Cookie` header. Token requests are counted. Both name the user
/// `user-1` unless the request carries [`ANONYMOUS`].
async fn upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token_requests = Arc::new(AtomicUsize::new(0));
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = token_requests.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (counter, issued) = (counter.clone(), issued.clone());
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let (counter, issued) = (counter.clone(), issued.clone());
                async move {
                    let n = issued.fetch_add(1, Ordering::SeqCst);
                    let cookie = request.headers().get("cookie").map(|v| v.to_str().unwrap().to_owned());
                    let mut builder = Response::builder().header("content-type", "application/json");
                    if !request.headers().contains_key(ANONYMOUS.0) {
                        builder = builder.header("helloguard-user-id", "user-1");
                    }
                    let response = match request.uri().path() {
                        "/login" => builder
                            .header("set-cookie", format!("session=cookie-{n}; Path=/"))
                            .body(Full::new(Bytes::from("{}"))),
                        "/oauth/token" => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let body = json!({"refresh_token": format!("refresh-{n}"), "access_token": "a"});
                            builder.body(Full::new(Bytes::from(body.to_string())))
                        }
                        _ => builder.body(Full::new(Bytes::from(json!({"cookie": cookie}).to_string()))),
                    };
                    Ok::<_, std::convert::Infallible>(response.unwrap())
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), service));
        }
    });
    (addr, token_requests)
}

/// The proxy in front of the counting upstream, and an admin token with every scope.
async fn start_before_upstream() -> (Running, Arc<AtomicUsize>, String) {
    let keys = Keys::generate();
    let (origin, token_requests) = upstream().await;
    let running = start(|c| {
        keys.configure(c);
        c.server.upstream = format!("http://{origin}").parse().unwrap();
    })
    .await;
    (running, token_requests, keys.token(ALL_SCOPES))
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
/// A request header that makes the upstream name no user (no `helloguard-user-id`).
const ANONYMOUS: (&str, &str) = ("x-test-anonymous", "1");

#[tokio::test]
async fn deleted_sessions_lose_their_cookie_and_ended_tokens_are_refused() {
    let (running, token_requests, admin) = start_before_upstream().await;
    let proxy = Target::proxy(&running);

    // A login, then a request on the session carrying another cookie too.
    let login = call(&proxy, "POST", "/login", None, &[FORM], "username=alice").await;
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let cookies = format!("{cookie}; theme=dark");
    let echo = call(&proxy, "GET", "/echo", None, &[("cookie", &cookies)], "").await;
    assert_eq!(echo.json["cookie"], cookies.as_str());

    // The API deletes the session: the proxy now strips its cookie and keeps the other.
    let listed = call(&proxy, "GET", "/api/v2/users/user-1/sessions", Some(&admin), &[], "").await;
    let session_id = listed.json["sessions"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/sessions/{session_id}");
    assert_eq!(call(&proxy, "DELETE", &path, Some(&admin), &[], "").await.status, 202);
    let echo = call(&proxy, "GET", "/echo", None, &[("cookie", &cookies)], "").await;
    assert_eq!(echo.json["cookie"], "theme=dark");
    let revoked = running.events.named("revoked_use");
    assert_eq!(revoked[0]["session_id"], session_id.as_str());

    // A refresh token deleted through the API is refused without reaching the upstream.
    let issued = call(&proxy, "POST", "/oauth/token", None, &[FORM], "grant_type=password&username=alice").await;
    let refresh = issued.json["refresh_token"].as_str().unwrap().to_owned();
    let listed = call(&proxy, "GET", "/api/v2/users/user-1/refresh-tokens", Some(&admin), &[], "").await;
    let token_id = listed.json["tokens"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/refresh-tokens/{token_id}");
    assert_eq!(call(&proxy, "DELETE", &path, Some(&admin), &[], "").await.status, 202);
    let before = token_requests.load(Ordering::SeqCst);
    let exchange = format!("grant_type=refresh_token&refresh_token={refresh}");
    let answer = call(&proxy, "POST", "/oauth/token", None, &[FORM], &exchange).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json,
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
    );
    assert_eq!(token_requests.load(Ordering::SeqCst), before, "the upstream never saw it");
}

#[tokio::test]
async fn revoke_ends_the_session_and_the_tokens_issued_on_it() {
    let (running, token_requests, admin) = start_before_upstream().await;
    let proxy = Target::proxy(&running);
    let login = call(&proxy, "POST", "/login", None, &[FORM], "username=alice").await;
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    // A token issued on the session (its cookie on the token request), and one without a session.
    let on_session =
        call(&proxy, "POST", "/oauth/token", None, &[FORM, ("cookie", &cookie)], "grant_type=password").await;
    let on_session = on_session.json["refresh_token"].as_str().unwrap().to_owned();
    let separate = call(&proxy, "POST", "/oauth/token", None, &[FORM], "grant_type=password").await;
    let separate = separate.json["refresh_token"].as_str().unwrap().to_owned();

    let listed = call(&proxy, "GET", "/api/v2/users/user-1/sessions", Some(&admin), &[], "").await;
    let session_id = listed.json["sessions"][0]["id"].as_str().unwrap().to_owned();
    let tokens = call(&proxy, "GET", "/api/v2/users/user-1/refresh-tokens", Some(&admin), &[], "").await;
    let with_session: Vec<&serde_json::Value> =
        tokens.json["tokens"].as_array().unwrap().iter().filter(|t| t["session_id"] == session_id.as_str()).collect();
    assert_eq!(with_session.len(), 1, "{}", tokens.json);

    let answer = call(&proxy, "POST", &format!("/api/v2/sessions/{session_id}/revoke"), Some(&admin), &[], "").await;
    assert_eq!(answer.status, 202);
    let echo = call(&proxy, "GET", "/echo", None, &[("cookie", &cookie)], "").await;
    assert_eq!(echo.json["cookie"], serde_json::Value::Null, "the session cookie was the only one");

    let before = token_requests.load(Ordering::SeqCst);
    let exchange = |token: &str| format!("grant_type=refresh_token&refresh_token={token}");
    let answer = call(&proxy, "POST", "/oauth/token", None, &[FORM], &exchange(&on_session)).await;
    assert_eq!((answer.status, &answer.json["error"]), (400, &json!("invalid_grant")));
    assert_eq!(token_requests.load(Ordering::SeqCst), before);
    let answer = call(&proxy, "POST", "/oauth/token", None, &[FORM], &exchange(&separate)).await;
    assert_eq!(answer.status, 200, "the token without a session is still alive");
    assert_eq!(token_requests.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn revoke_ends_the_tokens_of_a_session_that_has_no_user() {
    let (running, token_requests, admin) = start_before_upstream().await;
    let proxy = Target::proxy(&running);
    let login = call(&proxy, "POST", "/login", None, &[FORM, ANONYMOUS], "username=alice").await;
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let session_id = session_id(cookie.split_once('=').unwrap().1);
    let session_path = format!("/api/v2/sessions/{session_id}");
    let session = call(&proxy, "GET", &session_path, Some(&admin), &[], "").await;
    assert_eq!((session.status, &session.json["user_id"]), (200, &serde_json::Value::Null), "{}", session.json);

    // Two tokens issued on the session, neither with a user.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let headers = [FORM, ANONYMOUS, ("cookie", cookie.as_str())];
        let issued = call(&proxy, "POST", "/oauth/token", None, &headers, "grant_type=password").await;
        let token = issued.json["refresh_token"].as_str().unwrap().to_owned();
        let path = format!("/api/v2/refresh-tokens/{}", refresh_token_id(&token));
        let record = call(&proxy, "GET", &path, Some(&admin), &[], "").await;
        assert_eq!(record.status, 200);
        assert_eq!((&record.json["session_id"], &record.json["user_id"]), (&json!(session_id), &json!(null)));
        tokens.push((token, path));
    }

    let answer = call(&proxy, "POST", &format!("{session_path}/revoke"), Some(&admin), &[], "").await;
    assert_eq!(answer.status, 202);
    assert_eq!(call(&proxy, "GET", &session_path, Some(&admin), &[], "").await.status, 404);
    let before = token_requests.load(Ordering::SeqCst);
    for (token, path) in &tokens {
        let gone = call(&proxy, "GET", path, Some(&admin), &[], "").await;
        assert_eq!(gone.error(404, "inexistent_refresh_token"), "The refresh token does not exist.");
        let stone = running.store.get_tombstone(&refresh_token_id(token), Timestamp::now()).await.unwrap();
        assert!(stone.is_some(), "an ended token leaves a tombstone");
        let exchange = format!("grant_type=refresh_token&refresh_token={token}");
        let refused = call(&proxy, "POST", "/oauth/token", None, &[FORM], &exchange).await;
        assert_eq!((refused.status, &refused.json["error"]), (400, &json!("invalid_grant")));
    }
    assert_eq!(token_requests.load(Ordering::SeqCst), before, "the upstream saw neither exchange");
}
