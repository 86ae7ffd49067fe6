//! The refresh-token endpoints over real HTTPS against the in-process proxy: the §6.4 object,
//! PATCH, delete, a user's tokens with paging, and retired (rotated-away) tokens staying hidden.
use crate::common;

use common::api::{call, seed_token, Keys, Target, ALL_SCOPES};
use common::proxy::start;
use helloguard::session::{Device, Metadata, RefreshToken, ResourceServer, Timestamp};
use serde_json::json;

#[tokio::test]
async fn get_patch_delete_one_token() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let token = keys.token(ALL_SCOPES);
    let record = RefreshToken {
        id: "rt_shape".into(),
        user_id: Some("auth0|5f7c".into()),
        created_at: Timestamp(1_736_933_400_000),
        idle_expires_at: Timestamp(4_102_444_800_000),
        expires_at: Timestamp(4_102_444_800_000),
        last_exchanged_at: None,
        device: Device::new(Some("203.0.113.7".into()), Some("app/2".into())),
        client_id: Some("web".into()),
        session_id: Some("ses_a".into()),
        rotating: true,
        resource_servers: vec![ResourceServer {
            audience: "https://api.example/".into(),
            scopes: "openid offline_access".into(),
        }],
        refresh_token_metadata: Metadata::from_pairs([("ja4_stable", "t13d1516h2_8daaf6152771_02713d6af862")]).unwrap(),
        retired_at: None,
    };
    running.store.create_refresh_token(&record).await.unwrap();
    let answer = call(&target, "GET", "/api/v2/refresh-tokens/rt_shape", Some(&token), &[], "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json,
        json!({"id": "rt_shape", "user_id": "auth0|5f7c", "created_at": "2025-01-15T09:30:00.000Z",
               "idle_expires_at": "2100-01-01T00:00:00.000Z", "expires_at": "2100-01-01T00:00:00.000Z",
               "last_exchanged_at": null,
               "device": {"initial_ip": "203.0.113.7", "initial_user_agent": "app/2",
                          "last_ip": "203.0.113.7", "last_user_agent": "app/2"},
               "client_id": "web", "session_id": "ses_a", "rotating": true,
               "resource_servers": [{"audience": "https://api.example/", "scopes": "openid offline_access"}],
               "refresh_token_metadata": {"ja4_stable": "t13d1516h2_8daaf6152771_02713d6af862"}})
    );

    let path = "/api/v2/refresh-tokens/rt_shape";
    let answer = call(&target, "PATCH", path, Some(&token), &[], r#"{"refresh_token_metadata":{"k":"v"}}"#).await;
    assert_eq!((answer.status, &answer.json["refresh_token_metadata"]), (200, &json!({"k": "v"})));
    let answer = call(&target, "PATCH", path, Some(&token), &[], r#"{"session_metadata":{}}"#).await;
    assert_eq!(
        answer.error(400, "invalid_body"),
        "Payload validation error: 'Additional properties not allowed: session_metadata'."
    );
    let answer = call(&target, "PATCH", path, Some(&token), &[], r#"{"refresh_token_metadata":{"k":7}}"#).await;
    assert_eq!(answer.error(400, "invalid_body"), "Invalid metadata: Metadata value must be a string");
    let answer = call(&target, "GET", path, Some(&token), &[], "").await;
    assert_eq!(answer.json["refresh_token_metadata"], json!({"k": "v"}), "unchanged by the refusals");
    let answer = call(&target, "PATCH", path, Some(&token), &[], r#"{"refresh_token_metadata":null}"#).await;
    assert_eq!(answer.json["refresh_token_metadata"], json!({}));
    let answer =
        call(&target, "PATCH", "/api/v2/refresh-tokens/rt_none", Some(&token), &[], r#"{"refresh_token_metadata":{}}"#)
            .await;
    assert_eq!(answer.error(404, "inexistent_refresh_token"), "The refresh token does not exist.");

    let answer = call(&target, "DELETE", path, Some(&token), &[], "").await;
    assert_eq!((answer.status, answer.body.len()), (202, 0));
    let answer = call(&target, "GET", path, Some(&token), &[], "").await;
    assert_eq!(answer.error(404, "inexistent_refresh_token"), "The refresh token does not exist.");
    assert!(running.store.get_tombstone("rt_shape", Timestamp::now()).await.unwrap().is_some());
    assert_eq!(call(&target, "DELETE", "/api/v2/refresh-tokens/rt_none", Some(&token), &[], "").await.status, 202);
    let long = format!("/api/v2/refresh-tokens/rt_{}", "x".repeat(48));
    let answer = call(&target, "DELETE", &long, Some(&token), &[], "").await;
    assert_eq!(
        answer.error(400, "invalid_uri"),
        "Path validation error: 'String is too long (51 chars), maximum 50' on property id."
    );
}

#[tokio::test]
async fn a_users_tokens_page_and_retired_ones_stay_hidden() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let token = keys.token("read:refresh_tokens delete:refresh_tokens update:refresh_tokens");
    for i in 1..=3 {
        seed_token(&running.store, &format!("rt_{i}"), Some("u1"), None, (10 - i) * 1000).await;
    }
    // rt_1 rotates into rt_4: rt_1 is retired and disappears from the API.
    let old = running.store.get_refresh_token("rt_1").await.unwrap().unwrap();
    let successor = old.record.successor("rt_4".into(), Timestamp::now(), Default::default(), Device::default());
    running.store.rotate_refresh_token("rt_1", old.version, Timestamp::now(), &successor).await.unwrap();

    let first = call(&target, "GET", "/api/v2/users/u1/refresh-tokens?take=2", Some(&token), &[], "").await;
    assert_eq!(first.status, 200);
    let ids = |answer: &common::api::Answer| -> Vec<String> {
        answer.json["tokens"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&first), ["rt_2", "rt_3"]);
    let next = first.json["next"].as_str().unwrap();
    let second =
        call(&target, "GET", &format!("/api/v2/users/u1/refresh-tokens?take=2&from={next}"), Some(&token), &[], "")
            .await;
    assert_eq!(ids(&second), ["rt_4"]);
    assert!(second.json.get("next").is_none());
    assert_eq!(second.json["tokens"][0]["rotating"], true);

    for method in ["GET", "PATCH"] {
        let answer =
            call(&target, method, "/api/v2/refresh-tokens/rt_1", Some(&token), &[], r#"{"refresh_token_metadata":{}}"#)
                .await;
        assert_eq!(answer.error(404, "inexistent_refresh_token"), "The refresh token does not exist.", "{method}");
    }
    // Deleting a retired token is a no-op 202: it keeps being compared until its former expiry.
    assert_eq!(call(&target, "DELETE", "/api/v2/refresh-tokens/rt_1", Some(&token), &[], "").await.status, 202);
    assert!(running.store.get_refresh_token("rt_1").await.unwrap().is_some());

    let answer = call(&target, "GET", "/api/v2/users/none/refresh-tokens", Some(&token), &[], "").await;
    assert_eq!((answer.status, &answer.json), (200, &json!({"tokens": []})));
    let answer = call(&target, "GET", "/api/v2/users/u1/refresh-tokens?take=1000", Some(&token), &[], "").await;
    assert_eq!(answer.error(400, "invalid_uri"), "Query validation error: 'take' must be an integer from 1 to 100.");
}
