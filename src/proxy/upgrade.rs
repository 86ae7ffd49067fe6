//! HTTP/1.1 upgrades (WebSocket and any other `Upgrade:` protocol) passed through: the request keeps
//! its `Connection: upgrade` and `Upgrade` headers, and when the upstream answers `101 Switching
//! Protocols` both connections are taken over from hyper and bytes are copied both ways until either
//! side closes. Everything else about the request (hygiene, fingerprint headers) is as usual, and
//! any other answer goes through the usual response phase (binding, logout).

use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Response, Version};
use hyper_util::rt::TokioIo;

use crate::http::body::Body;
use crate::http::hop_by_hop::remove_hop_by_hop;

/// A client request that asked to switch protocols.
pub struct Requested {
    protocol: HeaderValue,
    client: OnUpgrade,
}

impl Requested {
    /// Take the upgrade out of an HTTP/1.1 request that asks for one (`Connection: upgrade` and an
    /// `Upgrade` protocol).
    pub fn take(parts: &mut hyper::http::request::Parts) -> Option<Self> {
        if parts.version != Version::HTTP_11 || !connection_has_upgrade(&parts.headers) {
            return None;
        }
        let protocol = parts.headers.get(UPGRADE)?.clone();
        let client = parts.extensions.remove::<OnUpgrade>()?;
        Some(Self { protocol, client })
    }

    /// Put the upgrade headers back after the hop-by-hop headers were removed.
    pub fn restore(&self, headers: &mut HeaderMap) {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, self.protocol.clone());
    }

    /// The upstream's `101 Switching Protocols` for the client; the two connections are joined.
    pub fn switch(self, mut response: Response<Body>) -> Response<Body> {
        let upstream = hyper::upgrade::on(&mut response);
        let protocol = response.headers().get(UPGRADE).cloned().unwrap_or(self.protocol);
        remove_hop_by_hop(response.headers_mut());
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("upgrade"));
        response.headers_mut().insert(UPGRADE, protocol);
        tokio::spawn(async move {
            let (client, upstream) = match tokio::try_join!(self.client, upstream) {
                Ok(both) => both,
                Err(error) => return tracing::debug!(%error, "upgrade not completed"),
            };
            let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
            if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(%error, "upgraded connection ended with an error");
            }
        });
        response
    }
}

fn connection_has_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}
