//! What the requests of the proxy share ([`Shared`]), and what is known about the connection a
//! request came on ([`Connection`]), built once per connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderValue;

use super::capture::ConnectionFingerprint;
use super::deadlines::Deadlines;
use super::headers::HeaderNames;
use super::metrics::Metrics;
use super::routes::Routes;
use super::upstream::Upstream;
use crate::audit::AuditSink;
use crate::binding::{Binder, Facts};
use crate::config::Config;
use crate::engine::Observed;
use crate::session::{Store, Timestamp};

/// What every request of the proxy shares.
pub struct Shared {
    pub config: Config,
    pub names: HeaderNames,
    pub routes: Routes,
    /// Sessions and refresh tokens: every decision and record write goes through it.
    pub binder: Binder,
    pub store: Arc<dyn Store>,
    pub upstream: Upstream,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<dyn AuditSink>,
    pub sessions: Arc<crate::logout::SessionEnder>,
    /// The logout signing key; its JWKS is served at `[logout] jwks_path`.
    pub signer: Arc<crate::logout::signer::LogoutSigner>,
    pub api: crate::api::Api,
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
    pub(super) client_ip: HeaderValue,
    /// The values of the fingerprint headers sent upstream: `ja3`, `ja4`, `ja4_stable`.
    pub(super) fingerprint_values: Option<[HeaderValue; 3]>,
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

    /// The facts the binding layer gets about a request on this connection.
    pub fn facts<'a>(&'a self, user_agent: Option<&'a str>, now: Timestamp) -> Facts<'a> {
        Facts { observed: self.observed(), client_ip: self.client_ip(), user_agent, now, request: None }
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
