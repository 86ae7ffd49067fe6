//! What the upstream gets besides the client's request: `X-Forwarded-*`, the connection's
//! fingerprints, the session id and the decision (CONTRACT §5); hop-by-hop headers off.

use hyper::header::{self, HeaderName, HeaderValue};

use super::state::{Connection, Shared};
use crate::binding::Evaluated;
use crate::engine::{Mode, Verdict};
use crate::http::hop_by_hop::remove_hop_by_hop;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The most headers [`prepare_upstream_headers`] adds: `X-Forwarded-*`, the three fingerprints,
/// the session id, the decision, its reason and the challenge.
const ADDED_HEADERS: usize = 10;

pub fn prepare_upstream_headers(
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
    if let Some(evaluated) = evaluated.filter(|_| shared.binder.policy().mode != Mode::Monitor) {
        headers.insert(names.decision.clone(), HeaderValue::from_static(evaluated.verdict.as_str()));
        headers.insert(names.reason.clone(), HeaderValue::from_static(evaluated.reason));
        if evaluated.verdict == Verdict::Challenge {
            let factors: Vec<&str> = shared.binder.policy().factors.all().iter().map(|f| f.as_str()).collect();
            if let Ok(value) = HeaderValue::from_str(&factors.join(",")) {
                headers.insert(names.challenge.clone(), value);
            }
        }
    }
}
