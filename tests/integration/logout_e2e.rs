//! Back-channel logout end to end: sessions created by logging in through the running proxy (real
//! TLS, the demo upstream), ended by each initiator helloguard raises, and the logout tokens
//! validated by a relying party over HTTPS (see `common::rp`); `session-revoked` through the
//! Management API over HTTPS. Also the JWKS endpoint.

use crate::common;

use std::time::Duration;

use common::api::{call, Keys, Target};
use common::client::request_at;
use common::logout::{attempts, client, ended, login, logout, start_with_rp, ISSUER};
use common::proxy::Running;
use common::rp::Delivery;
use helloguard::config::ConfigDuration;
use helloguard::session::Timestamp;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

fn accepted_for(sid: &str) -> impl Fn(&[Delivery]) -> bool + '_ {
    move |received| received.iter().any(|d| d.accepted() && d.sid() == Some(sid))
}

#[tokio::test]
async fn rp_logout_delivers_a_valid_token_with_the_metadata_snapshot() {
    let (running, rp) = start_with_rp(|_, _| {}).await;
    let (cookie, sid) = login(&running, "alice").await;
    logout(&running, &cookie).await;
    let received = rp.wait_for(WAIT, accepted_for(&sid)).await;
    assert_eq!(received.len(), 1, "{received:#?}");
    let delivery = &received[0];
    assert_eq!(delivery.path, "/bcl/demo");
    let claims = delivery.claims.as_ref().unwrap();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], "demo");
    assert_eq!(claims["sub"], "demo|alice");
    let metadata = claims["session_metadata"].as_object().unwrap();
    let keys: Vec<&str> = metadata.keys().map(String::as_str).collect();
    assert_eq!(keys, ["ja3", "ja4", "ja4_stable"], "the binding written at login");

    let session_ended = ended(&running, &sid).await;
    assert_eq!(session_ended["initiator"], "rp-logout");
    assert_eq!(claims["trace_id"], session_ended["trace_id"]);
    let audit = attempts(&running, &sid, 1).await;
    let expected = json!({
        "event": "oidc_backchannel_logout_succeeded", "time": audit[0]["time"], "session_id": sid,
        "client_id": "demo", "url": rp.url("demo"), "initiator": "rp-logout", "trace_id": session_ended["trace_id"],
        "attempt": 1, "status": 200, "final": true,
    });
    assert_eq!(audit[0], expected);
    // The cookie no longer names a live session.
    let after = request_at(running.addr, &running.root, "GET", "/whoami", &[("cookie", &cookie)], "").await;
    assert_eq!(after.json["session_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn session_expired_by_the_sweeper_without_metadata_when_not_included() {
    let (running, rp) = start_with_rp(|config, rp| {
        config.session.idle_timeout = ConfigDuration(Duration::from_secs(2));
        config.session.absolute_timeout = ConfigDuration(Duration::from_secs(3));
        config.session.sweep_interval = ConfigDuration(Duration::from_millis(200));
        config.clients = vec![client("demo", &[rp.url("demo")], Some(&["session-expired"]), false)];
    })
    .await;
    let (_cookie, sid) = login(&running, "bob").await;
    // No further requests: the sweeper ends the session about two seconds after the login.
    let received = rp.wait_for(WAIT, accepted_for(&sid)).await;
    let claims = received[0].claims.as_ref().unwrap();
    assert!(claims.get("session_metadata").is_none(), "include = false: {claims}");
    assert_eq!(ended(&running, &sid).await["initiator"], "session-expired");
    assert_eq!(attempts(&running, &sid, 1).await[0]["initiator"], "session-expired");
}

/// `DELETE /api/v2/sessions/{sid}` over HTTPS with a token signed by `keys` (configured on the
/// proxy with [`Keys::configure`]).
async fn delete_through_the_api(running: &Running, keys: &Keys, sid: &str) {
    let admin = keys.token("delete:sessions");
    let answer =
        call(&Target::proxy(running), "DELETE", &format!("/api/v2/sessions/{sid}"), Some(&admin), &[], "").await;
    assert_eq!(answer.status, 202, "{}", answer.json);
}

#[tokio::test]
async fn session_revoked_with_an_empty_map_has_no_metadata_claim() {
    let keys = Keys::generate();
    let (running, rp) = start_with_rp(|config, _| keys.configure(config)).await;
    let (_cookie, sid) = login(&running, "carol").await;
    // Through the Management API: PATCH the map empty, then delete the session.
    let path = format!("/api/v2/sessions/{sid}");
    let admin = keys.token("update:sessions");
    let patched = call(&Target::proxy(&running), "PATCH", &path, Some(&admin), &[], r#"{"session_metadata":{}}"#).await;
    assert_eq!((patched.status, &patched.json["session_metadata"]), (200, &json!({})), "{}", patched.json);
    delete_through_the_api(&running, &keys, &sid).await;
    let received = rp.wait_for(WAIT, accepted_for(&sid)).await;
    let claims = received[0].claims.as_ref().unwrap();
    assert!(claims.get("session_metadata").is_none(), "empty map: {claims}");
    assert_eq!(claims["sub"], "demo|carol");
    assert_eq!(attempts(&running, &sid, 1).await[0]["initiator"], "session-revoked");
}

#[tokio::test]
async fn excluded_initiators_and_clients_outside_the_session_hear_nothing() {
    let keys = Keys::generate();
    let (running, rp) = start_with_rp(|config, rp| {
        keys.configure(config);
        config.clients = vec![
            client("demo", &[rp.url("demo")], Some(&["session-revoked"]), true),
            client("other", &[rp.url("other")], None, true),
        ];
    })
    .await;
    let (cookie, logged_out) = login(&running, "dave").await;
    logout(&running, &cookie).await;
    ended(&running, &logged_out).await;
    // Planning happens when the session ends: nothing was enqueued, so nothing will be sent.
    let far_future = Timestamp(i64::MAX / 2);
    assert!(running.store.lease_outbox(far_future, Duration::from_secs(1), 100).await.unwrap().is_empty());

    let (_cookie, revoked) = login(&running, "erin").await;
    delete_through_the_api(&running, &keys, &revoked).await;
    let received = rp.wait_for(WAIT, accepted_for(&revoked)).await;
    let paths: Vec<(&str, Option<&str>)> = received.iter().map(|d| (d.path.as_str(), d.sid())).collect();
    assert_eq!(
        paths,
        [("/bcl/demo", Some(revoked.as_str()))],
        "only the session's client, only the selected initiator"
    );
}

#[tokio::test]
async fn several_urls_of_a_client_each_get_their_own_token() {
    let (running, rp) = start_with_rp(|config, rp| {
        let second = format!("{}?typ=logout", rp.url("demo"));
        config.clients = vec![client("demo", &[rp.url("demo"), second], None, true)];
    })
    .await;
    let (cookie, sid) = login(&running, "frank").await;
    logout(&running, &cookie).await;
    let received = rp.wait_for(WAIT, |r| r.iter().filter(|d| d.accepted()).count() == 2).await;
    let jtis: Vec<&str> = received.iter().map(|d| d.claims.as_ref().unwrap()["jti"].as_str().unwrap()).collect();
    assert_ne!(jtis[0], jtis[1]);
    let traces: Vec<&serde_json::Value> = received.iter().map(|d| &d.claims.as_ref().unwrap()["trace_id"]).collect();
    assert_eq!(traces[0], traces[1], "one trace per session end");
    assert!(received.iter().all(|d| d.sid() == Some(sid.as_str())));
}

#[tokio::test]
async fn jwks_is_served_at_its_path_and_never_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let retired = dir.path().join("old.pem");
    let old = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(&old.public_key(), Default::default()).unwrap();
    std::fs::write(&retired, pem).unwrap();
    let (running, _rp) = start_with_rp(|config, _| {
        config.logout.jwks_path = "/keys/jwks.json".into();
        config.logout.retired_public_keys = vec![retired.clone()];
    })
    .await;
    let get = request_at(running.addr, &running.root, "GET", "/keys/jwks.json", &[], "").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.headers["cache-control"], "public, max-age=300");
    assert_eq!(get.headers["content-type"], "application/json");
    let jwks = get.json;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "current and retired: {jwks}");
    for key in keys {
        assert_eq!(
            (&key["kty"], &key["crv"], &key["use"], &key["alg"]),
            (&json!("EC"), &json!("P-256"), &json!("sig"), &json!("ES256"))
        );
        assert_eq!(key["kid"].as_str().unwrap().len(), 43);
        assert!(key.get("d").is_none());
    }
    let head = request_at(running.addr, &running.root, "HEAD", "/keys/jwks.json", &[], "").await;
    assert_eq!(head.status, 200);
    let post = request_at(running.addr, &running.root, "POST", "/keys/jwks.json", &[], "x").await;
    assert_eq!(
        (post.status, &post.headers["allow"]),
        (405, &"GET, HEAD".parse::<hyper::header::HeaderValue>().unwrap())
    );
    // The default path is upstream traffic once another is configured: the demo echoes it.
    let default = request_at(running.addr, &running.root, "GET", "/.well-known/jwks.json", &[], "").await;
    assert!(default.json.get("keys").is_none() && default.json.get("ja4").is_some(), "{:?}", default.body);
}

#[tokio::test]
async fn rs256_tokens_verify_against_the_published_rsa_key() {
    let (running, rp) = start_with_rp(|config, _| config.logout.alg = "RS256".parse().unwrap()).await;
    let jwks = request_at(running.addr, &running.root, "GET", "/.well-known/jwks.json", &[], "").await.json;
    assert_eq!((&jwks["keys"][0]["kty"], &jwks["keys"][0]["alg"]), (&json!("RSA"), &json!("RS256")));
    let (cookie, sid) = login(&running, "grace").await;
    logout(&running, &cookie).await;
    rp.wait_for(WAIT, accepted_for(&sid)).await;
}

#[tokio::test]
async fn the_rp_refuses_tokens_that_break_the_rules() {
    let (running, _rp) = start_with_rp(|_, _| {}).await;
    let jwks_json = request_at(running.addr, &running.root, "GET", "/.well-known/jwks.json", &[], "").await.body;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&jwks_json).unwrap();
    let now = Timestamp::now().millis() / 1000;
    let good = json!({"iss": ISSUER, "aud": "demo", "iat": now, "exp": now + 120, "jti": "j1", "sid": "ses_x",
                      "events": {common::rp::EVENT: {}}, "trace_id": "0123456789abcdef0123456789abcdef"});
    let own = &running.shared.signer;
    let typ = helloguard::logout::config::TokenTyp::LogoutJwt;
    let validate = |token: &str| common::rp::validate(token, &jwks, ISSUER, "demo", "logout+jwt");
    assert!(validate(&own.sign(typ, &good).unwrap()).is_ok(), "the control token validates");
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = helloguard::logout::signer::LogoutSigner::load(&Default::default(), foreign_dir.path()).unwrap();
    assert!(validate(&foreign.sign(typ, &good).unwrap()).is_err(), "another key");
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = good.clone();
        claims[key] = value;
        own.sign(typ, &claims).unwrap()
    };
    for (key, value) in [
        ("nonce", json!("n")),
        ("aud", json!("other")),
        ("iss", json!("https://evil.example/")),
        ("exp", json!(now - 100)),
        ("events", json!({})),
        ("sid", json!(null)),
    ] {
        assert!(validate(&with(key, value.clone())).is_err(), "{key} = {value}");
    }
    let jwt_typ = own.sign(helloguard::logout::config::TokenTyp::Jwt, &good).unwrap();
    assert!(validate(&jwt_typ).is_err(), "typ JWT where logout+jwt is expected");
}
