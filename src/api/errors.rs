//! The Management API's errors (CONTRACT §6.5): one enum, each variant's status, `errorCode` and
//! exact message, and the Auth0-shaped body `{"statusCode","error","message","errorCode"}`.

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::session::RecordKind;

/// Why a bearer token was refused (all `401 invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No configured key of the token's algorithm verified its signature.
    BadSignature,
    /// `exp` (plus leeway) is in the past.
    Expired,
    /// Anything else: malformed, `alg`, `kid`, `aud`, `iss`, `nbf`, missing `exp`.
    Invalid,
}

/// Every error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No route matches (method and path).
    RouteNotFound,
    MissingAuthentication,
    InvalidToken(TokenProblem),
    /// Rate limited; the client may retry after this many seconds.
    TooManyRequests,
    /// The scope(s) the endpoint requires, canonical names.
    InsufficientScope(&'static [&'static str]),
    /// A path or query parameter failed validation; the message is the whole contract message.
    InvalidUri(String),
    /// The body failed validation; the message is the whole contract message.
    InvalidBody(String),
    PayloadTooLarge,
    /// The record named in the path does not exist (or is no longer live).
    Inexistent(RecordKind),
    /// The store failed; details are logged, never sent.
    Internal,
}

/// `Payload validation error: '<detail>'.`
pub fn payload_error(detail: &str) -> ApiError {
    ApiError::InvalidBody(format!("Payload validation error: '{detail}'."))
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::RouteNotFound | Self::Inexistent(_) => StatusCode::NOT_FOUND,
            Self::MissingAuthentication | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::InvalidUri(_) | Self::InvalidBody(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn error_code(&self) -> &'static str {
        match self {
            Self::RouteNotFound => "not_found",
            Self::MissingAuthentication => "missing_authentication",
            Self::InvalidToken(_) => "invalid_token",
            Self::TooManyRequests => "too_many_requests",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::InvalidUri(_) => "invalid_uri",
            Self::InvalidBody(_) => "invalid_body",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Inexistent(RecordKind::Session) => "inexistent_session",
            Self::Inexistent(RecordKind::RefreshToken) => "inexistent_refresh_token",
            Self::Internal => "internal_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::RouteNotFound => "Not Found".to_owned(),
            Self::MissingAuthentication => "Missing authentication".to_owned(),
            Self::InvalidToken(TokenProblem::BadSignature) => {
                "Invalid signature received for JSON Web Token validation".to_owned()
            }
            Self::InvalidToken(TokenProblem::Expired) => {
                "Expired token received for JSON Web Token validation".to_owned()
            }
            Self::InvalidToken(TokenProblem::Invalid) => "Invalid token".to_owned(),
            Self::TooManyRequests => "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and \
                                      X-RateLimit-Reset headers."
                .to_owned(),
            Self::InsufficientScope([single]) => format!("Insufficient scope, expected any of: {single}"),
            Self::InsufficientScope(all) => format!("Insufficient scope, expected all of: {}", all.join(",")),
            Self::InvalidUri(message) | Self::InvalidBody(message) => message.clone(),
            Self::PayloadTooLarge => {
                format!("Payload content length greater than maximum allowed: {}", super::body::MAX_BODY)
            }
            Self::Inexistent(RecordKind::Session) => "The session does not exist.".to_owned(),
            Self::Inexistent(RecordKind::RefreshToken) => "The refresh token does not exist.".to_owned(),
            Self::Internal => "An internal server error occurred".to_owned(),
        }
    }

    /// The JSON body; a 401 also carries `attributes.error`.
    pub fn body(&self) -> Value {
        let status = self.status();
        let message = self.message();
        let mut body = json!({
            "statusCode": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
            "message": message,
            "errorCode": self.error_code(),
        });
        if status == StatusCode::UNAUTHORIZED {
            body["attributes"] = json!({ "error": message });
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_contract_shape() {
        let body = ApiError::InvalidToken(TokenProblem::Expired).body();
        assert_eq!(
            body,
            json!({"statusCode": 401, "error": "Unauthorized",
                   "message": "Expired token received for JSON Web Token validation",
                   "errorCode": "invalid_token",
                   "attributes": {"error": "Expired token received for JSON Web Token validation"}})
        );
        let body = ApiError::InsufficientScope(&["delete:sessions", "delete:refresh_tokens"]).body();
        assert_eq!(body["message"], "Insufficient scope, expected all of: delete:sessions,delete:refresh_tokens");
        assert_eq!(body["error"], "Forbidden");
        assert!(body.get("attributes").is_none());
        let body = ApiError::PayloadTooLarge.body();
        assert_eq!(body["message"], "Payload content length greater than maximum allowed: 65536");
        assert_eq!(body["error"], "Payload Too Large");
        assert_eq!(
            ApiError::TooManyRequests.message(),
            "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers."
        );
    }
}
