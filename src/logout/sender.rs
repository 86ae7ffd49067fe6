//! One delivery attempt (CONTRACT §8): `POST <url>` with `Content-Type:
//! application/x-www-form-urlencoded` and body `logout_token=<jwt>`, over HTTPS (rustls; the
//! public web roots plus `[logout] ca_file`) or, when allowed, plain HTTP. One connection per
//! attempt, HTTP/1.1, redirects never followed (a `3xx` is just a status), the whole attempt
//! bounded by `[logout] timeout`.
//!
//! Errors describe the failure (connect, TLS, HTTP, timeout) and never carry the token.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::LogoutConfig;
use crate::options::ConfigError;

/// Why an attempt got no status code.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Posts logout tokens to relying parties.
pub struct Sender {
    tls: TlsConnector,
    timeout: Duration,
}

impl Sender {
    /// Trust the public web roots and the certificates of `[logout] ca_file`.
    pub fn new(config: &LogoutConfig) -> Result<Self, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &config.ca_file {
            let bad = |message: String| ConfigError::key("logout.ca_file", format!("{}: {message}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
            let certificates: Vec<_> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
            if certificates.is_empty() {
                return Err(bad("no certificate found in the PEM file".to_owned()));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|e| bad(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::key("logout.ca_file", e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { tls: TlsConnector::from(Arc::new(tls)), timeout: config.timeout.0 })
    }

    /// One attempt: the RP's status code, or why there is none.
    pub async fn post(&self, url: &str, token: &str) -> Result<u16, SendError> {
        tokio::time::timeout(self.timeout, self.post_unbounded(url, token))
            .await
            .unwrap_or(Err(SendError::Timeout(self.timeout)))
    }

    async fn post_unbounded(&self, url: &str, token: &str) -> Result<u16, SendError> {
        let url = url::Url::parse(url).map_err(|e| SendError::Url(e.to_string()))?;
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err(SendError::Url("no host".to_owned()));
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let tcp = TcpStream::connect(format!("{host}:{port}")).await.map_err(SendError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let body = form_urlencoded::Serializer::new(String::new()).append_pair("logout_token", token).finish();
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let request = Request::post(path)
            .header(HOST, authority)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(CONTENT_LENGTH, body.len())
            .header(USER_AGENT, concat!("helloguard/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Url(e.to_string()))?;
        match url.scheme() {
            "https" => {
                let name = match host {
                    url::Host::Domain(domain) => ServerName::try_from(domain.to_owned()),
                    url::Host::Ipv4(ip) => Ok(ServerName::from(std::net::IpAddr::V4(ip))),
                    url::Host::Ipv6(ip) => Ok(ServerName::from(std::net::IpAddr::V6(ip))),
                }
                .map_err(|e| SendError::Url(e.to_string()))?;
                let tls = self.tls.connect(name, tcp).await.map_err(SendError::Tls)?;
                exchange(tls, request).await
            }
            "http" => exchange(tcp, request).await,
            other => Err(SendError::Url(format!("scheme {other:?}"))),
        }
    }
}

/// HTTP/1.1 over an established stream: the response's status; the body is not read.
async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<u16, SendError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let answer = sender.send_request(request).await;
    connection.abort();
    Ok(answer?.status().as_u16())
}
