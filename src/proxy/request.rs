//! The life of one request, as a visible sequence of phases, each a small function:
//!
//! 0. **reserved**: the JWKS path and, unless it has its own listener, `/api/v2/` are answered
//!    here and never forwarded (matched on the path's normal form, CONTRACT §1.1);
//! 1. **hygiene**: remove every header name of helloguard's a client sent, and read the session
//!    cookie its one way (a request with two readings is refused);
//! 2. **classify**: login, token, logout, other; a token request's one reading (or its refusal);
//! 3. **look up**: the live session of the cookie and the presented refresh token's record
//!    ([`crate::binding`]); a revoked cookie is removed, a revoked token refused;
//! 4. **bind/decide**: the binding layer decides logins and refresh exchanges;
//! 5. **enforce**: a challenged login is redirected, a challenged refresh answered, per mode;
//! 6. **forward**: fingerprint and decision headers on, hop-by-hop headers off;
//! 7. **respond**: [`super::response`].
//!
//! No decision is made and no record written here: that is the binding layer's.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::answers::{self, bad_request, refused, token_refusal};
use super::forward::Carried;
use super::response::{self, RequestContext};
use super::state::{Connection, Shared};
use super::upgrade::Requested;
use crate::binding::{Evaluated, Exchange, ExchangeLookup, RequestInfo, SessionLookup};
use crate::config::{RouteConfig, RouteKind};
use crate::http::body::{discard_up_to, full, read_whole, Body, ReadError};
use crate::http::cookies;
use crate::http::path::normalise;
use crate::http::token_request::{self, Refusal, TokenRequest};
use crate::session::{Session, Timestamp, Versioned};

/// Handle one request; never fails (errors become answers).
pub async fn handle(
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    shared.metrics.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // 0. reserved (here and on the route-only branches below, awaited futures are boxed: hyper
    // moves the request's future whole, and these would otherwise make every request's larger)
    let normal = normalise(request.uri().path());
    if shared.routes.is_jwks(&normal) {
        return answers::jwks(&shared, request.method());
    }
    let route = shared.routes.classify(request.method(), &normal).cloned();
    if shared.api.claims_on_proxy_listener(&normal) {
        return Box::pin(shared.api.handle(shared.api_backend(), request.map(crate::http::body::boxed))).await;
    }
    let (mut parts, body) = request.into_parts();

    // 1. hygiene
    let cookie = match hygiene(&shared, &mut parts.headers) {
        Ok(cookie) => cookie,
        Err(ambiguous) => return refused(&shared, StatusCode::BAD_REQUEST, "invalid_request", &ambiguous.to_string()),
    };

    // 2. classify (the route, above) and a token request's one reading; with Actions, what they
    // read of a login or token request
    let now = Timestamp::now();
    let mut body = crate::http::body::boxed(body);
    let mut token_request = None;
    let mut bytes = None;
    if route.as_ref().is_some_and(|r| r.kind == RouteKind::Token) {
        // helloguard must read the answer, so no compressed encodings (CONTRACT §1).
        parts.headers.remove(header::ACCEPT_ENCODING);
        match Box::pin(read_token_request(&shared, &parts, body)).await {
            Ok((request, read)) => {
                token_request = Some(request);
                body = full(read.clone());
                bytes = Some(read);
            }
            Err(answer) => return answer,
        }
    }
    let actions_run = shared.binder.actions().is_some() && route.as_ref().is_some_and(|r| r.kind != RouteKind::Logout);
    if actions_run && bytes.is_none() {
        match Box::pin(read_whole(body, token_request::MAX_BODY, shared.config.server.body_read_timeout.0)).await {
            Ok(read) => {
                body = full(read.clone());
                bytes = Some(read);
            }
            Err(ReadError::TooLarge(_)) => return token_refusal(&shared, Refusal::TooLarge),
            Err(_) => return bad_request("unreadable request body"),
        }
    }
    let info = match actions_run
        .then(|| super::action_facts::request_info(&parts, route.as_ref(), bytes.as_deref(), token_request.as_ref()))
        .transpose()
    {
        Ok(info) => info.map(Box::new),
        Err(ambiguity) => return refused(&shared, StatusCode::BAD_REQUEST, "invalid_request", &ambiguity.to_string()),
    };

    // 3. look up and 4. bind/decide: only a request on a route or with a session cookie has
    // anything to look up (most requests have neither, and skip this)
    let user_agent = parts.headers.get(header::USER_AGENT).cloned();
    let bound = if route.is_some() || cookie.is_some() {
        let looked_up = look_up_and_bind(
            &shared,
            &connection,
            route.as_ref(),
            (cookie.as_deref(), token_request.as_ref(), info.as_deref()),
            (&mut parts.headers, user_agent.as_ref()),
            now,
        );
        match Box::pin(looked_up).await {
            Ok(bound) => bound,
            Err(answer) => return answer,
        }
    } else {
        Bound::default()
    };
    let Bound { session, exchange, evaluated } = bound;

    // 5. enforce
    if let Some(answer) = evaluated.as_ref().and_then(|decision| answers::enforce(&shared, decision, &parts)) {
        return answer;
    }

    // 6. forward
    let carried = Carried {
        session: session.as_deref().map(|s| &s.record),
        refresh_token: exchange.as_deref().and_then(|e| e.record.as_ref()).map(|r| &r.record.refresh_token_metadata),
        evaluated: evaluated.as_ref(),
    };
    let (response, upgrade) = match forward(&shared, &connection, parts, body, carried).await {
        Ok(forwarded) => forwarded,
        Err(answer) => return answer,
    };

    // 7. respond. Only a switch hands the connection over; any other answer to an upgrade request
    // is an ordinary response (a client cannot skip binding or logout by asking for an upgrade).
    if let Some(upgrade) = upgrade {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let mut response = response;
            response::clean_head(&shared, response.headers_mut());
            return upgrade.switch(response);
        }
    }
    // Only a request on a route or on a live session has records to write; any other gets its
    // response head cleaned and nothing more.
    if route.is_none() && session.is_none() {
        let (mut parts, body) = response.into_parts();
        response::clean_head(&shared, &mut parts.headers);
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
        held: evaluated.map(|e| e.held).unwrap_or_default(),
        now,
    };
    // Boxed: the response phase's future is the largest of all (see phase 0).
    Box::pin(response::on_response(context, response)).await
}

/// What the look-up and the binding layer gave the request.
#[derive(Default)]
struct Bound {
    /// Boxed, as the exchange: rarely there, they would otherwise take room in every request's future.
    session: Option<Box<Versioned<Session>>>,
    exchange: Option<Box<Exchange>>,
    /// The decision of a login or refresh exchange.
    evaluated: Option<Evaluated>,
}

/// Phases 3 and 4: the records the request names, and the binding layer's decision on a login or
/// a refresh exchange; or the answer that ends the request here.
async fn look_up_and_bind(
    shared: &Shared,
    connection: &Connection,
    route: Option<&RouteConfig>,
    (cookie, token_request, info): (Option<&[u8]>, Option<&TokenRequest>, Option<&RequestInfo>),
    (headers, user_agent): (&mut hyper::HeaderMap, Option<&HeaderValue>),
    now: Timestamp,
) -> Result<Bound, Response<Body>> {
    let mut facts = connection.facts(user_agent.and_then(|v| v.to_str().ok()), now);
    facts.request = info;
    let mut store_down = false;
    let session = match look_up_session(shared, route, cookie, &facts, headers).await {
        Ok(session) => session,
        Err(LookUp::Answer(answer)) => return Err(answer),
        Err(LookUp::StoreDown) => {
            store_down = true;
            None
        }
    };
    let exchange = match token_request.and_then(|t| t.refresh_token.as_deref()) {
        Some(token) => look_up_exchange(shared, route, token, &facts).await?,
        None => None,
    };
    let evaluated = match route.map(|r| r.kind) {
        Some(RouteKind::Login) if !store_down => Some(shared.binder.on_login(&facts, session.as_deref()).await),
        Some(RouteKind::Token) => match exchange.as_deref() {
            Some(exchange) => Some(shared.binder.on_refresh(&facts, session.as_deref(), exchange).await),
            // Another grant that can issue tokens: only Actions decide on it.
            None if token_request.is_some_and(|t| t.grant_type.is_some()) => {
                shared.binder.on_token_request(&facts, session.as_deref()).await
            }
            None => None,
        },
        _ => None,
    };
    Ok(Bound { session, exchange, evaluated })
}

/// Strips helloguard's own header names and reads the session cookie its one way; the single
/// `Cookie` header the upstream is to get replaces the client's fields when they differ from it.
fn hygiene(shared: &Shared, headers: &mut hyper::HeaderMap) -> Result<Option<Vec<u8>>, cookies::AmbiguousCookie> {
    shared.names.strip_client_headers(headers);
    let cookie = cookies::read(headers, &shared.config.session.cookie_name)?;
    if let Some(rewrite) = cookie.rewrite {
        cookies::apply(headers, rewrite);
    }
    Ok(cookie.value)
}

/// Why a look-up gives no record.
enum LookUp {
    /// The request is answered here.
    Answer(Response<Body>),
    /// The store failed and the request goes on without a binding (fail-open).
    StoreDown,
}

/// The live session of the request's cookie. A revoked session's cookie is removed from the
/// forwarded `Cookie` header in every mode (CONTRACT §1).
async fn look_up_session(
    shared: &Shared,
    route: Option<&RouteConfig>,
    cookie: Option<&[u8]>,
    facts: &crate::binding::Facts<'_>,
    headers: &mut hyper::HeaderMap,
) -> Result<Option<Box<Versioned<Session>>>, LookUp> {
    match shared.binder.session_of(cookie, facts).await {
        Ok(SessionLookup::Live(session)) => Ok(Some(session)),
        Ok(SessionLookup::None) => Ok(None),
        Ok(SessionLookup::Revoked) => {
            cookies::apply(headers, cookies::without_session(headers, &shared.config.session.cookie_name));
            Ok(None)
        }
        Err(failure) => {
            Err(answers::store_unavailable(shared, failure, route).map_or(LookUp::StoreDown, LookUp::Answer))
        }
    }
}

/// The presented refresh token's record. A revoked token is answered `invalid_grant` at once; a
/// store failure per `[store] on_error` (fail-open: no exchange to decide on).
async fn look_up_exchange(
    shared: &Shared,
    route: Option<&RouteConfig>,
    token: &str,
    facts: &crate::binding::Facts<'_>,
) -> Result<Option<Box<Exchange>>, Response<Body>> {
    match shared.binder.exchange_of(token, facts).await {
        Ok(ExchangeLookup::Known(exchange)) => Ok(Some(exchange)),
        Ok(ExchangeLookup::Revoked) => Err(answers::invalid_grant()),
        Err(failure) => answers::store_unavailable(shared, failure, route).map_or(Ok(None), Err),
    }
}

/// Sends the request upstream with helloguard's headers; the answer, and the upgrade the client
/// asked for if any.
async fn forward(
    shared: &Shared,
    connection: &Connection,
    mut parts: hyper::http::request::Parts,
    body: Body,
    carried: Carried<'_>,
) -> Result<(Response<Body>, Option<Requested>), Response<Body>> {
    let upgrade = Requested::take(&mut parts);
    super::forward::prepare_upstream_headers(shared, connection, &mut parts, carried);
    if let Some(upgrade) = &upgrade {
        upgrade.restore(&mut parts.headers);
    }
    match shared.upstream.send(connection, Request::from_parts(parts, body)).await {
        Ok((response, latency)) => {
            shared.metrics.upstream_answered(latency);
            Ok((response, upgrade))
        }
        Err(error) => Err(answers::upstream_failure(&shared.metrics, &error)),
    }
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

/// A refused body is still read, up to this much more and for at most this long, so the client
/// gets its answer (see [`discard_up_to`]).
const DISCARD_LIMIT: usize = 1024 * 1024;
const DISCARD_TIME: std::time::Duration = std::time::Duration::from_secs(2);
