//! `helloguard token`: the binary mints a token with the local management key, the running proxy
//! accepts it, and bad scope names are a one-line error with exit status 2.
use crate::common;

use std::process::Command;

use base64::Engine as _;
use common::api::{call, seed_session, unix_now, Target};
use common::proxy::start;
use serde_json::Value;

fn helloguard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_helloguard")).args(args).output().unwrap()
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn a_minted_token_works_against_the_proxy() {
    let running = start(|_| {}).await;
    seed_session(&running.store, "ses_cli", Some("u"), 0).await;
    let data_dir = running.dir.path().to_str().unwrap().to_owned();
    let output = helloguard(&[
        "token",
        "--data-dir",
        &data_dir,
        "--scopes",
        "read:sessions,update:sessions",
        "--ttl",
        "600",
        "--sub",
        "ops",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let claims = payload(&token);
    assert_eq!(claims["iss"], "helloguard");
    assert_eq!(claims["sub"], "ops");
    assert_eq!(claims["aud"], "helloguard-management");
    assert_eq!(claims["scope"], "read:sessions update:sessions");
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 600);
    assert!(iat.abs_diff(unix_now()) < 300);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());

    let target = Target::proxy(&running);
    let answer = call(&target, "GET", "/api/v2/sessions/ses_cli", Some(&token), &[], "").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let answer = call(&target, "DELETE", "/api/v2/sessions/ses_cli", Some(&token), &[], "").await;
    assert_eq!(answer.error(403, "insufficient_scope"), "Insufficient scope, expected any of: delete:sessions");
    let writes = running.events.named("api_write");
    assert_eq!(writes[0]["sub"], "ops");

    // A key from another data directory is not trusted.
    let elsewhere = tempfile::tempdir().unwrap();
    let output = helloguard(&["token", "--data-dir", elsewhere.path().to_str().unwrap(), "--scopes", "read:sessions"]);
    let foreign = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let answer = call(&target, "GET", "/api/v2/sessions/ses_cli", Some(&foreign), &[], "").await;
    assert_eq!(answer.error(401, "invalid_token"), "Invalid token", "its kid names no trusted key");
}

#[test]
fn config_sets_issuer_and_audience_and_unknown_scopes_fail() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("helloguard.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[api]\naudience = \"https://mgmt.example/\"\nissuer = \"https://login.example/\"\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let output = helloguard(&["token", "--config", config.to_str().unwrap(), "--scopes", "delete:refresh_tokens"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let claims = payload(String::from_utf8(output.stdout).unwrap().trim());
    assert_eq!(
        (&claims["aud"], &claims["iss"]),
        (&Value::from("https://mgmt.example/"), &Value::from("https://login.example/"))
    );
    assert!(data.join("keys/management-es256.pem").is_file(), "the key went to [store] path");

    let output = helloguard(&["token", "--data-dir", data.to_str().unwrap(), "--scopes", "read:sessions write:all"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("helloguard: unknown scope \"write:all\""), "{stderr}");
}
