//! The logout token's claims (CONTRACT §8, OIDC Back-Channel Logout 1.0 §2.4): `iss`, `sub` (only
//! when the user is known), `aud` (the client id, a string), `iat`, `exp` = `iat` + 120, a fresh
//! `jti` (UUID v4) per attempt, the back-channel `events` member, `sid`, the `session_metadata`
//! snapshot when the entry carries one, and `trace_id`. Never `nonce`.

use serde::Serialize;
use serde_json::{json, Value};

use crate::session::{Metadata, OutboxEntry};

/// The `events` member that makes a JWT a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid.
pub const LIFETIME_SECS: i64 = 120;

/// The claims of one attempt's token.
#[derive(Debug, Serialize)]
pub struct LogoutClaims<'a> {
    pub iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<&'a str>,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub events: Value,
    pub sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_metadata: Option<&'a Metadata>,
    pub trace_id: &'a str,
}

impl<'a> LogoutClaims<'a> {
    /// Claims for one attempt at `entry`, issued at `iat` (Unix seconds).
    pub fn for_attempt(issuer: &'a str, entry: &'a OutboxEntry, iat: i64) -> Self {
        Self {
            iss: issuer,
            sub: entry.sub.as_deref(),
            aud: &entry.client_id,
            iat,
            exp: iat + LIFETIME_SECS,
            jti: uuid::Uuid::new_v4().to_string(),
            events: json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
            sid: &entry.sid,
            session_metadata: entry.session_metadata.as_ref().filter(|m| !m.is_empty()),
            trace_id: &entry.trace_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Timestamp;

    fn entry(sub: Option<&str>, metadata: Option<Metadata>) -> OutboxEntry {
        OutboxEntry {
            client_id: "web".into(),
            url: "https://rp.example/bcl".into(),
            sid: "ses_abc".into(),
            sub: sub.map(str::to_owned),
            session_metadata: metadata,
            initiator: "rp-logout".into(),
            trace_id: "0123456789abcdef0123456789abcdef".into(),
            attempts: 0,
            due_at: Timestamp(0),
        }
    }

    #[test]
    fn claims_are_exactly_the_contracts() {
        let metadata = Metadata::from_pairs([("ja4_stable", "t13d")]).unwrap();
        let entry = entry(Some("auth0|u1"), Some(metadata));
        let claims =
            serde_json::to_value(LogoutClaims::for_attempt("https://login.example/", &entry, 1736933400)).unwrap();
        let jti = claims["jti"].as_str().unwrap().to_owned();
        assert_eq!(
            claims,
            json!({"iss": "https://login.example/", "sub": "auth0|u1", "aud": "web", "iat": 1736933400,
                   "exp": 1736933520, "jti": jti,
                   "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
                   "sid": "ses_abc", "session_metadata": {"ja4_stable": "t13d"},
                   "trace_id": "0123456789abcdef0123456789abcdef"})
        );
        let parsed = uuid::Uuid::parse_str(&jti).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn optional_claims_are_absent_not_null() {
        let entry = entry(None, Some(Metadata::new()));
        let claims = serde_json::to_value(LogoutClaims::for_attempt("iss", &entry, 10)).unwrap();
        let object = claims.as_object().unwrap();
        for absent in ["sub", "session_metadata", "nonce"] {
            assert!(!object.contains_key(absent), "{absent} in {claims}");
        }
    }

    #[test]
    fn every_attempt_has_a_new_jti() {
        let entry = entry(None, None);
        let a = LogoutClaims::for_attempt("iss", &entry, 10).jti;
        let b = LogoutClaims::for_attempt("iss", &entry, 10).jti;
        assert_ne!(a, b);
    }
}
