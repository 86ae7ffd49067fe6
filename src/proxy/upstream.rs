//! The upstream login service: an HTTP origin through kept-alive connections (see [`super::pool`]),
//! or the built-in demo.
//!
//! The proxy hands over a request whose URI is origin-form (path and query); this module adds the
//! origin's base path, the version (HTTP/1.1 to HTTP origins, whatever the client spoke), a `Host`
//! when the client sent none, and the time limit, and maps failures to the 502/504 answers.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::{HeaderValue, HOST};
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, Uri};

use super::demo::Demo;
use super::pool::{Limits, Pool};
use super::state::Connection;
use crate::config::{ServerConfig, Upstream as UpstreamConfig};
use crate::http::body::Body;
use crate::http::origin::split_origin;

/// Why the upstream gave no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
}

const POOL_LIMITS: Limits =
    Limits { max_idle: 256, idle_timeout: Duration::from_secs(90), connect_timeout: Duration::from_secs(5) };

pub enum Upstream {
    Demo(Arc<Demo>),
    Http {
        /// One pool per worker (see [`super::listener`]).
        pools: Vec<Arc<Pool>>,
        /// The `Host` of a request that has none (an HTTP/1.0 client's).
        host: HeaderValue,
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
                let address = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
                let pools = (0..server.worker_count()).map(|_| Pool::new(address.clone(), POOL_LIMITS)).collect();
                let host = HeaderValue::from_str(authority.as_str()).map_err(|e| format!("{origin:?}: {e}"))?;
                Ok(Upstream::Http { pools, host, base: base.to_owned(), timeout: server.upstream_timeout.0 })
            }
        }
    }

    /// Send the request that came on `connection`; returns the response and how long the headers
    /// took. One clock reading at the start serves the deadline, the latency and the pool's idle
    /// check. (An `async` block rather than an `async fn`, which would hold `request` twice.)
    #[allow(clippy::manual_async_fn, reason = "an async fn holds its arguments twice")]
    pub fn send<'a>(
        &'a self,
        connection: &'a Connection,
        mut request: Request<Body>,
    ) -> impl Future<Output = Result<(Response<Body>, Duration), UpstreamError>> + 'a {
        async move {
            let started = Instant::now();
            match self {
                // Boxed: the HTTP path's future, which every proxied request moves, need not hold
                // the demo's.
                Upstream::Demo(demo) => Ok((Box::pin(demo.handle(request)).await, started.elapsed())),
                Upstream::Http { pools, host, base, timeout } => {
                    let path_and_query = match (base.is_empty(), request.uri().path_and_query()) {
                        (true, Some(path_and_query)) => path_and_query.clone(),
                        (_, path_and_query) => {
                            let path = path_and_query.map_or("/", |p| p.as_str());
                            PathAndQuery::try_from(format!("{base}{path}"))
                                .map_err(|e| UpstreamError::Unavailable(e.to_string()))?
                        }
                    };
                    *request.uri_mut() = Uri::from(path_and_query);
                    *request.version_mut() = hyper::Version::HTTP_11;
                    request.headers_mut().entry(HOST).or_insert_with(|| host.clone());
                    let pool = &pools[connection.worker % pools.len()];
                    let expired = connection.deadlines.at(started + *timeout);
                    tokio::select! {
                        biased;
                        sent = pool.send(request, started) => match sent {
                            Err(error) => Err(UpstreamError::Unavailable(error)),
                            Ok((response, answered)) => Ok((response, answered.saturating_duration_since(started))),
                        },
                        () = expired => Err(UpstreamError::Timeout(*timeout)),
                    }
                }
            }
        }
    }
}
