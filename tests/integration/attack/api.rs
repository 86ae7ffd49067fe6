//! The Management API under clients that push at its edges: early error answers over HTTP/2 (the
//! body is read first, so curl 7.88 gets every answer), and a bearer token's ECDSA twin (the same
//! claims with the high-S signature), which shares its token's rate-limit bucket.

use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::common;
use common::api::{call, Keys, Target};
use common::proxy::start;

/// P-256's group order, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The same token with its ECDSA `s` replaced by `n - s`: a second valid signature.
fn ecdsa_twin(token: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature = b64.decode(signature).unwrap();
    assert_eq!(signature.len(), 64);
    let s = &mut signature[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut digit = i16::from(P256_ORDER[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(digit < 0);
        if digit < 0 {
            digit += 256;
        }
        s[i] = digit as u8;
    }
    format!("{signed}.{}", b64.encode(signature))
}

#[tokio::test]
async fn a_tokens_ecdsa_twin_shares_its_rate_limit_bucket() {
    let keys = Keys::generate();
    let running = start(|c| {
        keys.configure(c);
        c.api.rate_limit_burst = 2;
        c.api.rate_limit_per_second = helloguard::config::PerSecond(0.001);
    })
    .await;
    let target = Target::proxy(&running);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"aud": "helloguard-management", "exp": now + 600, "sub": "ops", "scope": "read:sessions"});
    let token = keys.sign(Algorithm::ES256, &claims);
    let twin = ecdsa_twin(&token);
    assert_ne!(token, twin);
    let path = "/api/v2/sessions/ses_x";
    let first = call(&target, "GET", path, Some(&token), &[], "").await;
    assert_eq!((first.status, first.header("x-ratelimit-remaining")), (404, Some("1")));
    let second = call(&target, "GET", path, Some(&twin), &[], "").await;
    assert_eq!(second.status, 404, "the twin verifies: ECDSA accepts both signatures");
    assert_eq!(second.header("x-ratelimit-remaining"), Some("0"), "one bucket for both");
    let third = call(&target, "GET", path, Some(&token), &[], "").await;
    assert_eq!(third.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_errors_over_http2_reach_curl_every_time() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        return common::skip_unless_required("HELLOGUARD_REQUIRE_CHROMIUM", "curl is not installed");
    }
    let running = start(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("patch.json");
    let value = "v".repeat(200);
    let metadata: serde_json::Map<_, _> = (0..25).map(|i| (format!("k{i}"), json!(value))).collect();
    let text = json!({"session_metadata": metadata}).to_string().repeat(8);
    std::fs::write(&body, &text).unwrap();
    let url = format!("https://localhost:{}/api/v2/sessions/ses_x", running.addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", running.addr.port());
    let mut failures = Vec::new();
    for attempt in 0..50 {
        let output = std::process::Command::new("curl")
            .args(["-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH"])
            .args(["--resolve", &resolve, "-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", body.display()))
            .arg(&url)
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() || code != "401" {
            failures.push((attempt, output.status.code(), code));
        }
    }
    assert!(failures.is_empty(), "curl lost the answer (attempt, exit code, status): {failures:?}");
}
