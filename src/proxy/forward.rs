//! What the upstream gets besides the client's request: `X-Forwarded-*`, the connection's
//! fingerprints, the session id and the decision (CONTRACT §5); hop-by-hop headers off.

use hyper::header::{self, HeaderName, HeaderValue};

use super::state::{Connection, Shared};
use crate::binding::Evaluated;
use crate::engine::{Mode, Verdict};
use crate::http::hop_by_hop::remove_hop_by_hop;
use crate::session::{Metadata, Session};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The most headers [`prepare_upstream_headers`] adds: `X-Forwarded-*`, the three fingerprints,
/// the session id, the decision, its reason and the challenge.
const ADDED_HEADERS: usize = 10;

/// What a request carries for the upstream besides its own headers.
pub struct Carried<'r> {
    /// The live session the request is on.
    pub session: Option<&'r Session>,
    /// The presented refresh token's metadata, on a refresh exchange.
    pub refresh_token: Option<&'r Metadata>,
    pub evaluated: Option<&'r Evaluated>,
}

pub fn prepare_upstream_headers(
    shared: &Shared,
    connection: &Connection,
    parts: &mut hyper::http::request::Parts,
    carried: Carried<'_>,
) {
    let Carried { session, refresh_token, evaluated } = carried;
    let session_id = session.map(|s| s.id.as_str());
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
    if let Some(evaluated) = evaluated.filter(|_| shared.binder.policy().mode != Mode::Monitor) {
        headers.insert(names.decision.clone(), HeaderValue::from_static(evaluated.verdict.as_str()));
        headers.insert(names.reason.clone(), HeaderValue::from_static(evaluated.reason));
        if evaluated.verdict == Verdict::Challenge {
            let factors = evaluated.factors.as_deref().unwrap_or(shared.binder.policy().factors.all());
            let factors: Vec<&str> = factors.iter().map(|f| f.as_str()).collect();
            if let Ok(value) = HeaderValue::from_str(&factors.join(",")) {
                headers.insert(names.challenge.clone(), value);
            }
        }
    }
    // Actions' claims, and the metadata configured to travel with every request (CONTRACT §11).
    if let Some(claims) = evaluated.and_then(|e| e.claims.as_ref()) {
        insert_json(headers, &names.claims, &serde_json::Value::Object(claims.clone()));
    }
    let forwarded = &shared.config.headers;
    if let Some(session) = session.filter(|_| !forwarded.forward_session_metadata.is_empty()) {
        if let Some(selected) = selected(&session.session_metadata, &forwarded.forward_session_metadata) {
            insert_json(headers, &names.session_metadata, &selected);
        }
    }
    if let Some(metadata) = refresh_token.filter(|_| !forwarded.forward_refresh_token_metadata.is_empty()) {
        if let Some(selected) = selected(metadata, &forwarded.forward_refresh_token_metadata) {
            insert_json(headers, &names.refresh_token_metadata, &selected);
        }
    }
}

/// The listed keys of `metadata` present (`"*"`: all) as a JSON object; `None` when none is.
fn selected(metadata: &Metadata, keys: &[String]) -> Option<serde_json::Value> {
    let all = keys.iter().any(|k| k == "*");
    let chosen: serde_json::Map<String, serde_json::Value> = metadata
        .iter()
        .filter(|(key, _)| all || keys.iter().any(|k| k == key))
        .map(|(key, value)| (key.to_owned(), serde_json::Value::from(value)))
        .collect();
    (!chosen.is_empty()).then_some(serde_json::Value::Object(chosen))
}

/// A header carrying base64url (no padding) of a JSON value.
fn insert_json(headers: &mut hyper::HeaderMap, name: &HeaderName, value: &serde_json::Value) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        headers.insert(name.clone(), value);
    }
}
