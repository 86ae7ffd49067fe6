//! The upstream login service: an HTTP origin through a pooled client, or the built-in demo.
//!
//! The proxy hands over a request whose URI is origin-form (path and query); this module sets the
//! origin, the version (HTTP/1.1 to HTTP origins, whatever the client spoke) and the time limit,
//! and maps failures to the 502/504 answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::body::{boxed, Body};
use super::demo::Demo;
use crate::config::Upstream as UpstreamConfig;

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
    Http { client: Box<Client<HttpConnector, Body>>, origin: String, timeout: Duration },
}

impl Upstream {
    pub fn new(config: &UpstreamConfig, demo: Arc<Demo>, timeout: Duration) -> Self {
        match config {
            UpstreamConfig::Demo => Upstream::Demo(demo),
            UpstreamConfig::Http(origin) => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(Duration::from_secs(5)));
                let client = Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(256)
                    .build(connector);
                Upstream::Http { client: Box::new(client), origin: origin.clone(), timeout }
            }
        }
    }

    /// Send the request; returns the response and how long the headers took.
    pub async fn send(&self, mut request: Request<Body>) -> Result<(Response<Body>, Duration), UpstreamError> {
        let started = Instant::now();
        match self {
            Upstream::Demo(demo) => Ok((demo.handle(request).await, started.elapsed())),
            Upstream::Http { client, origin, timeout } => {
                let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                let uri: Uri =
                    format!("{origin}{path}").parse().map_err(|e| UpstreamError::Unavailable(format!("{e}")))?;
                *request.uri_mut() = uri;
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
