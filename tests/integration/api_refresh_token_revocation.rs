//! The refresh-token endpoints the Auth0 SDKs call besides the per-token ones: a user's tokens by
//! query (`GET /api/v2/refresh-tokens?user_id=…[&client_id=…]`), revoke by ids or by user
//! (`POST /api/v2/refresh-tokens/revoke`), and `DELETE /api/v2/users/{user_id}/refresh-tokens`.
//! Revocation is enforced on the proxy path afterwards (400 `invalid_grant`, upstream not reached,
//! `revoked_use` audited), and ending tokens alone sends no back-channel logout token.

use std::time::Duration;

use crate::common;
use common::api::{call, seed_token, Answer, Keys, Target, ALL_SCOPES};
use common::client::{request_at, FORM};
use common::logout::start_with_rp;
use common::proxy::start;
use helloguard::session::Timestamp;
use serde_json::json;

fn listed(answer: &Answer, key: &str) -> Vec<String> {
    answer.json[key].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn list_by_query_pages_and_filters_by_client() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let token = keys.token("read:refresh_tokens");
    for i in 1..=5 {
        let mut record = seed_token(&running.store, &format!("rt_q{i}"), Some("auth0|u1"), None, (10 - i) * 1000).await;
        if i % 2 == 0 {
            record.client_id = Some("mobile".into());
            let current = running.store.get_refresh_token(&record.id).await.unwrap().unwrap();
            running.store.put_refresh_token(&record, current.version).await.unwrap();
        }
    }
    seed_token(&running.store, "rt_other", Some("auth0|u2"), None, 0).await;

    let base = "/api/v2/refresh-tokens?user_id=auth0%7Cu1";
    let all = call(&target, "GET", base, Some(&token), &[], "").await;
    assert_eq!(all.status, 200, "{}", all.json);
    assert_eq!(listed(&all, "refresh_tokens"), ["rt_q1", "rt_q2", "rt_q3", "rt_q4", "rt_q5"]);
    assert!(all.json.get("next").is_none());

    // Pages of two web tokens: rt_q1, rt_q3 | rt_q5.
    let first = call(&target, "GET", &format!("{base}&client_id=web&take=2"), Some(&token), &[], "").await;
    assert_eq!(listed(&first, "refresh_tokens"), ["rt_q1", "rt_q3"]);
    let next = first.json["next"].as_str().unwrap();
    let second = call(&target, "GET", &format!("{base}&client_id=web&take=2&from={next}"), Some(&token), &[], "").await;
    assert_eq!(listed(&second, "refresh_tokens"), ["rt_q5"]);
    assert!(second.json.get("next").is_none());
    let mobile = call(&target, "GET", &format!("{base}&client_id=mobile"), Some(&token), &[], "").await;
    assert_eq!(listed(&mobile, "refresh_tokens"), ["rt_q2", "rt_q4"]);

    let missing = call(&target, "GET", "/api/v2/refresh-tokens", Some(&token), &[], "").await;
    assert_eq!(missing.error(400, "invalid_uri"), "Query validation error: 'Missing required property: user_id'.");
    let nobody = call(&target, "GET", "/api/v2/refresh-tokens?user_id=nobody", Some(&token), &[], "").await;
    assert_eq!((nobody.status, &nobody.json), (200, &json!({"refresh_tokens": []})));
    let unscoped = call(&target, "GET", base, Some(&keys.token("read:sessions")), &[], "").await;
    assert_eq!(unscoped.error(403, "insufficient_scope"), "Insufficient scope, expected any of: read:refresh_tokens");
}

#[tokio::test]
async fn revoke_by_ids_and_by_user_and_delete_a_users_tokens() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let token = keys.token(ALL_SCOPES);
    for i in 1..=4 {
        seed_token(&running.store, &format!("rt_r{i}"), Some("u1"), None, (10 - i) * 1000).await;
    }
    let mut mobile = seed_token(&running.store, "rt_m", Some("u1"), None, 0).await;
    mobile.client_id = Some("mobile".into());
    let current = running.store.get_refresh_token("rt_m").await.unwrap().unwrap();
    running.store.put_refresh_token(&mobile, current.version).await.unwrap();
    for i in 1..=2 {
        seed_token(&running.store, &format!("rt_v{i}"), Some("u2"), None, 0).await;
    }
    let revoke = |body: String| {
        let (target, token) = (&target, &token);
        async move { call(target, "POST", "/api/v2/refresh-tokens/revoke", Some(token), &[], &body).await }
    };
    let live = |id: &'static str| {
        let store = running.store.clone();
        async move { store.get_refresh_token(id).await.unwrap().is_some() }
    };

    // By ids: unknown ids are skipped, the answer is 202 either way.
    let answer = revoke(json!({"ids": ["rt_r1", "rt_unknown"]}).to_string()).await;
    assert_eq!((answer.status, answer.body.len()), (202, 0));
    assert!(!live("rt_r1").await && live("rt_r2").await);
    assert!(running.store.get_tombstone("rt_r1", Timestamp::now()).await.unwrap().is_some());
    // By user and client; the audience is accepted and ignored.
    let answer =
        revoke(json!({"user_id": "u1", "client_id": "mobile", "audience": "https://api.example/"}).to_string()).await;
    assert_eq!(answer.status, 202);
    assert!(!live("rt_m").await && live("rt_r2").await, "only the mobile token");
    // By user.
    assert_eq!(revoke(json!({"user_id": "u1"}).to_string()).await.status, 202);
    for id in ["rt_r2", "rt_r3", "rt_r4"] {
        assert!(!live(id).await, "{id}");
    }
    assert!(live("rt_v1").await, "another user's tokens stay");
    // DELETE /users/{user_id}/refresh-tokens.
    let answer = call(&target, "DELETE", "/api/v2/users/u2/refresh-tokens", Some(&token), &[], "").await;
    assert_eq!(answer.status, 202);
    assert!(!live("rt_v1").await && !live("rt_v2").await);

    // Limits and shapes.
    let many: Vec<String> = (0..101).map(|i| format!("rt_{i}")).collect();
    let answer = revoke(json!({ "ids": many }).to_string()).await;
    assert_eq!(
        answer.error(400, "invalid_body"),
        "Payload validation error: 'Array is too long (101), maximum 100' on property ids."
    );
    let hundred: Vec<String> = (0..100).map(|i| format!("rt_{i}")).collect();
    assert_eq!(revoke(json!({ "ids": hundred }).to_string()).await.status, 202);
    for (body, message) in [
        (json!({}), "Payload validation error: 'Missing required property: ids or user_id'."),
        (json!({"ids": []}), "Payload validation error: 'Array is too short (0), minimum 1' on property ids."),
        (
            json!({"ids": "rt_1"}),
            "Payload validation error: 'Expected type array but found type string' on property ids.",
        ),
        (json!({"ids": ["a"], "user_id": "u"}), "Payload validation error: 'Only one of ids or user_id may be given'."),
        (json!({"user_id": "u", "extra": 1}), "Payload validation error: 'Additional properties not allowed: extra'."),
    ] {
        assert_eq!(revoke(body.to_string()).await.error(400, "invalid_body"), message, "{body}");
    }
    let unscoped =
        call(&target, "POST", "/api/v2/refresh-tokens/revoke", Some(&keys.token("read:refresh_tokens")), &[], "{}")
            .await;
    assert_eq!(unscoped.error(403, "insufficient_scope"), "Insufficient scope, expected any of: delete:refresh_tokens");
    let writes: Vec<_> = running.events.named("api_write").into_iter().filter(|e| e["status"] == 202).collect();
    assert!(writes.iter().any(|e| e["path"] == "/api/v2/refresh-tokens/revoke" && e["method"] == "POST"));
    assert!(writes.iter().any(|e| e["path"] == "/api/v2/users/u2/refresh-tokens" && e["method"] == "DELETE"));
}

#[tokio::test]
async fn a_revoked_token_is_refused_on_the_proxy_and_no_logout_token_is_sent() {
    let keys = Keys::generate();
    let (running, rp) = start_with_rp(|config, _| keys.configure(config)).await;
    let target = Target::proxy(&running);
    let api = keys.token(ALL_SCOPES);
    // A login (a session with a logout-configured client) and a refresh token on it.
    let login = request_at(running.addr, &running.root, "POST", "/login", &[FORM], "username=alice").await;
    let cookie = common::client::cookie_of(&login);
    let issued = request_at(
        running.addr,
        &running.root,
        "POST",
        "/oauth/token",
        &[FORM, ("cookie", &cookie)],
        "grant_type=password&username=alice",
    )
    .await;
    let refresh_token = issued.json["refresh_token"].as_str().unwrap().to_owned();
    let id = helloguard::session::refresh_token_id(&refresh_token);
    let answer =
        call(&target, "POST", "/api/v2/refresh-tokens/revoke", Some(&api), &[], &json!({"ids": [id]}).to_string())
            .await;
    assert_eq!(answer.status, 202);

    let body = format!("grant_type=refresh_token&refresh_token={refresh_token}");
    let exchange = request_at(running.addr, &running.root, "POST", "/oauth/token", &[FORM], &body).await;
    assert_eq!(exchange.status, 400);
    assert_eq!(
        exchange.json,
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
    );
    let revoked = running.events.named("revoked_use");
    assert!(revoked.iter().any(|e| e["route"] == "refresh" && e["refresh_token_id"] == id.as_str()), "{revoked:?}");
    // The demo upstream never saw the exchange: the token is still valid there, and the proxy
    // refused it first (a second exchange is refused the same way, not by the upstream).
    let again = request_at(running.addr, &running.root, "POST", "/oauth/token", &[FORM], &body).await;
    assert_eq!(again.json["error_description"], "Unknown or invalid refresh token.");

    // The user's session is untouched and no back-channel logout went out.
    let whoami = request_at(running.addr, &running.root, "GET", "/whoami", &[("cookie", &cookie)], "").await;
    assert!(whoami.json["session_id"].as_str().is_some(), "the session is still live");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rp.received().is_empty(), "{:?}", rp.received());
    assert!(running.events.named("session_ended").is_empty());
}
