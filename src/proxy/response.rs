//! The response phase: reads what the upstream's answer says (a new session cookie, a refresh
//! token in a token answer, the user id and MFA confirmation headers) and hands it to the binding
//! layer, which records and binds it (CONTRACT §1, §3). The two headers helloguard consumes are
//! removed before the client sees the answer; the answer itself is never modified.

use std::sync::Arc;

use hyper::header::{self, HeaderMap};
use hyper::{Response, StatusCode};

use super::state::{Connection, Shared};
use crate::binding::{Exchange, Facts, Held, IssuedToken, NewSession, StoreFailure};
use crate::config::{RouteConfig, RouteKind};
use crate::http::body::{buffer_up_to, full, Body, Buffered};
use crate::http::hop_by_hop::remove_hop_by_hop;
use crate::http::token_request::TokenRequest;
use crate::session::{ResourceServer, Session, Timestamp, Versioned};

/// Token answers larger than this are passed through unexamined (CONTRACT §1).
pub const MAX_TOKEN_ANSWER: usize = 64 * 1024;

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
    /// Actions' writes for a session or token this answer may create.
    pub held: Held,
    pub now: Timestamp,
}

impl RequestContext<'_> {
    fn facts(&self) -> Facts<'_> {
        self.connection.facts(self.user_agent.as_ref().and_then(|v| v.to_str().ok()), self.now)
    }

    fn kind(&self) -> Option<RouteKind> {
        self.route.map(|r| r.kind)
    }

    /// The client id a record made on this route gets: the route's.
    fn route_client_id(&self) -> Option<String> {
        self.route.and_then(|r| r.client_id.clone())
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
    let encoding = shared.config.session.user_id_encoding;
    Consumed {
        user_id: headers
            .remove(&names.user_id)
            .and_then(|value| crate::session::user_id::from_header(value.as_bytes(), encoding)),
        confirmed: headers.remove(&names.mfa_confirmed).is_some_and(|v| v.as_bytes().trim_ascii() == b"1"),
    }
}

/// Apply the response phase and return the response the client gets.
pub async fn on_response(context: RequestContext<'_>, response: Response<Body>) -> Response<Body> {
    let shared = context.shared;
    let binder = &shared.binder;
    let facts = context.facts();
    let (mut parts, mut body) = response.into_parts();
    let Consumed { user_id, confirmed } = clean_head(shared, &mut parts.headers);

    let mut bound_session = context.session.as_ref().map(|s| s.record.id.clone());
    if context.kind() == Some(RouteKind::Login) {
        if let Some(cookie) = new_session_cookie(&parts.headers, &shared.config.session.cookie_name) {
            let new = NewSession {
                cookie: &cookie,
                user_id: user_id.clone(),
                previous: context.session.as_ref(),
                client_id: context.route_client_id(),
                held: &context.held.session,
            };
            match binder.on_new_session(&facts, new).await {
                Ok(Some(id)) => bound_session = Some(id),
                Ok(None) => {}
                Err(failure) => return unrecorded(failure, &context, parts, body),
            }
        }
    }
    if let (Some(user_id), Some(session)) = (&user_id, &context.session) {
        binder.on_user_reported(session, user_id, context.now).await;
    }

    let mut issued = None;
    if context.kind() == Some(RouteKind::Token) && parts.status == StatusCode::OK {
        match buffer_up_to(body, MAX_TOKEN_ANSWER).await {
            Ok(Buffered::Complete(bytes)) => {
                match record_refresh_token(&context, &facts, &bytes, user_id.clone()).await {
                    Ok(id) => issued = id,
                    Err(failure) => return unrecorded(failure, &context, parts, full(bytes)),
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
            binder.on_logout(&session.record.id, context.now).await;
        }
    } else if let Some(session) = context.session.as_ref().filter(|s| Some(&s.record.id) == bound_session.as_ref()) {
        binder.note_activity(&facts, session).await;
    }

    if confirmed {
        let presented = context.exchange.as_ref().filter(|e| e.record.is_some()).map(|e| e.token_id.clone());
        binder.on_mfa_confirmed(&facts, bound_session.as_deref(), presented.into_iter().chain(issued)).await;
    }
    Response::from_parts(parts, body)
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

/// A token answer (200, JSON, top-level `refresh_token`): the token recorded, or the presented
/// one rotated. Returns the recorded token's id (`None`: no token, or the presented one again).
async fn record_refresh_token(
    context: &RequestContext<'_>,
    facts: &Facts<'_>,
    body: &[u8],
    user_id: Option<String>,
) -> Result<Option<String>, StoreFailure> {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else { return Ok(None) };
    let Some(token) = answer.get("refresh_token").and_then(|t| t.as_str()) else { return Ok(None) };
    let request = context.token_request.as_ref();
    let audience = request.and_then(|r| r.audience.clone());
    let scopes = answer.get("scope").and_then(|s| s.as_str());
    let issued = IssuedToken {
        token,
        user_id,
        session: context.session.as_ref(),
        presented: context.exchange.as_ref().and_then(|e| e.record.as_ref()),
        client_id: request.and_then(|r| r.client_id.clone()).or_else(|| context.route_client_id()),
        held: &context.held.refresh_token,
        resource: audience.zip(scopes).map(|(audience, scopes)| ResourceServer { audience, scopes: scopes.to_owned() }),
    };
    context.shared.binder.on_token_issued(facts, issued).await
}

/// A response whose new session or token could not be recorded: refused when fail-closed (the
/// client must not hold a credential helloguard never bound), else passed on.
fn unrecorded(
    failure: StoreFailure,
    context: &RequestContext<'_>,
    parts: hyper::http::response::Parts,
    body: Body,
) -> Response<Body> {
    match super::answers::store_unavailable(context.shared, failure, context.route) {
        Some(refused) => refused,
        None => Response::from_parts(parts, body),
    }
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
}
