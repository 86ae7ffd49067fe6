//! The Management API's front door over real HTTPS: bearer-token verification (every 401), the
//! scope table of every endpoint (403), the per-token rate limit (429), and the order of the
//! checks (route → 401 → 429 → 403 → path/query → body → record).
use crate::common;

use common::api::{call, claims, raw_token, seed_session, unix_now, Keys, Target, ALL_SCOPES};
use common::proxy::start;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const BAD_SIGNATURE: &str = "Invalid signature received for JSON Web Token validation";
const EXPIRED: &str = "Expired token received for JSON Web Token validation";
const INVALID: &str = "Invalid token";

#[tokio::test]
async fn tokens_are_verified_and_every_refusal_is_a_contract_401() {
    let keys = Keys::generate();
    let running = start(|c| {
        keys.configure(c);
        c.api.issuer = Some("https://idp.example/".into());
    })
    .await;
    let target = Target::proxy(&running);
    seed_session(&running.store, "ses_known", Some("u"), 0).await;
    let path = "/api/v2/sessions/ses_known";
    let issued = |scope: &str| {
        let mut c = claims(scope);
        c["iss"] = json!("https://idp.example/");
        c
    };

    // Accepted: each configured algorithm, an `aud` array, `exp` and `nbf` within the leeway,
    // `permissions` instead of `scope`, a kid naming no key (the EC key has none).
    let mut ok = vec![
        keys.sign(Algorithm::HS256, &issued("read:sessions")),
        keys.sign(Algorithm::RS256, &issued("read:sessions")),
        keys.sign(Algorithm::ES256, &issued("read:sessions")),
    ];
    let mut c = issued("");
    c["aud"] = json!(["https://other.example/", "helloguard-management"]);
    c["permissions"] = json!(["read:sessions"]);
    c["exp"] = json!(unix_now() - 30);
    c["nbf"] = json!(unix_now() + 30);
    ok.push(keys.sign(Algorithm::RS256, &c));
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("unknown-kid".into());
    ok.push(
        jsonwebtoken::encode(
            &header,
            &issued("read:sessions"),
            &EncodingKey::from_ec_pem(keys.ec_private_pem.as_bytes()).unwrap(),
        )
        .unwrap(),
    );
    for token in &ok {
        let answer = call(&target, "GET", path, Some(token), &[], "").await;
        assert_eq!(answer.status, 200, "{}", answer.json);
    }

    let mut refused: Vec<(&str, String, &str)> = Vec::new();
    // Signatures.
    let forged = EncodingKey::from_secret(&[7u8; 48]);
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("hs".into());
    refused.push((
        "wrong HS256 secret",
        jsonwebtoken::encode(&hs_header, &issued(ALL_SCOPES), &forged).unwrap(),
        BAD_SIGNATURE,
    ));
    let valid = keys.token(ALL_SCOPES);
    let mut tampered = valid.clone();
    tampered.replace_range(valid.len() - 6.., "AAAAAA");
    refused.push(("tampered RS256 signature", tampered, BAD_SIGNATURE));
    // Algorithm confusion: an HS256 token whose secret is the RSA public key's PEM, with the RSA
    // key's kid and without any kid.
    let confused = EncodingKey::from_secret(keys.rsa_public_pem.as_bytes());
    let mut named = Header::new(Algorithm::HS256);
    named.kid = Some("rsa".into());
    refused.push((
        "HS256 with the RSA PEM, kid rsa",
        jsonwebtoken::encode(&named, &issued(ALL_SCOPES), &confused).unwrap(),
        INVALID,
    ));
    refused.push((
        "HS256 with the RSA PEM, no kid",
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &issued(ALL_SCOPES), &confused).unwrap(),
        BAD_SIGNATURE,
    ));
    // `alg: none` and algorithms helloguard does not take.
    refused.push(("alg none", raw_token(&json!({"alg": "none", "typ": "JWT"}), &issued(ALL_SCOPES), b""), INVALID));
    refused.push(("alg None", raw_token(&json!({"alg": "None"}), &issued(ALL_SCOPES), b""), INVALID));
    refused.push(("alg HS512", raw_token(&json!({"alg": "HS512", "kid": "hs"}), &issued(ALL_SCOPES), b"sig"), INVALID));
    // Claims.
    let mut c = issued(ALL_SCOPES);
    c["exp"] = json!(unix_now() - 3600);
    refused.push(("expired", keys.sign(Algorithm::RS256, &c), EXPIRED));
    let mut c = issued(ALL_SCOPES);
    c.as_object_mut().unwrap().remove("exp");
    refused.push(("no exp", keys.sign(Algorithm::RS256, &c), INVALID));
    let mut c = issued(ALL_SCOPES);
    c["aud"] = json!("https://api.example/");
    refused.push(("wrong aud", keys.sign(Algorithm::RS256, &c), INVALID));
    let mut c = issued(ALL_SCOPES);
    c["aud"] = json!(["a", "b"]);
    refused.push(("aud array without ours", keys.sign(Algorithm::RS256, &c), INVALID));
    let mut c = issued(ALL_SCOPES);
    c.as_object_mut().unwrap().remove("aud");
    refused.push(("no aud", keys.sign(Algorithm::RS256, &c), INVALID));
    let mut c = issued(ALL_SCOPES);
    c["nbf"] = json!(unix_now() + 600);
    refused.push(("nbf in the future", keys.sign(Algorithm::RS256, &c), INVALID));
    let mut c = issued(ALL_SCOPES);
    c["iss"] = json!("https://evil.example/");
    refused.push(("wrong iss", keys.sign(Algorithm::RS256, &c), INVALID));
    refused.push(("no iss", keys.sign(Algorithm::RS256, &claims(ALL_SCOPES)), INVALID));
    // A kid that names no RS256 key, when every RS256 key has a kid.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("other".into());
    let rsa = EncodingKey::from_rsa_pem(keys.rsa_private_pem.as_bytes()).unwrap();
    refused.push(("unknown RS256 kid", jsonwebtoken::encode(&header, &issued(ALL_SCOPES), &rsa).unwrap(), INVALID));
    refused.push(("not a JWT", "abc.def".to_owned(), INVALID));
    refused.push(("garbage", "%%%".to_owned(), INVALID));

    for (case, token, message) in &refused {
        let answer = call(&target, "GET", path, Some(token), &[], "").await;
        assert_eq!(answer.error(401, "invalid_token"), *message, "{case}");
        assert_eq!(answer.json["attributes"]["error"], *message, "{case}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{case}");
        assert!(answer.header("x-ratelimit-limit").is_none(), "{case}: not authenticated, no rate-limit headers");
    }

    for headers in [&[][..], &[("authorization", "Basic dXNlcjpwYXNz")][..], &[("authorization", "Bearer ")][..]] {
        let answer = call(&target, "GET", path, None, headers, "").await;
        assert_eq!(answer.error(401, "missing_authentication"), "Missing authentication");
        assert_eq!(answer.json["attributes"], json!({"error": "Missing authentication"}));
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }

    // No token ever reaches the audit trail.
    let events = running.events.0.lock().unwrap();
    let text: String = events.iter().map(|e| e.to_string()).collect();
    for token in ok.iter().chain(refused.iter().map(|(_, t, _)| t)) {
        assert!(!text.contains(token.as_str()));
    }
}

/// Every endpoint with a token holding every scope but the required ones is 403 with the
/// canonical name; with exactly the required ones it passes the scope check.
#[tokio::test]
async fn scope_table_of_every_endpoint() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let all: Vec<&str> = ALL_SCOPES.split(' ').collect();
    let patch_session = r#"{"session_metadata":{}}"#;
    let patch_token = r#"{"refresh_token_metadata":{}}"#;
    let table: [(&str, &str, &str, &[&str]); 10] = [
        ("GET", "/api/v2/sessions/ses_x", "", &["read:sessions"]),
        ("PATCH", "/api/v2/sessions/ses_x", patch_session, &["update:sessions"]),
        ("DELETE", "/api/v2/sessions/ses_x", "", &["delete:sessions"]),
        ("POST", "/api/v2/sessions/ses_x/revoke", "", &["delete:sessions", "delete:refresh_tokens"]),
        ("GET", "/api/v2/users/u/sessions", "", &["read:sessions"]),
        ("DELETE", "/api/v2/users/u/sessions", "", &["delete:sessions"]),
        ("GET", "/api/v2/refresh-tokens/rt_x", "", &["read:refresh_tokens"]),
        ("PATCH", "/api/v2/refresh-tokens/rt_x", patch_token, &["update:refresh_tokens"]),
        ("DELETE", "/api/v2/refresh-tokens/rt_x", "", &["delete:refresh_tokens"]),
        ("GET", "/api/v2/users/u/refresh-tokens", "", &["read:refresh_tokens"]),
    ];
    for (method, path, body, required) in table {
        for missing in required {
            let others: Vec<&str> = all.iter().copied().filter(|s| s != missing).collect();
            let answer = call(&target, method, path, Some(&keys.token(&others.join(" "))), &[], body).await;
            let expected = if required.len() == 1 {
                format!("Insufficient scope, expected any of: {missing}")
            } else {
                "Insufficient scope, expected all of: delete:sessions,delete:refresh_tokens".to_owned()
            };
            assert_eq!(answer.error(403, "insufficient_scope"), expected, "{method} {path}");
            assert!(answer.header("x-ratelimit-remaining").is_some(), "authenticated: rate-limit headers");
        }
        let answer = call(&target, method, path, Some(&keys.token(&required.join(" "))), &[], body).await;
        assert_ne!(answer.status, 403, "{method} {path} with exactly {required:?}: {}", answer.json);
        // `permissions` grants as well as `scope`.
        let mut c = claims("");
        c["permissions"] = json!(required);
        let answer = call(&target, method, path, Some(&keys.sign(Algorithm::HS256, &c)), &[], body).await;
        assert_ne!(answer.status, 403, "{method} {path} via permissions");
    }
    // The `update:session` alias: PATCH sessions only.
    let alias = keys.token("update:session");
    let answer = call(&target, "PATCH", "/api/v2/sessions/ses_x", Some(&alias), &[], patch_session).await;
    assert_eq!(answer.error(404, "inexistent_session"), "The session does not exist.");
    for (method, path, body) in [
        ("GET", "/api/v2/sessions/ses_x", ""),
        ("PATCH", "/api/v2/refresh-tokens/rt_x", patch_token),
        ("DELETE", "/api/v2/sessions/ses_x", ""),
    ] {
        assert_eq!(call(&target, method, path, Some(&alias), &[], body).await.status, 403, "{method} {path}");
    }
}

#[tokio::test]
async fn rate_limit_per_token_with_headers_and_429() {
    let keys = Keys::generate();
    let running = start(|c| {
        keys.configure(c);
        c.api.rate_limit_burst = 3;
        // One request back every 1000 s: nothing refills during the test.
        c.api.rate_limit_per_second = helloguard::config::PerSecond(0.001);
    })
    .await;
    let target = Target::proxy(&running);
    let path = "/api/v2/sessions/ses_x";
    let unscoped = keys.token("");
    let before = unix_now();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        // 403 (no scope) is still authenticated and counted.
        let answer = call(&target, "GET", path, Some(&unscoped), &[], "").await;
        assert_eq!(answer.status, 403);
        assert_eq!(answer.header("x-ratelimit-limit"), Some("3"));
        remaining.push(answer.header("x-ratelimit-remaining").unwrap().to_owned());
        let reset: u64 = answer.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset > before, "the bucket is full again in the future");
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    // 429 comes before 403.
    let answer = call(&target, "GET", path, Some(&unscoped), &[], "").await;
    assert_eq!(
        answer.error(429, "too_many_requests"),
        "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers."
    );
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("0"));
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    // Another token has its own bucket; a refused token (401) takes nothing from anyone's.
    let other = keys.token("read:sessions");
    let answer = call(&target, "GET", path, Some(&other), &[], "").await;
    assert_eq!((answer.status, answer.header("x-ratelimit-remaining")), (404, Some("2")));
    let expired = {
        let mut c = claims("read:sessions");
        c["exp"] = json!(unix_now() - 3600);
        keys.sign(Algorithm::RS256, &c)
    };
    assert_eq!(call(&target, "GET", path, Some(&expired), &[], "").await.status, 401);
    let answer = call(&target, "GET", path, Some(&other), &[], "").await;
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("1"));
}

#[tokio::test]
async fn checks_run_in_the_contract_order() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let target = Target::proxy(&running);
    let long_id = "s".repeat(51);
    let all = keys.token(ALL_SCOPES);

    // Route first: unknown routes are 404 even without a token.
    for (method, path) in [("GET", "/api/v2/nothing"), ("PUT", "/api/v2/sessions/ses_x"), ("GET", "/api/v2/sessions/")]
    {
        let answer = call(&target, method, path, None, &[], "").await;
        assert_eq!(answer.error(404, "not_found"), "Not Found", "{method} {path}");
    }
    // The OpenAPI document needs no token.
    let answer = call(&target, "GET", "/api/v2/openapi.json", None, &[], "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["openapi"], "3.1.0");
    assert!(answer.header("content-type").unwrap().starts_with("application/json"));
    // 401 before 403 and 400.
    let path = format!("/api/v2/sessions/{long_id}");
    assert_eq!(call(&target, "PATCH", &path, None, &[], "{").await.status, 401);
    // 403 before 400 path.
    assert_eq!(call(&target, "PATCH", &path, Some(&keys.token("read:sessions")), &[], "{").await.status, 403);
    // 400 path before 400 body.
    let answer = call(&target, "PATCH", &path, Some(&all), &[], "{").await;
    assert_eq!(
        answer.error(400, "invalid_uri"),
        "Path validation error: 'String is too long (51 chars), maximum 50' on property id."
    );
    // 400 query before anything else of a list.
    let answer = call(&target, "GET", "/api/v2/users/u/sessions?take=0", Some(&all), &[], "").await;
    assert_eq!(answer.error(400, "invalid_uri"), "Query validation error: 'take' must be an integer from 1 to 100.");
    // 400 body before 404 record, and 413 before 404 too.
    let answer = call(&target, "PATCH", "/api/v2/sessions/ses_unknown", Some(&all), &[], "{").await;
    assert_eq!(answer.error(400, "invalid_body"), "Payload validation error: 'Invalid JSON'.");
    let huge = format!(r#"{{"session_metadata":{{"a":"{}"}}}}"#, "x".repeat(70_000));
    let answer = call(&target, "PATCH", "/api/v2/sessions/ses_unknown", Some(&all), &[], &huge).await;
    assert_eq!(answer.error(413, "payload_too_large"), "Payload content length greater than maximum allowed: 65536");
    // A client still sending a refused body reads its 413: the server reads on (up to 1 MiB)
    // instead of closing with unread bytes, which would reset the connection under the answer.
    let larger = format!(r#"{{"session_metadata":{{"a":"{}"}}}}"#, "x".repeat(600_000));
    for _ in 0..5 {
        let answer = call(&target, "PATCH", "/api/v2/sessions/ses_unknown", Some(&all), &[], &larger).await;
        assert_eq!(answer.status, 413);
    }
    let answer =
        call(&target, "PATCH", "/api/v2/sessions/ses_unknown", Some(&all), &[], r#"{"session_metadata":{}}"#).await;
    assert_eq!(answer.error(404, "inexistent_session"), "The session does not exist.");
}
