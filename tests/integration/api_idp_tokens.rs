//! The README recipe "tokens from your identity provider": `[[api.keys]] kind = "jwks"` pointing at
//! the provider's JWKS file, `[api] audience` and `issuer` set to what its tokens carry, and an
//! RS256 token shaped as Auth0 issues them for an API: `aud` an array, `kid` in the header, scopes
//! in a `permissions` array (no `scope` claim). The key pair, the JWKS file and the token are made
//! here, independently of helloguard's verifier.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;

use crate::common;
use common::api::{call, seed_session, unix_now, Target};
use common::proxy::start;
use helloguard::config::{ApiKeyConfig, ApiKeyKind};

const ISSUER: &str = "https://tenant.example.auth0.com/";
const AUDIENCE: &str = "https://helloguard.example/api/v2/";

#[tokio::test]
async fn an_identity_providers_rs256_tokens_with_permissions_are_accepted() {
    let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwks = json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "idp-key-1",
        "n": b64.encode(rsa.n().to_bytes_be()), "e": b64.encode(rsa.e().to_bytes_be()),
    }]});
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let running = start(|c| {
        c.api.keys = vec![ApiKeyConfig { kind: ApiKeyKind::Jwks, path: jwks_path.clone(), kid: None }];
        c.api.audience = AUDIENCE.to_owned();
        c.api.issuer = Some(ISSUER.to_owned());
    })
    .await;
    seed_session(&running.store, "ses_idp", Some("auth0|idp-user"), 0).await;

    let pem = rsa.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("idp-key-1".into());
    let now = unix_now();
    let sign = |permissions: &[&str], aud: serde_json::Value| {
        let claims = json!({
            "iss": ISSUER, "sub": "ops@clients", "aud": aud, "iat": now, "exp": now + 600,
            "azp": "ops-client", "gty": "client-credentials", "permissions": permissions,
        });
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let target = Target::proxy(&running);
    let token =
        sign(&["read:sessions", "delete:sessions"], json!([AUDIENCE, "https://tenant.example.auth0.com/userinfo"]));
    let answer = call(&target, "GET", "/api/v2/sessions/ses_idp", Some(&token), &[], "").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["user_id"], "auth0|idp-user");
    let answer = call(&target, "DELETE", "/api/v2/sessions/ses_idp", Some(&token), &[], "").await;
    assert_eq!(answer.status, 202);
    let write = running.events.named("api_write").pop().unwrap();
    assert_eq!(write["sub"], "ops@clients");

    // The permissions decide: a token without delete:sessions is refused that.
    let reader = sign(&["read:sessions"], json!([AUDIENCE]));
    let answer = call(&target, "DELETE", "/api/v2/sessions/ses_other", Some(&reader), &[], "").await;
    assert_eq!(answer.error(403, "insufficient_scope"), "Insufficient scope, expected any of: delete:sessions");
    // Another audience, or another issuer, is not accepted.
    let elsewhere = sign(&["read:sessions"], json!(["https://other.example/"]));
    assert_eq!(call(&target, "GET", "/api/v2/sessions/ses_idp", Some(&elsewhere), &[], "").await.status, 401);
}
