//! The response phase: what the upstream's answer creates (CONTRACT §1, §3 response phase).
//!
//! - a login response that sets a new session cookie creates a session bound to the connection's
//!   fingerprints (`new_session`), or, when the request carried a live session, one that inherits
//!   it (`rotation`; the old record is retired silently and its refresh tokens follow the new
//!   session, so that ending the new session ends them);
//! - a token response (200, JSON, top-level `refresh_token`) records the token (`new_refresh_token`)
//!   or rotates the presented one (`rotation`);
//! - the upstream's user-id header is stored and its MFA confirmation header rebinds
//!   (`mfa_confirmed`); both are removed before the client sees the response.
//!
//! Secrets stay secret: cookies and tokens are hashed into ids here and never stored or logged.

use std::sync::Arc;

use hyper::header::{self, HeaderMap};
use hyper::{Response, StatusCode};

use super::service::{
    record_decision, remove_hop_by_hop, route_client_id, Connection, Exchange, Shared, MAX_TOKEN_BODY,
};
use super::store_failure::{store_failed, StoreFailed};
use crate::config::{RouteConfig, RouteKind};
use crate::engine::{bind_on_response, Outcome, Reason, Route};
use crate::http::body::{buffer_up_to, full, Body, Buffered};
use crate::http::token_request::TokenRequest;
use crate::logout::Initiator;
use crate::session::records::{
    refresh_token_id, session_id, ClientRef, Device, RefreshToken, ResourceServer, Session, Versioned,
};
use crate::session::{RecordKind, StoreError, Timestamp};

/// Everything the response phase needs from the request phase.
pub struct RequestContext<'r> {
    pub shared: &'r Arc<Shared>,
    pub connection: &'r Arc<Connection>,
    pub route: Option<&'r RouteConfig>,
    /// The request's `User-Agent`.
    pub user_agent: Option<header::HeaderValue>,
    pub session: Option<Versioned<Session>>,
    pub exchange: Option<Exchange>,
    pub token_request: Option<TokenRequest>,
    pub now: Timestamp,
}

impl RequestContext<'_> {
    fn device(&self) -> Device {
        let user_agent = self.user_agent.as_ref().and_then(|v| v.to_str().ok()).map(cut_user_agent);
        Device::new(Some(self.connection.client_ip().to_owned()), user_agent)
    }

    fn kind(&self) -> Option<RouteKind> {
        self.route.map(|r| r.kind)
    }
}

/// What the upstream told helloguard in a response's head (CONTRACT §1 user id, §3 MFA).
#[derive(Debug, Default)]
pub struct Consumed {
    /// A valid user id header's value.
    pub user_id: Option<String>,
    /// The MFA confirmation header was `1`.
    pub confirmed: bool,
}

/// The head every response gets before the client sees it: hop-by-hop headers and the two
/// headers helloguard consumes removed, the latter returned. A response to a request with neither
/// a route nor a live session needs nothing more: there is no record to write.
pub fn clean_head(shared: &Shared, headers: &mut HeaderMap) -> Consumed {
    remove_hop_by_hop(headers);
    let names = &shared.names;
    // Most responses carry neither header helloguard consumes: one pass instead of two lookups.
    if !headers.keys().any(|name| *name == names.user_id || *name == names.mfa_confirmed) {
        return Consumed::default();
    }
    Consumed {
        user_id: headers.remove(&names.user_id).and_then(|value| {
            crate::session::user_id::from_header(value.as_bytes(), shared.config.session.user_id_encoding)
        }),
        confirmed: take_header(headers, &names.mfa_confirmed).is_some_and(|v| v.trim() == "1"),
    }
}

/// Apply the response phase and return the response the client gets.
pub async fn on_response(context: RequestContext<'_>, response: Response<Body>) -> Response<Body> {
    let shared = context.shared;
    let (mut parts, mut body) = response.into_parts();
    let Consumed { user_id, confirmed } = clean_head(shared, &mut parts.headers);

    let mut bound_session = context.session.as_ref().map(|s| s.record.id.clone());
    if context.kind() == Some(RouteKind::Login) {
        if let Some(cookie) = new_session_cookie(&parts.headers, &shared.config.session.cookie_name) {
            match create_session(&context, &cookie, user_id.clone()).await {
                Ok(Some(id)) => bound_session = Some(id),
                Ok(None) => {}
                Err(failed) => return unrecorded(failed, &context, parts, body),
            }
        }
    }
    if let (Some(user_id), Some(session)) = (&user_id, &context.session) {
        set_session_user(&context, session, user_id).await;
    }

    let mut issued = None;
    if context.kind() == Some(RouteKind::Token) && parts.status == StatusCode::OK {
        match buffer_up_to(body, MAX_TOKEN_BODY).await {
            Ok(Buffered::Complete(bytes)) => {
                match record_refresh_token(&context, &bytes, user_id.clone()).await {
                    Ok(id) => issued = id,
                    Err(failed) => return unrecorded(failed, &context, parts, full(bytes)),
                }
                body = full(bytes);
            }
            Ok(Buffered::TooLarge(rest)) => {
                shared.metrics.token_bodies_unexamined.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                body = rest;
            }
            Err(error) => {
                tracing::warn!(%error, "token response body unreadable");
                return crate::http::body::json_response(
                    StatusCode::BAD_GATEWAY,
                    &serde_json::json!({"error": "bad_gateway", "message": "upstream body failed"}),
                );
            }
        }
    }

    let logged_out =
        context.kind() == Some(RouteKind::Logout) && (parts.status.is_success() || parts.status.is_redirection());
    if logged_out {
        if let Some(session) = &context.session {
            end_logged_out(&context, &session.record.id).await;
        }
    } else if let Some(session) = context.session.as_ref().filter(|s| Some(&s.record.id) == bound_session.as_ref()) {
        note_activity(&context, session).await;
    }

    if confirmed {
        let presented = context.exchange.as_ref().filter(|e| e.record.is_some()).map(|e| e.token_id.clone());
        confirm_mfa(&context, bound_session.as_deref(), presented.into_iter().chain(issued)).await;
    }
    Response::from_parts(parts, body)
}

/// A logout the upstream accepted ends the session as it is now: a concurrent write (this or
/// another request's activity note, a rebind) is no reason to leave it live. A session that still
/// cannot be ended is logged at warn level and counted.
async fn end_logged_out(context: &RequestContext<'_>, id: &str) {
    let shared = context.shared;
    if let Err(error) = shared.sessions.end_current(id, Initiator::RpLogout, context.now).await {
        shared.metrics.logout_end_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if matches!(error, StoreError::Backend(_)) {
            shared.metrics.store_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::warn!(%error, session_id = id, "logout accepted by the upstream, but the session could not be ended");
    }
}

/// The first `Set-Cookie` for `name` that sets a non-empty value without expiring it; the value as
/// the session cookie is read back from requests (unquoted).
pub fn new_session_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        let mut attributes = line.split(';');
        let (key, value) = attributes.next()?.trim().split_once('=')?;
        if key.trim() != name || value.trim().is_empty() {
            return None;
        }
        let expires_it = attributes.any(|attribute| {
            let (key, value) = attribute.trim().split_once('=').unwrap_or((attribute.trim(), ""));
            match key.to_ascii_lowercase().as_str() {
                "max-age" => value.trim().parse::<i64>().is_ok_and(|age| age <= 0),
                "expires" => httpdate::parse_http_date(value.trim()).is_ok_and(|t| t <= std::time::SystemTime::now()),
                _ => false,
            }
        });
        let value = crate::http::cookies::unquoted(value.trim().as_bytes());
        (!expires_it && !value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned())
    })
}

/// CONTRACT §6.4: a proxied request on a live session moves `last_interacted_at` (and the idle
/// expiry) at most once a minute, and `device.last_ip` / `last_user_agent` when they change. A
/// concurrent writer wins; the next request notes the activity again.
async fn note_activity(context: &RequestContext<'_>, session: &Versioned<Session>) {
    const AT_MOST_EVERY: i64 = 60_000;
    let device = context.device();
    let record = &session.record;
    let due = context.now.millis() - record.last_interacted_at.millis() >= AT_MOST_EVERY;
    let moved = record.device.last_ip != device.last_ip || record.device.last_user_agent != device.last_user_agent;
    if !due && !moved {
        return;
    }
    let store = &context.shared.store;
    // The request phase may have written the record (a bind): start from the stored version.
    let current = match store.get_session(&record.id).await {
        Ok(Some(current)) => current,
        Ok(None) => return,
        Err(error) => {
            store_failed(context.shared, "session lookup for activity", &error);
            return;
        }
    };
    let mut next = current.record.clone();
    if due {
        next.touch(context.now, context.shared.session_lifetimes);
    }
    next.device.last_ip = device.last_ip;
    next.device.last_user_agent = device.last_user_agent;
    if let Err(error) = store.put_session(&next, current.version).await {
        store_failed(context.shared, "note session activity", &error);
    }
}

/// A response whose new session or token could not be recorded: refused when fail-closed (the
/// client must not hold a credential helloguard never bound), else passed on.
fn unrecorded(
    failed: StoreFailed,
    context: &RequestContext<'_>,
    parts: hyper::http::response::Parts,
    body: Body,
) -> Response<Body> {
    match failed.answer(context.shared, context.route) {
        Some(refused) => refused,
        None => Response::from_parts(parts, body),
    }
}

/// Record the session a login response's new cookie creates. Returns its id (`None`: nothing new).
async fn create_session(
    context: &RequestContext<'_>,
    cookie: &str,
    user_id: Option<String>,
) -> Result<Option<String>, StoreFailed> {
    let shared = context.shared;
    let id = session_id(cookie);
    if context.session.as_ref().is_some_and(|s| s.record.id == id) {
        return Ok(None); // the cookie the request carried, set again: its session is live
    }
    match shared.store.get_session(&id).await {
        Ok(Some(_)) => return Ok(None), // already a live session: nothing new
        Ok(None) => {}
        Err(error) => return Err(store_failed(shared, "session lookup for a new cookie", &error)),
    }
    let mut session = Session::new(id.clone(), context.now, shared.session_lifetimes, context.device());
    // The request phase may have written the old record (a first binding, an upgrade): the new
    // session inherits it as it is now.
    let previous = match context.session.as_ref().filter(|s| s.record.id != id) {
        Some(old) => match shared.store.get_session(&old.record.id).await {
            Ok(current) => Some(current.unwrap_or_else(|| old.clone())),
            Err(error) => return Err(store_failed(shared, "session lookup for a rotated cookie", &error)),
        },
        None => None,
    };
    let reason = match &previous {
        Some(old) => {
            session.session_metadata = old.record.session_metadata.clone();
            session.user_id = old.record.user_id.clone();
            session.clients = old.record.clients.clone();
            Reason::Rotation
        }
        None => Reason::NewSession,
    };
    if user_id.is_some() {
        session.user_id = user_id;
    }
    if let Some(client_id) = route_client_id(context.route) {
        if !session.clients.iter().any(|c| c.client_id == client_id) {
            session.clients.push(ClientRef { client_id });
        }
    }
    let observed = context.connection.observed();
    let decision = bind_on_response(reason, Route::Login, Some(&id), None, observed, &shared.policy);
    let (stored_before, error) = apply_writes(&mut session.session_metadata, &decision.writes, RecordKind::Session);
    let error = match shared.store.create_session(&session).await {
        Ok(()) => error,
        Err(e) => return Err(store_failed(shared, "create session", &e)),
    };
    if let Some(old) = previous {
        // Cookie rotation: the old session's refresh tokens follow the new one (so that ending it
        // ends them), then the old record is retired silently (no logout token).
        if let Err(error) = relink_refresh_tokens(shared, &old.record.id, &id, context.now).await {
            store_failed(shared, "relink refresh tokens to the rotated-in session", &error);
        }
        if let Err(error) = retire(shared, &old.record.id, context.now).await {
            store_failed(shared, "retire rotated-out session", &error);
        }
    }
    let decision = if error.is_some() { decision.after_write_failure() } else { decision };
    record_decision(
        shared,
        context.connection,
        &decision,
        Some(&stored_before),
        session.user_id.as_deref(),
        Outcome::Forwarded,
        error.as_deref(),
    );
    Ok(Some(id))
}

/// Ends a rotated-out session silently (no logout token), as it is now: a concurrent activity
/// note is no reason to leave it live.
async fn retire(shared: &Shared, id: &str, now: Timestamp) -> Result<(), StoreError> {
    const ATTEMPTS: usize = 4;
    let mut result = Ok(());
    for _ in 0..ATTEMPTS {
        let Some(current) = shared.store.get_session(id).await? else { return Ok(()) };
        result = shared.store.end_session(id, current.version, now, Vec::new()).await;
        if !matches!(result, Err(StoreError::Stale { .. })) {
            break;
        }
    }
    match result {
        Err(StoreError::NotFound(_)) => Ok(()),
        other => other,
    }
}

/// Tokens moved per store query when a session's refresh tokens follow a cookie rotation.
const RELINK_BATCH: usize = 100;

/// Points every live refresh token of session `from` at session `to`, batch by batch until a batch
/// moves nothing: a token changed meanwhile (a lost compare-and-swap) is asked for again, and one
/// that keeps changing cannot hold the walk.
async fn relink_refresh_tokens(shared: &Shared, from: &str, to: &str, now: Timestamp) -> Result<(), StoreError> {
    loop {
        let ids = shared.store.session_refresh_token_ids(from, now, RELINK_BATCH).await?;
        let mut moved = 0;
        for id in &ids {
            let Some(token) = shared.store.get_refresh_token(id).await? else { continue };
            if token.record.session_id.as_deref() != Some(from) {
                continue;
            }
            let mut record = token.record;
            record.session_id = Some(to.to_owned());
            match shared.store.put_refresh_token(&record, token.version).await {
                Ok(_) => moved += 1,
                Err(StoreError::Stale { .. } | StoreError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        if moved == 0 {
            return Ok(());
        }
    }
}

/// Merge the engine's writes into a record's map before it is stored; returns the map as it was
/// and the wrapped error when the candidate map was invalid (then nothing is written).
fn apply_writes(
    metadata: &mut crate::session::Metadata,
    writes: &crate::engine::Writes<'_>,
    kind: RecordKind,
) -> (crate::session::Metadata, Option<String>) {
    let before = metadata.clone();
    if writes.is_empty() {
        return (before, None);
    }
    match metadata.merge(writes.iter()) {
        Ok(()) => (before, None),
        Err(error) => {
            *metadata = before.clone();
            (before, Some(kind.wrap(&error)))
        }
    }
}

async fn set_session_user(context: &RequestContext<'_>, session: &Versioned<Session>, user_id: &str) {
    if session.record.user_id.as_deref() == Some(user_id) {
        return;
    }
    let mut next = session.record.clone();
    next.user_id = Some(user_id.to_owned());
    next.updated_at = context.now;
    // A concurrent writer wins; the next response carries the user id again.
    if let Err(error) = context.shared.store.put_session(&next, session.version).await {
        tracing::debug!(%error, "user id not stored on the session");
    }
}

/// Record the refresh token in a 200 token response. Returns the recorded token's id (`None`: no
/// token, or the presented one again).
async fn record_refresh_token(
    context: &RequestContext<'_>,
    body: &[u8],
    user_id: Option<String>,
) -> Result<Option<String>, StoreFailed> {
    let shared = context.shared;
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else { return Ok(None) };
    let Some(token) = answer.get("refresh_token").and_then(|t| t.as_str()) else { return Ok(None) };
    let new_id = refresh_token_id(token);
    let observed = context.connection.observed();
    let presented = context.exchange.as_ref().and_then(|e| e.record.as_ref());
    if let Some(old) = presented {
        if old.record.id == new_id {
            // The same token again (a non-rotating upstream): only the exchange is noted.
            let mut exchanged = old.record.clone();
            exchanged.exchanged(context.now, shared.token_lifetimes);
            exchanged.device.last_ip = context.device().last_ip;
            exchanged.device.last_user_agent = context.device().last_user_agent;
            if let Err(error) = shared.store.put_refresh_token(&exchanged, old.version).await {
                store_failed(shared, "note refresh token exchange", &error);
            }
            return Ok(None);
        }
        let mut successor = old.record.successor(new_id.clone(), context.now, shared.token_lifetimes, context.device());
        successor.last_exchanged_at = Some(context.now);
        if user_id.is_some() {
            successor.user_id = user_id;
        }
        return match shared.store.rotate_refresh_token(&old.record.id, old.version, context.now, &successor).await {
            Ok(()) => {
                let decision = bind_on_response(
                    Reason::Rotation,
                    Route::Refresh,
                    successor.session_id.as_deref(),
                    Some(&new_id),
                    observed,
                    &shared.policy,
                );
                let stored = &old.record.refresh_token_metadata;
                record_decision(
                    shared,
                    context.connection,
                    &decision,
                    Some(stored),
                    successor.user_id.as_deref(),
                    Outcome::Forwarded,
                    None,
                );
                Ok(Some(new_id))
            }
            Err(error) => Err(store_failed(shared, "rotate refresh token", &error)),
        };
    }
    let mut record = RefreshToken::new(new_id.clone(), context.now, shared.token_lifetimes, context.device());
    record.session_id = context.session.as_ref().map(|s| s.record.id.clone());
    record.user_id = user_id.or_else(|| context.session.as_ref().and_then(|s| s.record.user_id.clone()));
    let request = context.token_request.as_ref();
    record.client_id = request.and_then(|r| r.client_id.clone()).or_else(|| route_client_id(context.route));
    if let (Some(audience), Some(scopes)) =
        (request.and_then(|r| r.audience.clone()), answer.get("scope").and_then(|s| s.as_str()))
    {
        record.resource_servers = vec![ResourceServer { audience, scopes: scopes.to_owned() }];
    }
    let decision = bind_on_response(
        Reason::NewRefreshToken,
        Route::Refresh,
        record.session_id.as_deref(),
        Some(&new_id),
        observed,
        &shared.policy,
    );
    let (before, error) = apply_writes(&mut record.refresh_token_metadata, &decision.writes, RecordKind::RefreshToken);
    if let Err(e) = shared.store.create_refresh_token(&record).await {
        return Err(store_failed(shared, "create refresh token", &e));
    }
    let decision = if error.is_some() { decision.after_write_failure() } else { decision };
    record_decision(
        shared,
        context.connection,
        &decision,
        Some(&before),
        record.user_id.as_deref(),
        Outcome::Forwarded,
        error.as_deref(),
    );
    Ok(Some(new_id))
}

/// After a successful MFA the upstream says so: the session and tokens of this request take the
/// connection's fingerprints. Ignored when the fingerprint is unknown.
async fn confirm_mfa(context: &RequestContext<'_>, session: Option<&str>, tokens: impl Iterator<Item = String>) {
    let shared = context.shared;
    let Some(observed) = context.connection.observed() else { return };
    let decision = bind_on_response(Reason::MfaConfirmed, Route::Login, session, None, Some(observed), &shared.policy);
    let change = decision.writes.to_change();
    if let Some(id) = session {
        let result = shared.store.update_session_metadata(id, &change, context.now).await;
        confirm_result(context, &decision, result.err().map(|e| RecordKind::Session.wrap(&e)));
    }
    for token in tokens {
        let decision = bind_on_response(
            Reason::MfaConfirmed,
            Route::Refresh,
            session,
            Some(&token),
            Some(observed),
            &shared.policy,
        );
        let result = shared.store.update_refresh_token_metadata(&token, &change).await;
        confirm_result(context, &decision, result.err().map(|e| RecordKind::RefreshToken.wrap(&e)));
    }
}

fn confirm_result(context: &RequestContext<'_>, decision: &crate::engine::Decision<'_>, error: Option<String>) {
    let decision = if error.is_some() { decision.after_write_failure() } else { *decision };
    record_decision(context.shared, context.connection, &decision, None, None, Outcome::Forwarded, error.as_deref());
}

/// Remove header `name` and return its (first) value.
fn take_header(headers: &mut HeaderMap, name: &header::HeaderName) -> Option<String> {
    headers.remove(name).and_then(|v| v.to_str().ok().map(str::to_owned))
}

/// User agents are kept to 512 bytes, cut at a character boundary.
fn cut_user_agent(agent: &str) -> String {
    let mut end = agent.len().min(512);
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    agent[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_detection() {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, "other=1".parse().unwrap());
        headers.append(header::SET_COOKIE, "session=; Path=/".parse().unwrap());
        headers.append(header::SET_COOKIE, "session=gone; Max-Age=0".parse().unwrap());
        headers.append(header::SET_COOKIE, "session=old; Expires=Thu, 01 Jan 1970 00:00:00 GMT".parse().unwrap());
        assert_eq!(new_session_cookie(&headers, "session"), None);
        headers.append(header::SET_COOKIE, "session=abc; Path=/; HttpOnly".parse().unwrap());
        assert_eq!(new_session_cookie(&headers, "session").as_deref(), Some("abc"));
        let mut quoted = HeaderMap::new();
        quoted.append(header::SET_COOKIE, "session=\"q1\"; Path=/".parse().unwrap());
        assert_eq!(new_session_cookie(&quoted, "session").as_deref(), Some("q1"), "read back unquoted");
    }

    #[test]
    fn user_agents_are_cut_at_a_char_boundary() {
        let agent = "é".repeat(300);
        let cut = cut_user_agent(&agent);
        assert!(cut.len() <= 512 && cut.len() >= 510);
    }
}
