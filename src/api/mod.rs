//! The Management API (CONTRACT §6): `/api/v2/` sessions and refresh tokens over the [`Store`].
//!
//! One request goes through the checks in the contract's order, each a visible step of
//! [`Api::handle`]: route (`404`) → bearer token (`401`) → rate limit (`429`) → scopes (`403`) →
//! path and query (`400`) → body (`400`/`413`) → record (`404`).
//!
//! | file | owns |
//! |---|---|
//! | [`routes`] | endpoints, their scopes, path and query parameters |
//! | [`auth`], [`keys`], [`management_key`], [`scopes`] | bearer JWTs: verification keys, the local ES256 key, granted scopes |
//! | [`rate_limit`] | the token bucket per bearer token |
//! | [`body`] | PATCH bodies |
//! | [`sessions`], [`refresh_tokens`] | the endpoints' work on the store |
//! | [`errors`] | the error answers |
//!
//! The API never reaches around the [`Store`] trait, and ends sessions only through
//! [`SessionEnder`].

pub mod auth;
pub mod body;
pub mod errors;
pub mod keys;
pub mod management_key;
pub mod options;
pub mod rate_limit;
pub mod refresh_tokens;
pub mod routes;
pub mod scopes;
pub mod sessions;

use std::time::{Instant, SystemTime};

use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use self::errors::ApiError;
use self::management_key::{ManagementKey, ManagementKeyError};
use self::rate_limit::{Allowance, RateLimiter};
use self::routes::{Endpoint, Matched};
use crate::audit::{ApiWrite, AuditSink};
use crate::http::body::{full, Body};
use crate::logout::SessionEnder;
use crate::options::ConfigError;
use crate::session::{Page, RecordKind, Store, StoreError, Timestamp};

/// The OpenAPI 3.1 document, served at `GET /api/v2/openapi.json` without authentication.
pub const OPENAPI_JSON: &str = include_str!("../../api/openapi.json");

const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Key(#[from] ManagementKeyError),
}

/// What the endpoints work on; borrowed from the server that hosts the API.
#[derive(Clone, Copy)]
pub struct Backend<'a> {
    pub store: &'a dyn Store,
    pub sessions: &'a SessionEnder,
    pub audit: &'a dyn AuditSink,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `200` with a JSON body.
    Ok(Value),
    /// `202`, empty body.
    Accepted,
}

impl Reply {
    fn ok<T: Serialize>(value: &T) -> Self {
        Self::Ok(serde_json::to_value(value).unwrap_or(Value::Null))
    }

    fn into_response(self) -> Response<Body> {
        match self {
            Self::Ok(value) => json_response(StatusCode::OK, &value),
            Self::Accepted => {
                let mut response = Response::new(full(bytes::Bytes::new()));
                *response.status_mut() = StatusCode::ACCEPTED;
                response
            }
        }
    }
}

/// The API's state: who may call it and how often.
pub struct Api {
    verifier: auth::Verifier,
    limiter: RateLimiter,
    separate_listener: bool,
}

impl Api {
    /// Loads the verification keys (creating the local management key on first use).
    pub fn new(api: &options::ApiConfig, data_dir: &std::path::Path) -> Result<Self, StartError> {
        let local = ManagementKey::load_or_create(data_dir)?.verifying_key()?;
        let keyring = keys::Keyring::load(&api.keys, local)?;
        Ok(Self {
            verifier: auth::Verifier::new(keyring, api.audience.clone(), api.issuer.clone()),
            limiter: RateLimiter::new(
                api.rate_limit_burst,
                api.rate_limit_per_second.0,
                rate_limit::DEFAULT_MAX_BUCKETS,
            ),
            separate_listener: api.listen.is_some(),
        })
    }

    /// Whether this request is the API's on the proxy listener (else it is upstream traffic).
    /// `normal_path` is the request's path in normal form ([`crate::http::path`]), so `/API/V2/…`
    /// and `/api//v2/…` are the API's too and never reach the upstream with their bearer token.
    pub fn claims_on_proxy_listener(&self, normal_path: &str) -> bool {
        let stem = routes::PREFIX.trim_end_matches('/');
        let claimed = normal_path.get(..stem.len()).is_some_and(|head| head.eq_ignore_ascii_case(stem))
            && matches!(normal_path.as_bytes().get(stem.len()), None | Some(b'/'));
        !self.separate_listener && claimed
    }

    /// Answers one API request; never fails (errors become answers).
    ///
    /// The body (at most [`body::MAX_BODY`]) is read before any answer, an early error included,
    /// as nginx does: an HTTP/2 server that answers first and then resets the stream it no longer
    /// reads is within the protocol, but some clients (curl 7.88) then lose the answer.
    pub async fn handle(&self, backend: Backend<'_>, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let body = body::receive(body).await;
        let Some(matched) = routes::match_route(&parts.method, parts.uri.path()) else {
            return error_response(&ApiError::RouteNotFound);
        };
        if matched.endpoint == Endpoint::OpenApi {
            let mut response = Response::new(full(OPENAPI_JSON));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
            return response;
        }
        let principal = match self.verifier.authenticate(&parts.headers) {
            Ok(principal) => principal,
            Err(error) => return error_response(&error),
        };
        let allowance = self.limiter.check(principal.token_hash, Instant::now(), SystemTime::now());
        let outcome = match allowance.retry_after {
            Some(_) => Err(ApiError::TooManyRequests),
            None => serve(&backend, matched, &principal.scopes, &parts, body).await,
        };
        let mut response = match outcome {
            Ok(reply) => reply.into_response(),
            Err(error) => error_response(&error),
        };
        add_rate_limit_headers(&mut response, &allowance);
        if matched.endpoint.is_write() {
            let status = response.status().as_u16();
            let subject = principal.subject.as_deref();
            backend.audit.record(&ApiWrite::new(
                Timestamp::now(),
                parts.method.as_str(),
                parts.uri.path(),
                subject,
                status,
            ));
        }
        response
    }
}

/// The authenticated steps: scopes, path and query, body, record.
async fn serve(
    backend: &Backend<'_>,
    matched: Matched<'_>,
    granted: &scopes::Granted,
    parts: &hyper::http::request::Parts,
    body: body::Received,
) -> Result<Reply, ApiError> {
    let endpoint = matched.endpoint;
    if !endpoint.allows(granted) {
        return Err(ApiError::InsufficientScope(endpoint.required_scopes()));
    }
    let param = matched.param()?;
    let now = Timestamp::now();
    let content_type = || parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    match endpoint {
        Endpoint::OpenApi => Err(ApiError::RouteNotFound),
        Endpoint::GetSession => sessions::get(backend, &param, now).await,
        Endpoint::PatchSession => {
            let bytes = body.bytes().await?;
            patch(backend, RecordKind::Session, &param, content_type(), &bytes, now).await
        }
        Endpoint::DeleteSession => sessions::delete(backend, &param, now).await,
        Endpoint::RevokeSession => sessions::revoke(backend, &param, now).await,
        Endpoint::ListUserSessions => sessions::list(backend, &param, routes::paging(parts.uri.query())?, now).await,
        Endpoint::DeleteUserSessions => sessions::delete_user(backend, &param, now).await,
        Endpoint::GetRefreshToken => refresh_tokens::get(backend, &param, now).await,
        Endpoint::PatchRefreshToken => {
            let bytes = body.bytes().await?;
            patch(backend, RecordKind::RefreshToken, &param, content_type(), &bytes, now).await
        }
        Endpoint::DeleteRefreshToken => refresh_tokens::delete(backend, &param, now).await,
        Endpoint::ListUserRefreshTokens => {
            refresh_tokens::list(backend, &param, routes::paging(parts.uri.query())?, now).await
        }
        Endpoint::DeleteUserRefreshTokens => refresh_tokens::delete_user(backend, &param, now).await,
        Endpoint::ListRefreshTokens => {
            let query = parts.uri.query();
            let user_id = routes::query_value(query, "user_id").filter(|u| !u.is_empty()).ok_or_else(|| {
                ApiError::InvalidUri("Query validation error: 'Missing required property: user_id'.".to_owned())
            })?;
            let client_id = routes::query_value(query, "client_id");
            refresh_tokens::list_by_query(backend, &user_id, client_id.as_deref(), routes::paging(query)?, now).await
        }
        Endpoint::RevokeRefreshTokens => {
            let bytes = body.bytes().await?;
            refresh_tokens::revoke(backend, body::revoke_request(content_type(), &bytes)?, now).await
        }
    }
}

/// A PATCH after authentication and path validation: the body (`400`), then the record (`404`).
/// Public so the `management_body` fuzz target runs exactly this.
pub async fn patch(
    backend: &Backend<'_>,
    kind: RecordKind,
    id: &str,
    content_type: Option<&str>,
    bytes: &[u8],
    now: Timestamp,
) -> Result<Reply, ApiError> {
    match kind {
        RecordKind::Session => {
            let metadata = body::metadata_patch(content_type, bytes, "session_metadata")?;
            sessions::patch(backend, id, metadata, now).await
        }
        RecordKind::RefreshToken => {
            let metadata = body::metadata_patch(content_type, bytes, "refresh_token_metadata")?;
            refresh_tokens::patch(backend, id, metadata, now).await
        }
    }
}

/// A store failure: logged (store errors carry no secrets), answered `500`.
fn internal(error: StoreError) -> ApiError {
    tracing::error!(%error, "management API store operation failed");
    ApiError::Internal
}

/// `{"<key>": [...], "next": "<cursor>"}`, `next` omitted on the last page.
fn page_body<T: Serialize>(key: &str, page: Page<T>) -> Value {
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), serde_json::to_value(page.items).unwrap_or(Value::Null));
    if let Some(next) = page.next {
        body.insert("next".to_owned(), Value::String(next.encode()));
    }
    Value::Object(body)
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    response
}

/// The error's JSON answer; a 401 adds `WWW-Authenticate: Bearer`.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.status(), &error.body());
    if error.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn add_rate_limit_headers(response: &mut Response<Body>, allowance: &Allowance) {
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    put("x-ratelimit-limit", u64::from(allowance.limit));
    put("x-ratelimit-remaining", u64::from(allowance.remaining));
    put("x-ratelimit-reset", allowance.reset);
    if let Some(seconds) = allowance.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
}
