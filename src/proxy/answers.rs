//! The answers helloguard gives itself instead of forwarding: the enforce-mode challenges
//! (CONTRACT §4), refusals of requests with more than one reading (§1.1), a revoked token's
//! `invalid_grant`, a failed store (`[store] on_error`) or upstream, and the JWKS (§8).

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::metrics::Metrics;
use super::state::Shared;
use super::upstream::UpstreamError;
use crate::binding::{Evaluated, StoreFailure};
use crate::config::{FailurePolicy, RouteConfig, RouteKind};
use crate::engine::{Factor, Outcome, Verdict};
use crate::http::body::{full, json_response, Body};
use crate::http::token_request::Refusal;

/// The enforce-mode answers (CONTRACT §4); `None` means forward.
pub fn enforce(shared: &Shared, evaluated: &Evaluated, parts: &hyper::http::request::Parts) -> Option<Response<Body>> {
    // An Action's metadata write that fails validation refuses the request in every mode.
    if let Some(description) = &evaluated.refused {
        return Some(access_denied(description));
    }
    let policy = shared.binder.policy();
    let factors: Vec<Factor> = evaluated.factors.clone().unwrap_or_else(|| policy.factors.all().to_vec());
    match evaluated.outcome {
        Outcome::Forwarded => None,
        Outcome::Rejected if evaluated.verdict == Verdict::Deny => {
            Some(access_denied(evaluated.deny.as_deref().unwrap_or("Access denied")))
        }
        Outcome::Rejected => {
            let factors: Vec<_> = factors.iter().map(|f| json!({"type": f})).collect();
            let mut response = json_response(
                StatusCode::FORBIDDEN,
                &json!({"error": "mfa_required", "error_description": "Multifactor authentication required",
                        "mfa_requirements": {"challenge": factors}}),
            );
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Some(response)
        }
        Outcome::Redirected => {
            let base = shared.config.policy.challenge_url.as_deref()?;
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("reason", evaluated.reason);
            let (primary, additional) = factors.split_first()?;
            query.append_pair("challenge", primary.as_str());
            let additional: Vec<&str> = additional.iter().map(|f| f.as_str()).collect();
            if !additional.is_empty() {
                query.append_pair("additional_factors", &additional.join(","));
            }
            if let Some(id) = &evaluated.session_id {
                query.append_pair("session_id", id);
            }
            query.append_pair("return_to", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
            let separator = if base.contains('?') { '&' } else { '?' };
            let location = format!("{base}{separator}{}", query.finish());
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Some(response)
        }
    }
}

/// `403 {"error":"access_denied","error_description":…}` (CONTRACT §11).
fn access_denied(description: &str) -> Response<Body> {
    let mut response =
        json_response(StatusCode::FORBIDDEN, &json!({"error": "access_denied", "error_description": description}));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET`/`HEAD` of the JWKS (CONTRACT §8): public, cacheable for five minutes.
pub fn jwks(shared: &Shared, method: &hyper::Method) -> Response<Body> {
    if method != hyper::Method::GET && method != hyper::Method::HEAD {
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method_not_allowed", "message": "the JWKS answers GET and HEAD"}),
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut response = Response::new(full(shared.signer.jwks_json().to_owned()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// A refused token request's answer, OAuth-shaped (`invalid_request`).
pub fn token_refusal(shared: &Shared, refusal: Refusal) -> Response<Body> {
    let status = match refusal {
        Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    refused(shared, status, "invalid_request", &refusal.to_string())
}

/// A request answered here because it could not be read one way only; counted.
pub fn refused(shared: &Shared, status: StatusCode, error: &str, description: &str) -> Response<Body> {
    shared.metrics.requests_refused.fetch_add(1, Relaxed);
    let mut answer = json_response(status, &json!({"error": error, "error_description": description}));
    answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

/// A refresh exchange presenting an ended token (CONTRACT §1), answered without the upstream.
pub fn invalid_grant() -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
    )
}

/// What a request does when the session store failed (`[store] on_error`): on a login or token
/// route, fail-closed answers `503` (so no client holds a credential helloguard never bound);
/// fail-open (default), and every other route, goes on without a binding or a decision (`None`).
pub fn store_unavailable(
    shared: &Shared,
    failure: StoreFailure,
    route: Option<&RouteConfig>,
) -> Option<Response<Body>> {
    let guarded = route.is_some_and(|r| matches!(r.kind, RouteKind::Login | RouteKind::Token));
    if !failure.backend || !guarded || shared.config.store.on_error == FailurePolicy::Open {
        return None;
    }
    shared.metrics.store_refusals.fetch_add(1, Relaxed);
    let mut response = json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "store_unavailable", "message": "the session store is unavailable; try again later"}),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    Some(response)
}

pub fn bad_request(message: &str) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": "bad_request", "message": message}))
}

pub fn upstream_failure(metrics: &Metrics, error: &UpstreamError) -> Response<Body> {
    tracing::warn!(%error, "upstream failed");
    let (status, code) = match error {
        UpstreamError::Unavailable(_) => {
            metrics.upstream_errors.fetch_add(1, Relaxed);
            (StatusCode::BAD_GATEWAY, "bad_gateway")
        }
        UpstreamError::Timeout(_) => {
            metrics.upstream_timeouts.fetch_add(1, Relaxed);
            (StatusCode::GATEWAY_TIMEOUT, "gateway_timeout")
        }
    };
    json_response(status, &json!({"error": code, "message": error.to_string()}))
}
