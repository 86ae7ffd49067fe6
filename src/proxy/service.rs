//! The life of one request, as a visible sequence of phases:
//!
//! 0. **reserved**: the JWKS path is answered here, before anything else, and never forwarded; so
//!    is `/api/v2/`, the Management API's (see [`crate::api`]), unless it has its own listener;
//! 1. **hygiene**: remove every fingerprint/decision header the client sent;
//! 2. **classify**: login, token (refresh exchange or not), logout, other; find the live session
//!    from the cookie and the presented refresh token from the body (bounded);
//! 3. **decide**: the engine, for logins and refresh exchanges; bind writes go to the store;
//! 4. **enforce**: a challenged login is redirected, a challenged refresh answered, per mode;
//! 5. **forward**: fingerprint and decision headers on, hop-by-hop headers off;
//! 6. **respond**: record a new session cookie or refresh token, bound to the connection's
//!    fingerprints (see [`super::records`]), and strip the headers helloguard consumes.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::capture::ConnectionFingerprint;
use super::deadlines::Deadlines;
use super::headers::HeaderNames;
use super::metrics::Metrics;
use super::records::{self, RequestContext};
use super::routes::Routes;
use super::store_failure::{store_failed, StoreFailed};
use super::upgrade::Requested;
use super::upstream::{Upstream, UpstreamError};
use crate::config::{Config, RouteConfig, RouteKind};
use crate::engine::audit::{AuditSink, DecisionEvent};
use crate::engine::{decide, Decision, Event, Mode, Observed, Outcome, Policy, Route, Verdict};
use crate::http::body::{discard_up_to, full, json_response, read_whole, Body, ReadError};
use crate::http::cookies;
use crate::http::header_names::remove_where;
use crate::http::path::normalise;
use crate::http::token_request::{self, Refusal, TokenRequest};
use crate::logout::Initiator;
use crate::session::records::{refresh_token_id, session_id, Lifetimes, RefreshToken, Session, Versioned};
use crate::session::{RecordKind, Store, Timestamp};

/// Token responses larger than this are passed through unexamined (CONTRACT §1).
pub const MAX_TOKEN_BODY: usize = 64 * 1024;

/// What every request of the proxy shares.
pub struct Shared {
    pub config: Config,
    pub policy: Policy,
    pub names: HeaderNames,
    pub routes: Routes,
    pub store: Arc<dyn Store>,
    pub upstream: Upstream,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<dyn AuditSink>,
    pub sessions: crate::logout::SessionEnder,
    /// The logout signing key; its JWKS is served at `[logout] jwks_path`.
    pub signer: Arc<crate::logout::signer::LogoutSigner>,
    pub api: crate::api::Api,
    pub session_lifetimes: Lifetimes,
    pub token_lifetimes: Lifetimes,
}

impl Shared {
    /// What the Management API works on.
    pub fn api_backend(&self) -> crate::api::Backend<'_> {
        crate::api::Backend { store: self.store.as_ref(), sessions: &self.sessions, audit: self.audit.as_ref() }
    }
}

/// What is known about the connection a request came on, and what every request on it forwards,
/// built once per connection.
pub struct Connection {
    /// The client's address: the TCP peer, or the source a trusted PROXY protocol header named.
    pub peer: SocketAddr,
    pub fingerprint: Option<ConnectionFingerprint>,
    /// The worker (event loop) serving the connection.
    pub worker: usize,
    /// That worker's deadlines (the upstream timeout).
    pub deadlines: Deadlines,
    /// `peer`'s IP address as text.
    client_ip: HeaderValue,
    /// The values of the fingerprint headers sent upstream: `ja3`, `ja4`, `ja4_stable`.
    fingerprint_values: Option<[HeaderValue; 3]>,
}

impl Connection {
    pub fn new(
        peer: SocketAddr,
        fingerprint: Option<ConnectionFingerprint>,
        worker: usize,
        deadlines: Deadlines,
    ) -> Self {
        let client_ip = HeaderValue::try_from(peer.ip().to_string()).expect("an IP address is a header value");
        let fingerprint_values = fingerprint.as_ref().and_then(|f| header_values(&f.binding));
        Self { peer, fingerprint, worker, deadlines, client_ip, fingerprint_values }
    }

    /// The client's IP address as text.
    pub fn client_ip(&self) -> &str {
        self.client_ip.to_str().unwrap_or_default()
    }

    pub fn observed(&self) -> Option<Observed<'_>> {
        self.fingerprint.as_ref().map(|f| Observed {
            ja3: f.binding.ja3.as_str(),
            ja3n: f.ja3n.as_ref().map_or("", |v| v.as_str()),
            ja4: f.binding.ja4.as_str(),
            ja4_stable: f.binding.ja4_stable.as_str(),
            ja4_stable_v1: f.binding.ja4_stable_v1.as_str(),
        })
    }
}

/// `ja3`, `ja4` and `ja4_stable` as header values: slices of one shared buffer, so a connection
/// allocates once for them and every request's headers only take references.
fn header_values(binding: &crate::fingerprint::Binding) -> Option<[HeaderValue; 3]> {
    let parts = [binding.ja3.as_bytes(), binding.ja4.as_bytes(), binding.ja4_stable.as_bytes()];
    let text = Bytes::from(parts.concat());
    let mut at = 0;
    let [ja3, ja4, ja4_stable] = parts.map(|part| {
        at += part.len();
        HeaderValue::from_maybe_shared(text.slice(at - part.len()..at))
    });
    Some([ja3.ok()?, ja4.ok()?, ja4_stable.ok()?])
}

/// A refresh exchange found in a token request's body.
pub struct Exchange {
    pub token_id: String,
    pub record: Option<Versioned<RefreshToken>>,
}

/// Handle one request; never fails (errors become answers).
pub async fn handle(
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    shared.metrics.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Routes and reserved paths are matched on the path's normal form (CONTRACT §1.1); the request
    // goes on with its own path.
    let (route, reserved) = {
        let normal = normalise(request.uri().path());
        // 0. reserved paths, answered here and never forwarded
        if shared.routes.is_jwks(&normal) {
            return jwks(&shared, request.method());
        }
        (shared.routes.classify(request.method(), &normal).cloned(), shared.api.claims_on_proxy_listener(&normal))
    };
    // 0. the Management API, when it shares this listener: reserved, never forwarded. (Here and
    // on the route-only branches below, the awaited future is boxed: hyper moves the request's
    // future whole, and these would otherwise make it several times the 4.5 KB every request needs.)
    if reserved {
        return Box::pin(shared.api.handle(shared.api_backend(), request.map(crate::http::body::boxed))).await;
    }
    let (mut parts, body) = request.into_parts();

    // 1. hygiene: helloguard's own header names, and the session cookie's one reading
    shared.names.strip_client_headers(&mut parts.headers);
    let cookie = match cookies::read(&parts.headers, &shared.config.session.cookie_name) {
        Ok(cookie) => cookie,
        Err(ambiguous) => return refused(&shared, StatusCode::BAD_REQUEST, "invalid_request", &ambiguous.to_string()),
    };
    if let Some(rewrite) = cookie.rewrite {
        cookies::apply(&mut parts.headers, rewrite);
    }

    // 2. classify: the route (above), the live session, a token request's one reading
    let now = Timestamp::now();
    // Fail-open on a store failure: no session, and no decision (see `store_failure`).
    let mut store_down = false;
    // The session and the exchange below are boxed: rarely there, they would otherwise take room in
    // the future of every request.
    let session = match find_session(&shared, &connection, cookie.value.as_deref(), &mut parts.headers, now).await {
        Ok(session) => session.map(Box::new),
        Err(failed) => match failed.answer(&shared, route.as_ref()) {
            Some(refused) => return refused,
            None => {
                store_down = true;
                None
            }
        },
    };
    let mut body = crate::http::body::boxed(body);
    let mut token_request = None;
    if route.as_ref().is_some_and(|r| r.kind == RouteKind::Token) {
        // helloguard must read the answer, so no compressed encodings (CONTRACT §1).
        parts.headers.remove(header::ACCEPT_ENCODING);
        match Box::pin(read_token_request(&shared, &parts, body)).await {
            Ok((request, bytes)) => {
                token_request = Some(request);
                body = full(bytes);
            }
            Err(answer) => return answer,
        }
    }
    let exchange = match token_request.as_ref().and_then(|t| t.refresh_token.as_deref()) {
        Some(token) => match Box::pin(find_exchange(&shared, &connection, route.as_ref(), token, now)).await {
            Ok(exchange) => exchange.map(Box::new),
            Err(answer) => return answer,
        },
        None => None,
    };

    // 3. decide
    let observed = connection.observed();
    let evaluated = match route.as_ref().map(|r| r.kind) {
        Some(RouteKind::Login) if !store_down => {
            Some(Box::pin(evaluate_login(&shared, &connection, session.as_deref(), observed, now)).await)
        }
        Some(RouteKind::Token) if exchange.is_some() => Some(
            Box::pin(evaluate_refresh(&shared, &connection, session.as_deref(), exchange.as_deref(), observed)).await,
        ),
        _ => None,
    };

    // 4. enforce
    if let Some(decision) = &evaluated {
        if let Some(answer) = enforce(&shared, decision, &parts) {
            return answer;
        }
    }

    // 5. forward
    let live_session_id = session.as_ref().map(|s| s.record.id.clone());
    let upgrade = Requested::take(&mut parts);
    prepare_upstream_headers(&shared, &connection, &mut parts, live_session_id.as_deref(), evaluated.as_ref());
    if let Some(upgrade) = &upgrade {
        upgrade.restore(&mut parts.headers);
    }
    // Only a request on a route or on a live session has records to write (its user agent among
    // them); any other gets its response head cleaned and nothing more.
    let recorded = route.is_some() || session.is_some();
    let user_agent = if recorded { parts.headers.get(header::USER_AGENT).cloned() } else { None };
    let response = match shared.upstream.send(&connection, Request::from_parts(parts, body)).await {
        Ok((response, latency)) => {
            shared.metrics.upstream_answered(latency);
            response
        }
        Err(error) => return upstream_failure(&shared.metrics, &error),
    };
    // Only a switch hands the connection over; any other answer to an upgrade request is an
    // ordinary response (a client cannot skip binding or logout by asking for an upgrade).
    let response = match upgrade {
        Some(upgrade) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let mut response = response;
            records::clean_head(&shared, response.headers_mut());
            return upgrade.switch(response);
        }
        _ => response,
    };

    // 6. respond
    if !recorded {
        let (mut parts, body) = response.into_parts();
        records::clean_head(&shared, &mut parts.headers);
        return Response::from_parts(parts, body);
    }
    let context = RequestContext {
        shared: &shared,
        connection: &connection,
        route: route.as_ref(),
        user_agent,
        session: session.map(|session| *session),
        exchange: exchange.map(|exchange| *exchange),
        token_request,
        now,
    };
    // Boxed: the response phase's future is the largest of all (see step 0).
    Box::pin(records::on_response(context, response)).await
}

/// `GET`/`HEAD` of the JWKS (CONTRACT §8): public, cacheable for five minutes.
fn jwks(shared: &Shared, method: &hyper::Method) -> Response<Body> {
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

/// The live session this request's cookie names. A revoked session's cookie is removed from the
/// forwarded `Cookie` header in every mode (CONTRACT §1).
async fn find_session(
    shared: &Shared,
    connection: &Connection,
    cookie: Option<&[u8]>,
    headers: &mut HeaderMap,
    now: Timestamp,
) -> Result<Option<Versioned<Session>>, StoreFailed> {
    let Some(value) = cookie else { return Ok(None) };
    let id = session_id(value);
    match shared.store.get_session(&id).await {
        Ok(Some(session)) if !session.record.is_expired(now) => return Ok(Some(session)),
        Ok(Some(expired)) => {
            // Met before the sweeper: it ends here the same way (CONTRACT §7).
            if let Err(error) = shared.sessions.end(&expired, Initiator::SessionExpired, now).await {
                tracing::debug!(%error, "expired session already changed or ended");
            }
            return Ok(None);
        }
        Ok(None) => {}
        Err(error) => return Err(store_failed(shared, "session lookup", &error)),
    }
    let tombstone = shared.store.get_tombstone(&id, now).await;
    let tombstone = tombstone.map_err(|error| store_failed(shared, "session tombstone lookup", &error))?;
    if tombstone.is_some() {
        let rewrite = cookies::without_session(headers, &shared.config.session.cookie_name);
        cookies::apply(headers, rewrite);
        shared.metrics.revoked_uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared.audit.record(&json!({
            "event": "revoked_use", "time": now, "route": "login", "session_id": id,
            "client_addr": connection.client_ip(),
        }));
    }
    Ok(None)
}

/// A token-route request read whole and in its one reading (CONTRACT §1.1), with the bytes the
/// upstream is to get; or the answer that refuses it.
async fn read_token_request(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    body: Body,
) -> Result<(TokenRequest, Bytes), Response<Body>> {
    let limit = token_request::MAX_BODY;
    let bytes = match read_whole(body, limit, shared.config.server.body_read_timeout.0).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge(rest)) => {
            // Read on a little so the client sees the answer rather than a reset.
            discard_up_to(rest, DISCARD_LIMIT, DISCARD_TIME).await;
            return Err(token_refusal(shared, Refusal::TooLarge));
        }
        Err(ReadError::Timeout) => {
            shared.metrics.body_read_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut answer =
                refused(shared, StatusCode::REQUEST_TIMEOUT, "invalid_request", "Request body not received in time.");
            if parts.version < hyper::Version::HTTP_2 {
                answer.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return Err(answer);
        }
        Err(ReadError::Failed(error)) => return Err(bad_request(&format!("unreadable request body: {error}"))),
    };
    match token_request::read(&parts.headers, parts.uri.query(), &bytes) {
        Ok(request) => Ok((request, bytes)),
        Err(refusal) => Err(token_refusal(shared, refusal)),
    }
}

/// A refused token request's answer, OAuth-shaped (`invalid_request`).
fn token_refusal(shared: &Shared, refusal: Refusal) -> Response<Body> {
    let status = match refusal {
        Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    refused(shared, status, "invalid_request", &refusal.to_string())
}

/// A request answered here because it could not be read one way only; counted.
fn refused(shared: &Shared, status: StatusCode, error: &str, description: &str) -> Response<Body> {
    shared.metrics.requests_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut answer = json_response(status, &json!({"error": error, "error_description": description}));
    answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

/// A refused body is still read, up to this much more and for at most this long, so the client
/// gets its answer (see [`discard_up_to`]).
const DISCARD_LIMIT: usize = 1024 * 1024;
const DISCARD_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// The presented refresh token's record. A tombstoned token is answered `invalid_grant` at once; a
/// store failure is answered per `[store] on_error` (fail-open: `None`, no exchange to decide on).
async fn find_exchange(
    shared: &Shared,
    connection: &Connection,
    route: Option<&RouteConfig>,
    token: &str,
    now: Timestamp,
) -> Result<Option<Exchange>, Response<Body>> {
    let token_id = refresh_token_id(token);
    let record = match shared.store.get_refresh_token(&token_id).await {
        Ok(record) => record,
        Err(error) => {
            let failed = store_failed(shared, "refresh token lookup", &error);
            return failed.answer(shared, route).map_or(Ok(None), Err);
        }
    };
    if record.is_none() {
        let tombstone = match shared.store.get_tombstone(&token_id, now).await {
            Ok(tombstone) => tombstone,
            Err(error) => {
                let failed = store_failed(shared, "refresh token tombstone lookup", &error);
                return failed.answer(shared, route).map_or(Ok(None), Err);
            }
        };
        if tombstone.is_some() {
            shared.metrics.revoked_uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            shared.audit.record(&json!({
                "event": "revoked_use", "time": now, "route": "refresh", "refresh_token_id": token_id,
                "client_addr": connection.client_ip(),
            }));
            return Err(json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
            ));
        }
    }
    Ok(Some(Exchange { token_id, record }))
}

/// What the request phase decided, owned (the engine's decision borrows its inputs).
pub struct Evaluated {
    pub verdict: Verdict,
    pub reason: &'static str,
    pub session_id: Option<String>,
    pub outcome: Outcome,
}

async fn evaluate_login(
    shared: &Shared,
    connection: &Connection,
    session: Option<&Versioned<Session>>,
    observed: Option<Observed<'_>>,
    now: Timestamp,
) -> Evaluated {
    let event = Event {
        route: Route::Login,
        session_id: session.map(|s| s.record.id.as_str()),
        refresh_token_id: None,
        stored: session.map(|s| &s.record.session_metadata),
        observed,
    };
    let decision = decide(&event, &shared.policy);
    let (decision, error) = match (decision.verdict, session) {
        (Verdict::Bind, Some(session)) => {
            match shared.store.update_session_metadata(&session.record.id, &decision.writes.to_change(), now).await {
                Ok(_) => (decision, None),
                Err(error) => (decision.after_write_failure(), Some(RecordKind::Session.wrap(&error))),
            }
        }
        _ => (decision, None),
    };
    let user_id = session.and_then(|s| s.record.user_id.as_deref());
    conclude(shared, connection, &decision, event.stored, user_id, error)
}

async fn evaluate_refresh(
    shared: &Shared,
    connection: &Connection,
    session: Option<&Versioned<Session>>,
    exchange: Option<&Exchange>,
    observed: Option<Observed<'_>>,
) -> Evaluated {
    let record = exchange.and_then(|e| e.record.as_ref());
    let event = Event {
        route: Route::Refresh,
        session_id: record.and_then(|r| r.record.session_id.as_deref()).or(session.map(|s| s.record.id.as_str())),
        refresh_token_id: exchange.map(|e| e.token_id.as_str()),
        stored: record.map(|r| &r.record.refresh_token_metadata),
        observed,
    };
    let decision = decide(&event, &shared.policy);
    let (decision, error) = match (decision.verdict, record) {
        (Verdict::Bind, Some(record)) => {
            match shared.store.update_refresh_token_metadata(&record.record.id, &decision.writes.to_change()).await {
                Ok(_) => (decision, None),
                Err(error) => (decision.after_write_failure(), Some(RecordKind::RefreshToken.wrap(&error))),
            }
        }
        _ => (decision, None),
    };
    let user_id = record.and_then(|r| r.record.user_id.as_deref());
    conclude(shared, connection, &decision, event.stored, user_id, error)
}

/// Audit and count one request-phase decision; keep what the later phases need.
fn conclude(
    shared: &Shared,
    connection: &Connection,
    decision: &Decision<'_>,
    stored: Option<&crate::session::Metadata>,
    user_id: Option<&str>,
    error: Option<String>,
) -> Evaluated {
    let outcome = decision.outcome(&shared.policy);
    record_decision(shared, connection, decision, stored, user_id, outcome, error.as_deref());
    Evaluated {
        verdict: decision.verdict,
        reason: decision.reason.as_str(),
        session_id: decision.session_id.map(str::to_owned),
        outcome,
    }
}

/// The audit event and the metric of one decision (request or response phase).
pub fn record_decision(
    shared: &Shared,
    connection: &Connection,
    decision: &Decision<'_>,
    stored: Option<&crate::session::Metadata>,
    user_id: Option<&str>,
    outcome: Outcome,
    error: Option<&str>,
) {
    if let Some(error) = error {
        shared.metrics.metadata_write_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(error, "metadata write failed; request continues");
    }
    shared.audit.record(&DecisionEvent {
        time: Timestamp::now(),
        decision,
        mode: shared.policy.mode,
        outcome,
        user_id,
        observed: connection.observed(),
        stored,
        client_addr: Some(connection.client_ip()),
        error,
    });
    shared.metrics.decided(decision.verdict, shared.policy.mode);
}

/// The enforce-mode answers (CONTRACT §4); `None` means forward.
fn enforce(shared: &Shared, evaluated: &Evaluated, parts: &hyper::http::request::Parts) -> Option<Response<Body>> {
    match evaluated.outcome {
        Outcome::Forwarded => None,
        Outcome::Rejected => {
            let factors: Vec<_> = shared.policy.factors.all().iter().map(|f| json!({"type": f})).collect();
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
            query.append_pair("challenge", shared.policy.factors.primary().as_str());
            let additional: Vec<&str> = shared.policy.factors.additional().iter().map(|f| f.as_str()).collect();
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

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction; see
/// [`hop_by_hop_index`].
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// `name`'s index in [`HOP_BY_HOP`]. A match on the text: most names differ in length from all
/// of these and are passed over at once.
fn hop_by_hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Remove the hop-by-hop headers and those the `Connection` header lists. One pass over the
/// headers finds both; a message with none (most requests) costs nothing more, and one whose
/// `Connection` lists only the usual tokens (`keep-alive`, as most HTTP/1.1 origins answer) one
/// removal per hop-by-hop name present, with no allocation.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // The usual `Connection` tokens name nothing beyond the fixed set: no name to parse.
    let usual = |token: &str| ["keep-alive", "close", "upgrade"].iter().any(|t| token.eq_ignore_ascii_case(t));
    let mut present = 0u16; // bit `i`: `HOP_BY_HOP[i]` is present
    let mut listed: Vec<HeaderName> = Vec::new();
    for (name, value) in headers.iter() {
        let Some(index) = hop_by_hop_index(name.as_str()) else { continue };
        present |= 1 << index;
        if index == 0 {
            let tokens = value.to_str().unwrap_or_default().split(',').map(str::trim);
            let names = tokens.filter(|token| !usual(token)).filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok());
            listed.extend(names);
        }
    }
    for (index, name) in HOP_BY_HOP.iter().enumerate() {
        if present & 1 << index != 0 {
            headers.remove(name);
        }
    }
    if !listed.is_empty() {
        remove_where(headers, |name| listed.contains(name));
    }
}

/// The most headers [`prepare_upstream_headers`] adds: `X-Forwarded-*`, the three fingerprints,
/// the session id, the decision, its reason and the challenge.
const ADDED_HEADERS: usize = 10;

fn prepare_upstream_headers(
    shared: &Shared,
    connection: &Connection,
    parts: &mut hyper::http::request::Parts,
    session_id: Option<&str>,
    evaluated: Option<&Evaluated>,
) {
    let headers = &mut parts.headers;
    // HTTP/2 clients carry the host in the URI's authority; the upstream speaks HTTP/1.1.
    let (host, host_from_uri) = match headers.get(header::HOST) {
        Some(host) => (Some(host.clone()), false),
        None => (parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()), true),
    };
    let forwarded_for = match headers.get(&X_FORWARDED_FOR) {
        Some(previous) => {
            HeaderValue::from_bytes(&[previous.as_bytes(), b", ", connection.client_ip.as_bytes()].concat())
        }
        None => Ok(connection.client_ip.clone()),
    };
    remove_hop_by_hop(headers);
    // Room for every header added below at once, rather than a rehash each time the map fills up.
    headers.reserve(ADDED_HEADERS);
    if let Ok(forwarded_for) = forwarded_for {
        headers.insert(X_FORWARDED_FOR.clone(), forwarded_for);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
    if let Some(host) = host {
        if host_from_uri {
            headers.insert(header::HOST, host.clone());
        }
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    let names = &shared.names;
    if let Some([ja3, ja4, ja4_stable]) = &connection.fingerprint_values {
        for (name, value) in [(&names.ja3, ja3), (&names.ja4, ja4), (&names.ja4_stable, ja4_stable)] {
            headers.insert(name.clone(), value.clone());
        }
    }
    if let Some(Ok(id)) = session_id.map(HeaderValue::from_str) {
        headers.insert(names.session_id.clone(), id);
    }
    if let Some(evaluated) = evaluated.filter(|_| shared.policy.mode != Mode::Monitor) {
        headers.insert(names.decision.clone(), HeaderValue::from_static(evaluated.verdict.as_str()));
        headers.insert(names.reason.clone(), HeaderValue::from_static(evaluated.reason));
        if evaluated.verdict == Verdict::Challenge {
            let factors: Vec<&str> = shared.policy.factors.all().iter().map(|f| f.as_str()).collect();
            if let Ok(value) = HeaderValue::from_str(&factors.join(",")) {
                headers.insert(names.challenge.clone(), value);
            }
        }
    }
}

fn bad_request(message: &str) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": "bad_request", "message": message}))
}

fn upstream_failure(metrics: &Metrics, error: &UpstreamError) -> Response<Body> {
    tracing::warn!(%error, "upstream failed");
    let (status, code) = match error {
        UpstreamError::Unavailable(_) => {
            metrics.upstream_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (StatusCode::BAD_GATEWAY, "bad_gateway")
        }
        UpstreamError::Timeout(_) => {
            metrics.upstream_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (StatusCode::GATEWAY_TIMEOUT, "gateway_timeout")
        }
    };
    json_response(status, &json!({"error": code, "message": error.to_string()}))
}

/// The client id a record made on this route gets: the request's parameter, else the route's.
pub fn route_client_id(route: Option<&RouteConfig>) -> Option<String> {
    route.and_then(|r| r.client_id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "Keep-Alive, X-Private,close".parse().unwrap());
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert("te", "trailers".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);

        let fixed = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization"];
        let mut headers = HeaderMap::new();
        for name in fixed.into_iter().chain(["te", "trailer", "transfer-encoding", "upgrade", "user-agent"]) {
            headers.insert(HeaderName::from_static(name), "x".parse().unwrap());
        }
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["user-agent"]);
    }

    #[test]
    fn every_hop_by_hop_name_is_found_at_its_index() {
        for (index, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name.as_str()), Some(index), "{name}");
        }
        assert_eq!(hop_by_hop_index("accept"), None);
    }

    #[test]
    fn names_listed_without_a_connection_header_stay() {
        let mut headers = HeaderMap::new();
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert(header::USER_AGENT, "curl".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 2);
    }
}
