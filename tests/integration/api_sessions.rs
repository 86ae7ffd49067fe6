//! The session endpoints over real HTTPS against the in-process proxy: the §6.4 object, PATCH
//! replace semantics and every metadata violation, delete, revoke, a user's sessions (paging,
//! delete), and revocation enforced on the proxy path.
use crate::common;

use common::api::{call, seed_session, seed_token, Answer, Keys, Target, ALL_SCOPES};
use common::proxy::start;
use helloguard::session::{ClientRef, Device, Metadata, Session, Timestamp};
use serde_json::json;

/// 2025-01-15T09:30:00.000Z and 2100-01-01T00:00:00.000Z, as Unix milliseconds.
const JAN_15_2025: i64 = 1_736_933_400_000;
const YEAR_2100: i64 = 4_102_444_800_000;

#[tokio::test]
async fn get_returns_the_contract_object() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let session = Session {
        id: "ses_shape".into(),
        user_id: Some("auth0|5f7c".into()),
        created_at: Timestamp(JAN_15_2025),
        updated_at: Timestamp(JAN_15_2025 + 1),
        authenticated_at: Timestamp(JAN_15_2025),
        last_interacted_at: Timestamp(JAN_15_2025 + 60_000),
        idle_expires_at: Timestamp(YEAR_2100),
        expires_at: Timestamp(YEAR_2100),
        device: Device {
            initial_ip: Some("203.0.113.7".into()),
            initial_user_agent: Some("agent/1".into()),
            last_ip: Some("198.51.100.1".into()),
            last_user_agent: None,
        },
        clients: vec![ClientRef { client_id: "web".into() }],
        session_metadata: Metadata::from_pairs([("ja4_stable", "t13d1516h2_8daaf6152771_02713d6af862")]).unwrap(),
    };
    running.store.create_session(&session).await.unwrap();
    let answer = call(&target, "GET", "/api/v2/sessions/ses_shape", Some(&keys.token("read:sessions")), &[], "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(
        answer.json,
        json!({"id": "ses_shape", "user_id": "auth0|5f7c",
               "created_at": "2025-01-15T09:30:00.000Z", "updated_at": "2025-01-15T09:30:00.001Z",
               "authenticated_at": "2025-01-15T09:30:00.000Z", "last_interacted_at": "2025-01-15T09:31:00.000Z",
               "idle_expires_at": "2100-01-01T00:00:00.000Z", "expires_at": "2100-01-01T00:00:00.000Z",
               "device": {"initial_ip": "203.0.113.7", "initial_user_agent": "agent/1",
                          "last_ip": "198.51.100.1", "last_user_agent": null},
               "clients": [{"client_id": "web"}],
               "session_metadata": {"ja4_stable": "t13d1516h2_8daaf6152771_02713d6af862"}})
    );
    assert_eq!(answer.header("x-ratelimit-limit"), Some("50"), "the default burst");

    // Unknown, expired, and too long ids.
    let read = keys.token("read:sessions");
    let answer = call(&target, "GET", "/api/v2/sessions/ses_unknown", Some(&read), &[], "").await;
    assert_eq!(answer.error(404, "inexistent_session"), "The session does not exist.");
    let mut expired = seed_session(&running.store, "ses_expired", None, 0).await;
    expired.expires_at = Timestamp(JAN_15_2025);
    running.store.put_session(&expired, 1).await.unwrap();
    assert_eq!(call(&target, "GET", "/api/v2/sessions/ses_expired", Some(&read), &[], "").await.status, 404);
    let fifty = format!("/api/v2/sessions/{}", "a".repeat(50));
    assert_eq!(call(&target, "GET", &fifty, Some(&read), &[], "").await.status, 404);
    let answer = call(&target, "GET", &format!("/api/v2/sessions/{}", "%C3%A9".repeat(51)), Some(&read), &[], "").await;
    assert_eq!(
        answer.error(400, "invalid_uri"),
        "Path validation error: 'String is too long (51 chars), maximum 50' on property id."
    );
}

/// Extra request headers of one case.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// PATCH as the caller sees it: the answer and a GET afterwards.
async fn patch(target: &Target, token: &str, body: &str, headers: &[(&str, &str)]) -> (Answer, serde_json::Value) {
    let answer = call(target, "PATCH", "/api/v2/sessions/ses_p", Some(token), headers, body).await;
    let after = call(target, "GET", "/api/v2/sessions/ses_p", Some(token), &[], "").await;
    (answer, after.json["session_metadata"].clone())
}

#[tokio::test]
async fn patch_replaces_the_whole_map_and_refuses_bad_bodies_changing_nothing() {
    let keys = Keys::generate();
    let running = start(|c| {
        keys.configure(c);
        c.api.rate_limit_burst = 1000;
    })
    .await;
    let target = Target::proxy(&running);
    let token = keys.token(ALL_SCOPES);
    let mut session = seed_session(&running.store, "ses_p", Some("u"), 1000).await;
    session.session_metadata = Metadata::from_pairs([("a", "1"), ("b", "2")]).unwrap();
    running.store.put_session(&session, 1).await.unwrap();

    // Replace, not merge; null entries are dropped.
    let (answer, stored) = patch(&target, &token, r#"{"session_metadata":{"c":"3","a":null}}"#, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["session_metadata"], json!({"c": "3"}));
    assert_eq!(answer.json["id"], "ses_p");
    assert_ne!(answer.json["updated_at"], answer.json["created_at"], "updated_at moved");
    assert_eq!(stored, json!({"c": "3"}));

    // Every refusal, with its exact message; the map stays {"c":"3"}.
    let long = "k".repeat(256);
    let many: serde_json::Map<String, serde_json::Value> = (0..26).map(|i| (format!("k{i}"), json!("v"))).collect();
    let limits = "Metadata must not exceed 25 entries. Each key and value must be ≤ 255 characters.";
    let cases: Vec<(String, Headers, &str)> = vec![
        ("{}".into(), &[], "Payload validation error: 'Too few properties defined (0), minimum 1'."),
        (
            r#"{"session_metadata":{},"x":1}"#.into(),
            &[],
            "Payload validation error: 'Additional properties not allowed: x'.",
        ),
        (r#"{"metadata":{}}"#.into(), &[], "Payload validation error: 'Additional properties not allowed: metadata'."),
        (
            r#"{"session_metadata":{}}"#.into(),
            &[("content-type", "text/plain")],
            "Payload validation error: 'Invalid JSON'.",
        ),
        (
            r#"{"session_metadata":{}}"#.into(),
            &[("content-type", "application/x-www-form-urlencoded")],
            "Payload validation error: 'Invalid JSON'.",
        ),
        (r#"{"session_metadata":{"a":"1","a":"2"}}"#.into(), &[], "Payload validation error: 'Invalid JSON'."),
        ("{\"session_metadata\":".into(), &[], "Payload validation error: 'Invalid JSON'."),
        ("[1]".into(), &[], "Payload validation error: 'Expected type object but found type array'."),
        ("\"s\"".into(), &[], "Payload validation error: 'Expected type object but found type string'."),
        (r#"{"session_metadata":"x"}"#.into(), &[], "Invalid metadata: Metadata must be an object"),
        (r#"{"session_metadata":[]}"#.into(), &[], "Invalid metadata: Metadata must be an object"),
        (json!({"session_metadata": many}).to_string(), &[], limits),
        (json!({"session_metadata": {long.clone(): "v"}}).to_string(), &[], limits),
        (json!({"session_metadata": {"k": long}}).to_string(), &[], limits),
        // 128 astral characters are 256 UTF-16 code units.
        (json!({"session_metadata": {"k": "😀".repeat(128)}}).to_string(), &[], limits),
        (
            json!({"session_metadata": {"a\u{0}": "v"}}).to_string(),
            &[],
            r"Invalid metadata: Metadata keys must not contain null bytes (\x00)",
        ),
        (
            json!({"session_metadata": {"a b": "v"}}).to_string(),
            &[],
            "Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens",
        ),
        (
            json!({"session_metadata": {"": "v"}}).to_string(),
            &[],
            "Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens",
        ),
        (json!({"session_metadata": {"k": 1}}).to_string(), &[], "Invalid metadata: Metadata value must be a string"),
        (
            json!({"session_metadata": {"k": true}}).to_string(),
            &[],
            "Invalid metadata: Metadata value must be a string",
        ),
        (
            json!({"session_metadata": {"k": ["a"]}}).to_string(),
            &[],
            "Invalid metadata: Metadata value must be a string",
        ),
        (
            json!({"session_metadata": {"k": {"n": "v"}}}).to_string(),
            &[],
            "Invalid metadata: Metadata value must be a string",
        ),
        (
            json!({"session_metadata": {"k": "a\u{0}b"}}).to_string(),
            &[],
            r"Invalid metadata: Metadata values must not contain null bytes (\x00)",
        ),
    ];
    for (body, headers, message) in &cases {
        let (answer, stored) = patch(&target, &token, body, headers).await;
        assert_eq!(answer.error(400, "invalid_body"), *message, "{body}");
        assert_eq!(stored, json!({"c": "3"}), "nothing changed after {body}");
    }
    let (answer, stored) = patch(&target, &token, "", &[("content-type", "application/json")]).await;
    assert_eq!(answer.error(400, "invalid_body"), "Payload validation error: 'Invalid JSON'.");
    assert_eq!(stored, json!({"c": "3"}));
    let huge = json!({"session_metadata": {"k": "x".repeat(65_536)}}).to_string();
    let (answer, stored) = patch(&target, &token, &huge, &[]).await;
    assert_eq!(answer.error(413, "payload_too_large"), "Payload content length greater than maximum allowed: 65536");
    assert_eq!(stored, json!({"c": "3"}));

    // The limits themselves are accepted: 25 entries, 255-unit keys and values (127 astral + 1).
    let full: serde_json::Map<String, serde_json::Value> = (0..25).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (answer, stored) = patch(&target, &token, &json!({"session_metadata": full}).to_string(), &[]).await;
    assert_eq!((answer.status, stored.as_object().unwrap().len()), (200, 25));
    let edge = json!({"session_metadata": {"k".repeat(255): format!("{}a", "😀".repeat(127))}});
    assert_eq!(patch(&target, &token, &edge.to_string(), &[]).await.0.status, 200);

    // `{"session_metadata": {}}` and `null` clear; the alias scope may PATCH too.
    let (answer, stored) = patch(&target, &token, r#"{"session_metadata":{}}"#, &[]).await;
    assert_eq!((answer.status, stored), (200, json!({})));
    patch(&target, &token, r#"{"session_metadata":{"x":"1"}}"#, &[]).await;
    let alias = keys.token("update:session");
    let answer =
        call(&target, "PATCH", "/api/v2/sessions/ses_p", Some(&alias), &[], r#"{"session_metadata":null}"#).await;
    assert_eq!((answer.status, &answer.json["session_metadata"]), (200, &json!({})));

    // Writes are audited with method, path, sub and status; never the token.
    let writes = running.events.named("api_write");
    let last = writes.last().unwrap();
    assert_eq!(
        (&last["method"], &last["path"], &last["sub"], &last["status"]),
        (&json!("PATCH"), &json!("/api/v2/sessions/ses_p"), &json!("tester"), &json!(200))
    );
    assert!(writes.iter().any(|w| w["status"] == 413) && writes.iter().any(|w| w["status"] == 400));
    assert!(running.events.named("api_write").iter().all(|w| !w.to_string().contains(&token)));
}

#[tokio::test]
async fn delete_and_revoke_end_sessions_with_tombstones() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let token = keys.token(ALL_SCOPES);
    let store = &running.store;
    seed_session(store, "ses_del", Some("u1"), 0).await;
    seed_token(store, "rt_del", Some("u1"), Some("ses_del"), 0).await;
    seed_session(store, "ses_rev", Some("u1"), 0).await;
    seed_token(store, "rt_rev1", Some("u1"), Some("ses_rev"), 0).await;
    seed_token(store, "rt_rev2", Some("u1"), Some("ses_rev"), 10).await;
    seed_token(store, "rt_other", Some("u1"), None, 0).await;

    let answer = call(&target, "DELETE", "/api/v2/sessions/ses_del", Some(&token), &[], "").await;
    assert_eq!((answer.status, answer.body.len()), (202, 0));
    assert!(answer.header("x-ratelimit-remaining").is_some());
    assert_eq!(call(&target, "GET", "/api/v2/sessions/ses_del", Some(&token), &[], "").await.status, 404);
    assert!(store.get_tombstone("ses_del", Timestamp::now()).await.unwrap().is_some());
    assert_eq!(
        call(&target, "GET", "/api/v2/refresh-tokens/rt_del", Some(&token), &[], "").await.status,
        200,
        "a delete leaves tokens alive"
    );
    let ended = running.events.named("session_ended");
    assert_eq!((&ended[0]["session_id"], &ended[0]["initiator"]), (&json!("ses_del"), &json!("session-revoked")));
    // Unknown and already ended ids are 202 too.
    for id in ["ses_del", "ses_never"] {
        let answer = call(&target, "DELETE", &format!("/api/v2/sessions/{id}"), Some(&token), &[], "").await;
        assert_eq!(answer.status, 202, "{id}");
    }

    let answer = call(&target, "POST", "/api/v2/sessions/ses_rev/revoke", Some(&token), &[], "").await;
    assert_eq!((answer.status, answer.body.len()), (202, 0));
    for id in ["rt_rev1", "rt_rev2"] {
        let answer = call(&target, "GET", &format!("/api/v2/refresh-tokens/{id}"), Some(&token), &[], "").await;
        assert_eq!(answer.status, 404, "{id} ended with its session");
        assert!(store.get_tombstone(id, Timestamp::now()).await.unwrap().is_some());
    }
    assert_eq!(call(&target, "GET", "/api/v2/sessions/ses_rev", Some(&token), &[], "").await.status, 404);
    assert!(store.get_tombstone("ses_rev", Timestamp::now()).await.unwrap().is_some());
    assert_eq!(call(&target, "GET", "/api/v2/refresh-tokens/rt_other", Some(&token), &[], "").await.status, 200);
    let answer = call(&target, "POST", "/api/v2/sessions/ses_rev/revoke", Some(&token), &[], "").await;
    assert_eq!(answer.error(404, "inexistent_session"), "The session does not exist.");

    let writes: Vec<(String, String, i64)> = running
        .events
        .named("api_write")
        .iter()
        .map(|w| {
            (w["method"].as_str().unwrap().into(), w["path"].as_str().unwrap().into(), w["status"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(writes[0], ("DELETE".into(), "/api/v2/sessions/ses_del".into(), 202));
    assert!(writes.contains(&("POST".into(), "/api/v2/sessions/ses_rev/revoke".into(), 202)));
    assert!(writes.contains(&("POST".into(), "/api/v2/sessions/ses_rev/revoke".into(), 404)));
}

#[tokio::test]
async fn a_users_sessions_page_in_order_and_end_together() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let token = keys.token(ALL_SCOPES);
    // Five sessions of auth0|u1, oldest first: ses_1 … ses_5; one of another user.
    for i in 1..=5 {
        seed_session(&running.store, &format!("ses_{i}"), Some("auth0|u1"), (10 - i) * 1000).await;
    }
    seed_session(&running.store, "ses_other", Some("auth0|u2"), 0).await;

    let mut seen = Vec::new();
    let mut path = "/api/v2/users/auth0%7Cu1/sessions?take=2&include_totals=true".to_owned();
    let mut pages = 0;
    loop {
        let answer = call(&target, "GET", &path, Some(&token), &[], "").await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        pages += 1;
        let sessions = answer.json["sessions"].as_array().unwrap();
        assert!(sessions.len() <= 2);
        seen.extend(sessions.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        assert!(sessions.iter().all(|s| s["user_id"] == "auth0|u1"));
        match answer.json.get("next") {
            Some(next) => path = format!("/api/v2/users/auth0%7Cu1/sessions?take=2&from={}", next.as_str().unwrap()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["ses_1", "ses_2", "ses_3", "ses_4", "ses_5"]);
    let answer = call(&target, "GET", "/api/v2/users/auth0%7Cu1/sessions", Some(&token), &[], "").await;
    assert_eq!(answer.json["sessions"].as_array().unwrap().len(), 5, "default take is 50");
    assert!(answer.json.get("next").is_none());

    let answer = call(&target, "GET", "/api/v2/users/nobody/sessions", Some(&token), &[], "").await;
    assert_eq!((answer.status, &answer.json), (200, &json!({"sessions": []})));
    for query in ["take=0", "take=101", "take=x", "take="] {
        let answer = call(&target, "GET", &format!("/api/v2/users/u/sessions?{query}"), Some(&token), &[], "").await;
        assert_eq!(
            answer.error(400, "invalid_uri"),
            "Query validation error: 'take' must be an integer from 1 to 100."
        );
    }
    for from in ["nope", "%2F%2F", "MTIz"] {
        let answer =
            call(&target, "GET", &format!("/api/v2/users/u/sessions?from={from}"), Some(&token), &[], "").await;
        assert_eq!(answer.error(400, "invalid_uri"), "Query validation error: 'from' is not a valid cursor.", "{from}");
    }

    let answer = call(&target, "DELETE", "/api/v2/users/auth0%7Cu1/sessions", Some(&token), &[], "").await;
    assert_eq!(answer.status, 202);
    let answer = call(&target, "GET", "/api/v2/users/auth0%7Cu1/sessions", Some(&token), &[], "").await;
    assert_eq!(answer.json, json!({"sessions": []}));
    for i in 1..=5 {
        assert!(running.store.get_tombstone(&format!("ses_{i}"), Timestamp::now()).await.unwrap().is_some());
    }
    assert_eq!(running.events.named("session_ended").len(), 5);
    let answer = call(&target, "GET", "/api/v2/sessions/ses_other", Some(&token), &[], "").await;
    assert_eq!(answer.status, 200, "another user's session is untouched");
}
