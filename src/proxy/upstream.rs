//! The upstream login service: an HTTP origin through a pooled client, or the built-in demo.
//!
//! The proxy hands over a request whose URI is origin-form (path and query); this module sets the
//! origin, the version (HTTP/1.1 to HTTP origins, whatever the client spoke) and the time limit,
//! and maps failures to the 502/504 answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::body::{boxed, Body};
use super::demo::Demo;
use crate::config::{ServerConfig, Upstream as UpstreamConfig};

/// Why the upstream gave no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
}

pub enum Upstream {
    Demo(Arc<Demo>),
    Http {
        /// One pool per worker (see [`super::listener`]): a pooled connection is driven by the
        /// event loop that uses it.
        clients: Vec<Client<HttpConnector, Body>>,
        authority: Authority,
        /// The origin's base path without its trailing `/`; often empty.
        base: String,
        timeout: Duration,
    },
}

impl Upstream {
    /// Fails only on an origin that configuration validation would have refused.
    pub fn new(server: &ServerConfig, demo: Arc<Demo>) -> Result<Self, String> {
        match &server.upstream {
            UpstreamConfig::Demo => Ok(Upstream::Demo(demo)),
            UpstreamConfig::Http(origin) => {
                let (authority, base) = split_origin(origin)?;
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(Duration::from_secs(5)));
                let mut builder = Client::builder(TokioExecutor::new());
                builder.pool_idle_timeout(Duration::from_secs(90)).pool_max_idle_per_host(256);
                let clients = (0..server.worker_count()).map(|_| builder.build(connector.clone())).collect();
                Ok(Upstream::Http { clients, authority, base: base.to_owned(), timeout: server.upstream_timeout.0 })
            }
        }
    }

    /// Send the request from worker `worker`; returns the response and how long the headers took.
    pub async fn send(
        &self,
        worker: usize,
        mut request: Request<Body>,
    ) -> Result<(Response<Body>, Duration), UpstreamError> {
        let started = Instant::now();
        match self {
            Upstream::Demo(demo) => Ok((demo.handle(request).await, started.elapsed())),
            Upstream::Http { clients, authority, base, timeout } => {
                let client = &clients[worker % clients.len()];
                let path_and_query = match (base.is_empty(), request.uri().path_and_query()) {
                    (true, Some(path_and_query)) => path_and_query.clone(),
                    (_, path_and_query) => {
                        let path = path_and_query.map_or("/", |p| p.as_str());
                        PathAndQuery::try_from(format!("{base}{path}"))
                            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?
                    }
                };
                let uri =
                    Uri::builder().scheme(Scheme::HTTP).authority(authority.clone()).path_and_query(path_and_query);
                *request.uri_mut() = uri.build().map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
                *request.version_mut() = hyper::Version::HTTP_11;
                match tokio::time::timeout(*timeout, client.request(request)).await {
                    Err(_) => Err(UpstreamError::Timeout(*timeout)),
                    Ok(Err(error)) => Err(UpstreamError::Unavailable(error.to_string())),
                    Ok(Ok(response)) => Ok((response.map(boxed), started.elapsed())),
                }
            }
        }
    }
}

/// `http://host[:port][/base]` as its authority and base path (without a trailing `/`).
pub fn split_origin(origin: &str) -> Result<(Authority, &str), String> {
    let rest = origin.strip_prefix("http://").ok_or_else(|| format!("{origin:?}: not an http:// URL"))?;
    let (authority, base) = rest.find('/').map_or((rest, ""), |slash| rest.split_at(slash));
    let authority = Authority::try_from(authority).map_err(|e| format!("{origin:?}: {e}"))?;
    let base = base.trim_end_matches('/');
    if !base.is_empty() {
        PathAndQuery::try_from(base).map_err(|e| format!("{origin:?}: {e}"))?;
    }
    Ok((authority, base))
}

#[cfg(test)]
mod tests {
    use super::split_origin;

    #[test]
    fn origins_split_into_authority_and_base() {
        let (authority, base) = split_origin("http://127.0.0.1:3000").unwrap();
        assert_eq!((authority.as_str(), base), ("127.0.0.1:3000", ""));
        let (authority, base) = split_origin("http://login.internal/base/").unwrap();
        assert_eq!((authority.as_str(), base), ("login.internal", "/base"));
        assert!(split_origin("http://bad host").is_err());
        assert!(split_origin("https://login.internal").is_err());
    }
}
