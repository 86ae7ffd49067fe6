//! What a request does when the session store fails (`[store] on_error`), e.g. a Redis that died.
//!
//! Every failure is logged (tracing, with the operation; never a key or a value) and counted
//! (`helloguard_store_errors_total`). Then, on a login or token route:
//! - fail-open (default): a request whose records cannot be read is forwarded without a binding or
//!   a decision, like one with an unknown fingerprint; a new session or refresh token that cannot
//!   be recorded still reaches the client, unbound;
//! - fail-closed: both are answered `503` with a short JSON body
//!   (`helloguard_store_refusals_total`), so no client holds a credential helloguard never bound.
//!
//! Other routes always go on. A metadata write that fails after a decision follows CONTRACT §3 in
//! both modes: the request goes on (`metadata_write_failed`).

use std::sync::atomic::Ordering::Relaxed;

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::service::Shared;
use crate::config::{FailurePolicy, RouteConfig, RouteKind};
use crate::http::body::{json_response, Body};
use crate::session::StoreError;

/// A store operation failed; it has been logged (and counted when the backend failed).
pub struct StoreFailed {
    /// The backend failed, rather than a write losing a race.
    backend: bool,
}

/// Log and count one failed store operation. A lost race (stale version, record ended meanwhile)
/// is no failure of the store: it is logged at debug level and not counted.
pub fn store_failed(shared: &Shared, operation: &'static str, error: &StoreError) -> StoreFailed {
    let backend = matches!(error, StoreError::Backend(_));
    if backend {
        shared.metrics.store_errors.fetch_add(1, Relaxed);
        tracing::warn!(operation, %error, "session store failed");
    } else {
        tracing::debug!(operation, %error, "store write lost a race");
    }
    StoreFailed { backend }
}

impl StoreFailed {
    /// `Some(503)` when the request must not go on: the backend failed, fail-closed, on a login or
    /// token route.
    pub fn answer(self, shared: &Shared, route: Option<&RouteConfig>) -> Option<Response<Body>> {
        let guarded = route.is_some_and(|r| matches!(r.kind, RouteKind::Login | RouteKind::Token));
        if !self.backend || !guarded || shared.config.store.on_error == FailurePolicy::Open {
            return None;
        }
        shared.metrics.store_refusals.fetch_add(1, Relaxed);
        let mut response = json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "store_unavailable", "message": "the session store is unavailable; try again later"}),
        );
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
        Some(response)
    }
}
