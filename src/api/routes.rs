//! The endpoints of CONTRACT §6.2: matching method and path, the scopes each requires, and the
//! validation of path and query parameters (`{id}` ≤ 50 chars, `{user_id}` percent-decoded,
//! `take` 1–100, `from` a cursor).

use hyper::Method;

use super::errors::ApiError;
use super::scopes::{
    Granted, DELETE_REFRESH_TOKENS, DELETE_SESSIONS, READ_REFRESH_TOKENS, READ_SESSIONS, UPDATE_REFRESH_TOKENS,
    UPDATE_SESSIONS, UPDATE_SESSION_ALIAS,
};
use crate::session::Cursor;

/// Every path the API answers starts with this; on the proxy listener it is never forwarded.
pub const PREFIX: &str = "/api/v2/";

/// Longest `{id}` accepted (`400` above).
pub const MAX_ID_CHARS: usize = 50;

/// Page size bounds and default of the list endpoints.
pub const MAX_TAKE: usize = 100;
pub const DEFAULT_TAKE: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    OpenApi,
    GetSession,
    PatchSession,
    DeleteSession,
    RevokeSession,
    ListUserSessions,
    DeleteUserSessions,
    GetRefreshToken,
    PatchRefreshToken,
    DeleteRefreshToken,
    ListUserRefreshTokens,
    /// `GET /api/v2/refresh-tokens?user_id=…`: a user's tokens, optionally of one client.
    ListRefreshTokens,
    /// `POST /api/v2/refresh-tokens/revoke`: tokens by id, or a user's (of one client).
    RevokeRefreshTokens,
    DeleteUserRefreshTokens,
}

impl Endpoint {
    /// The scopes required, all of them (canonical names).
    pub fn required_scopes(self) -> &'static [&'static str] {
        match self {
            Self::OpenApi => &[],
            Self::GetSession | Self::ListUserSessions => &[READ_SESSIONS],
            Self::PatchSession => &[UPDATE_SESSIONS],
            Self::DeleteSession | Self::DeleteUserSessions => &[DELETE_SESSIONS],
            Self::RevokeSession => &[DELETE_SESSIONS, DELETE_REFRESH_TOKENS],
            Self::GetRefreshToken | Self::ListUserRefreshTokens | Self::ListRefreshTokens => &[READ_REFRESH_TOKENS],
            Self::PatchRefreshToken => &[UPDATE_REFRESH_TOKENS],
            Self::DeleteRefreshToken | Self::RevokeRefreshTokens | Self::DeleteUserRefreshTokens => {
                &[DELETE_REFRESH_TOKENS]
            }
        }
    }

    /// Whether `granted` satisfies the endpoint (`update:session` stands in for
    /// `update:sessions` on PATCH sessions only).
    pub fn allows(self, granted: &Granted) -> bool {
        if self == Self::PatchSession && granted.has(UPDATE_SESSION_ALIAS) {
            return true;
        }
        self.required_scopes().iter().all(|scope| granted.has(scope))
    }

    /// Writes are audited (`api_write`).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::PatchSession
                | Self::DeleteSession
                | Self::RevokeSession
                | Self::DeleteUserSessions
                | Self::PatchRefreshToken
                | Self::DeleteRefreshToken
                | Self::RevokeRefreshTokens
                | Self::DeleteUserRefreshTokens
        )
    }

    /// Whether the path parameter is a record `{id}` (else a `{user_id}`).
    fn takes_record_id(self) -> bool {
        !matches!(
            self,
            Self::ListUserSessions
                | Self::DeleteUserSessions
                | Self::ListUserRefreshTokens
                | Self::DeleteUserRefreshTokens
        )
    }
}

/// A matched request: the endpoint and its path parameter, still percent-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched<'a> {
    pub endpoint: Endpoint,
    raw_param: &'a str,
}

/// The endpoint for a method and path, or `None` (`404 not_found`).
pub fn match_route<'a>(method: &Method, path: &'a str) -> Option<Matched<'a>> {
    let rest = path.strip_prefix(PREFIX)?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let m = method.as_str();
    let (endpoint, raw_param) = match (m, segments.as_slice()) {
        ("GET", ["openapi.json"]) => (Endpoint::OpenApi, ""),
        ("GET", ["sessions", id]) => (Endpoint::GetSession, *id),
        ("PATCH", ["sessions", id]) => (Endpoint::PatchSession, *id),
        ("DELETE", ["sessions", id]) => (Endpoint::DeleteSession, *id),
        ("POST", ["sessions", id, "revoke"]) => (Endpoint::RevokeSession, *id),
        ("GET", ["users", user, "sessions"]) => (Endpoint::ListUserSessions, *user),
        ("DELETE", ["users", user, "sessions"]) => (Endpoint::DeleteUserSessions, *user),
        ("GET", ["refresh-tokens", id]) => (Endpoint::GetRefreshToken, *id),
        ("PATCH", ["refresh-tokens", id]) => (Endpoint::PatchRefreshToken, *id),
        ("DELETE", ["refresh-tokens", id]) => (Endpoint::DeleteRefreshToken, *id),
        ("GET", ["users", user, "refresh-tokens"]) => (Endpoint::ListUserRefreshTokens, *user),
        ("DELETE", ["users", user, "refresh-tokens"]) => (Endpoint::DeleteUserRefreshTokens, *user),
        ("GET", ["refresh-tokens"]) => (Endpoint::ListRefreshTokens, ""),
        ("POST", ["refresh-tokens", "revoke"]) => (Endpoint::RevokeRefreshTokens, ""),
        _ => return None,
    };
    Some(Matched { endpoint, raw_param })
}

impl Matched<'_> {
    /// The decoded path parameter, validated (`400 invalid_uri` otherwise).
    pub fn param(&self) -> Result<String, ApiError> {
        let property = if self.endpoint.takes_record_id() { "id" } else { "user_id" };
        let value = percent_decode(self.raw_param).ok_or_else(|| {
            ApiError::InvalidUri(format!("Path validation error: 'String is not valid UTF-8' on property {property}."))
        })?;
        let chars = value.chars().count();
        if self.endpoint.takes_record_id() && chars > MAX_ID_CHARS {
            return Err(ApiError::InvalidUri(format!(
                "Path validation error: 'String is too long ({chars} chars), maximum {MAX_ID_CHARS}' on property id."
            )));
        }
        Ok(value)
    }
}

/// `%XX` sequences decoded (a `%` not followed by two hex digits stays as it is); `None` when
/// the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()));
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A query parameter's first value (repeats count by their first occurrence, as for paging).
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `take` and `from` of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub take: usize,
    pub from: Option<Cursor>,
}

/// Parses the query of a list request; other parameters are ignored. A repeated parameter
/// counts by its first occurrence.
pub fn paging(query: Option<&str>) -> Result<Paging, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let first = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let take = match first("take") {
        None => DEFAULT_TAKE,
        Some(text) => text
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| text.parse::<usize>().ok())
            .flatten()
            .filter(|n| (1..=MAX_TAKE).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidUri("Query validation error: 'take' must be an integer from 1 to 100.".to_owned())
            })?,
    };
    let from =
        match first("from") {
            None => None,
            Some(text) => Some(Cursor::decode(text).map_err(|_| {
                ApiError::InvalidUri("Query validation error: 'from' is not a valid cursor.".to_owned())
            })?),
        };
    Ok(Paging { take, from })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_method_and_exact_shape() {
        let endpoint = |m: Method, p: &str| match_route(&m, p).map(|r| r.endpoint);
        assert_eq!(endpoint(Method::GET, "/api/v2/sessions/ses_1"), Some(Endpoint::GetSession));
        assert_eq!(endpoint(Method::POST, "/api/v2/sessions/ses_1/revoke"), Some(Endpoint::RevokeSession));
        assert_eq!(endpoint(Method::DELETE, "/api/v2/users/u/sessions"), Some(Endpoint::DeleteUserSessions));
        assert_eq!(endpoint(Method::GET, "/api/v2/users/u/refresh-tokens"), Some(Endpoint::ListUserRefreshTokens));
        assert_eq!(endpoint(Method::PUT, "/api/v2/sessions/ses_1"), None);
        assert_eq!(endpoint(Method::GET, "/api/v2/sessions/"), None);
        assert_eq!(endpoint(Method::GET, "/api/v2/sessions/a/b"), None);
        assert_eq!(endpoint(Method::DELETE, "/api/v2/users/u/refresh-tokens"), Some(Endpoint::DeleteUserRefreshTokens));
        assert_eq!(endpoint(Method::GET, "/api/v2/refresh-tokens"), Some(Endpoint::ListRefreshTokens));
        assert_eq!(endpoint(Method::POST, "/api/v2/refresh-tokens/revoke"), Some(Endpoint::RevokeRefreshTokens));
        assert_eq!(endpoint(Method::POST, "/api/v2/refresh-tokens/rt_1"), None);
        assert_eq!(endpoint(Method::GET, "/api/v1/sessions/x"), None);
    }

    #[test]
    fn path_parameters_are_decoded_and_bounded() {
        let param = |p: &str| match_route(&Method::GET, p).unwrap().param();
        assert_eq!(param("/api/v2/users/auth0%7C5f7c/sessions"), Ok("auth0|5f7c".to_owned()));
        assert_eq!(param("/api/v2/users/100%25/sessions"), Ok("100%".to_owned()));
        assert_eq!(param("/api/v2/users/a%2/sessions"), Ok("a%2".to_owned()));
        assert!(param("/api/v2/users/%FF/sessions").is_err());
        assert_eq!(param(&format!("/api/v2/sessions/{}", "a".repeat(50))).map(|s| s.len()), Ok(50));
        assert_eq!(
            param(&format!("/api/v2/sessions/{}", "a".repeat(51))).unwrap_err().message(),
            "Path validation error: 'String is too long (51 chars), maximum 50' on property id."
        );
        assert!(param(&format!("/api/v2/users/{}/sessions", "a".repeat(51))).is_ok(), "user ids have no such bound");
    }

    #[test]
    fn take_and_from() {
        assert_eq!(paging(None), Ok(Paging { take: 50, from: None }));
        assert_eq!(paging(Some("take=100&include_totals=true")).map(|p| p.take), Ok(100));
        assert_eq!(paging(Some("take=1&take=500")).map(|p| p.take), Ok(1));
        for bad in ["take=0", "take=101", "take=-1", "take=+5", "take=", "take=1.0", "take=99999999999999999999999"] {
            assert_eq!(
                paging(Some(bad)).unwrap_err().message(),
                "Query validation error: 'take' must be an integer from 1 to 100.",
                "{bad}"
            );
        }
        let cursor = Cursor { created_at: 5, id: "ses_x".into() };
        assert_eq!(paging(Some(&format!("from={}", cursor.encode()))).map(|p| p.from), Ok(Some(cursor)));
        assert_eq!(
            paging(Some("from=%%%")).unwrap_err().message(),
            "Query validation error: 'from' is not a valid cursor."
        );
    }
}
