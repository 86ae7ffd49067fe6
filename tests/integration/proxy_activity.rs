//! Session and refresh-token activity (CONTRACT §6.4): `last_interacted_at` moves on proxied
//! requests at most once a minute, `device.last_*` follow the last request, and a non-rotating
//! refresh exchange notes `last_exchanged_at` and the exchanging device.

use crate::common;

use common::client::{cookie_of, request, Client, FORM};
use common::proxy::start;
use common::upstream::{full, origin, serve};
use helloguard::session::{refresh_token_id, session_id, Timestamp};

#[tokio::test]
async fn proxied_requests_note_session_activity() {
    let running = start(|_| {}).await;
    let login = request(&running, Client::Default, "POST", "/login", &[FORM], "username=ann").await;
    let cookie = cookie_of(&login);
    let id = session_id(cookie.split_once('=').unwrap().1);
    let created = running.store.get_session(&id).await.unwrap().unwrap();

    let headers = [("cookie", cookie.as_str()), ("user-agent", "agent/2")];
    request(&running, Client::Default, "GET", "/whoami", &headers, "").await;
    let moved = running.store.get_session(&id).await.unwrap().unwrap();
    assert_eq!(moved.record.device.last_user_agent.as_deref(), Some("agent/2"));
    assert_eq!(moved.record.device.initial_user_agent, created.record.device.initial_user_agent);
    assert_eq!(moved.record.last_interacted_at, created.record.last_interacted_at, "not within the minute");

    request(&running, Client::Default, "GET", "/whoami", &headers, "").await;
    let same = running.store.get_session(&id).await.unwrap().unwrap();
    assert_eq!(same.version, moved.version, "nothing new: no write");

    // Two minutes later (the record aged by hand): the request moves the activity and idle expiry.
    let mut aged = same.record.clone();
    aged.last_interacted_at = Timestamp(aged.last_interacted_at.millis() - 120_000);
    aged.idle_expires_at = Timestamp(aged.idle_expires_at.millis() - 120_000);
    running.store.put_session(&aged, same.version).await.unwrap();
    request(&running, Client::Default, "GET", "/whoami", &headers, "").await;
    let touched = running.store.get_session(&id).await.unwrap().unwrap().record;
    assert!(touched.last_interacted_at.millis() >= aged.last_interacted_at.millis() + 120_000);
    assert!(touched.idle_expires_at > aged.idle_expires_at);
}

#[tokio::test]
async fn a_non_rotating_refresh_exchange_is_noted() {
    let upstream =
        serve(|_| async { hyper::Response::new(full(r#"{"access_token":"a","refresh_token":"fixed-rt"}"#)) }).await;
    let running = start(|c| c.server.upstream = origin(upstream)).await;
    request(&running, Client::Default, "POST", "/oauth/token", &[FORM], "grant_type=password&username=u").await;
    let id = refresh_token_id("fixed-rt");
    let issued = running.store.get_refresh_token(&id).await.unwrap().expect("recorded");
    assert_eq!(issued.record.last_exchanged_at, None);

    let headers = [FORM, ("user-agent", "refresher/1")];
    let body = "grant_type=refresh_token&refresh_token=fixed-rt";
    let answer = request(&running, Client::Default, "POST", "/oauth/token", &headers, body).await;
    assert_eq!(answer.status, 200);
    let exchanged = running.store.get_refresh_token(&id).await.unwrap().unwrap().record;
    assert!(exchanged.last_exchanged_at.is_some());
    assert_eq!(exchanged.device.last_user_agent.as_deref(), Some("refresher/1"));
    assert_eq!(exchanged.device.initial_user_agent, None, "the issuing request had no user agent");
    assert_eq!(exchanged.refresh_token_metadata, issued.record.refresh_token_metadata, "binding kept");
}
