//! The proxy's own sections of the file: `[server]`, `[tls]`, `[admin]`, `[headers]` and
//! `[[routes]]`. The proxy starts every other part and is configured by the whole file, so these
//! live here, beside the assembly, rather than in `proxy`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::options::{from_str_value, wire_names, ConfigDuration, ConfigError, FailurePolicy};

/// `[server]`: the TLS listener and where requests go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(deserialize_with = "from_str_value")]
    pub listen: std::net::SocketAddr,
    /// `builtin:demo` or an `http://host:port` base URL.
    #[serde(deserialize_with = "from_str_value")]
    pub upstream: Upstream,
    pub max_connections: usize,
    /// Event-loop threads, each accepting from the listener and serving its connections start to
    /// end; `0` (default): one per CPU core the process may run on.
    pub workers: usize,
    /// Cap on the ClientHello (handshake message bytes).
    pub max_hello_size: usize,
    /// Time to read the ClientHello; inside `handshake_timeout`.
    pub hello_timeout: ConfigDuration,
    pub handshake_timeout: ConfigDuration,
    pub header_read_timeout: ConfigDuration,
    /// A token-route request body must arrive whole within this (`408` and the connection closed
    /// after): a client trickling its body cannot hold a connection and its buffer for long.
    pub body_read_timeout: ConfigDuration,
    /// An HTTP/2 connection with no open stream for this long gets GOAWAY and is closed, whatever
    /// its pings (an HTTP/1.1 connection waits for its next request head `header_read_timeout`);
    /// also the HTTP/2 ping interval, and how long a drained connection may finish.
    pub idle_timeout: ConfigDuration,
    pub max_header_size: usize,
    /// `open` (default): a connection whose hello cannot be fingerprinted proceeds without one.
    /// `closed`: it is refused.
    #[serde(deserialize_with = "from_str_value")]
    pub capture_failure: FailurePolicy,
    /// `false`: no ClientHello capture at all; connections have no fingerprint, so sessions are
    /// recorded unbound and decisions say `fingerprint_unknown`. A kill switch, and the baseline
    /// of the proxy's CPU benchmark.
    pub fingerprinting: bool,
    /// On SIGTERM, in-flight requests get this long to finish.
    pub drain_timeout: ConfigDuration,
    /// Time to wait for the upstream's response headers (504 after).
    pub upstream_timeout: ConfigDuration,
    /// PROXY protocol from load balancers: `off` (default), `v1`, `v2` or `any`.
    #[serde(deserialize_with = "from_str_value")]
    pub proxy_protocol: ProxyProtocol,
    /// Peers that must send a PROXY header (CIDR blocks); from any other peer a header closes
    /// the connection.
    pub trusted_proxies: Vec<crate::net::Cidr>,
}

/// `[server] proxy_protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    #[default]
    Off,
    V1,
    V2,
    Any,
}

wire_names!(ProxyProtocol { Off => "off", V1 => "v1", V2 => "v2", Any => "any" });

/// `[server] workers` above this is surely a typo.
pub const MAX_WORKERS: usize = 1024;

impl ServerConfig {
    /// The number of event-loop threads `workers` asks for.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let secs = |n| ConfigDuration(Duration::from_secs(n));
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8443)),
            upstream: Upstream::Demo,
            max_connections: 10_000,
            workers: 0,
            max_hello_size: crate::hello::DEFAULT_MAX_LEN,
            hello_timeout: secs(5),
            handshake_timeout: secs(10),
            header_read_timeout: secs(10),
            body_read_timeout: secs(10),
            idle_timeout: secs(60),
            max_header_size: 64 * 1024,
            capture_failure: FailurePolicy::Open,
            fingerprinting: true,
            drain_timeout: secs(10),
            upstream_timeout: secs(30),
            proxy_protocol: ProxyProtocol::Off,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[server] upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The built-in demo login service, in process.
    Demo,
    /// An HTTP origin, e.g. `http://127.0.0.1:3000`.
    Http(String),
}

impl FromStr for Upstream {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "builtin:demo" {
            return Ok(Upstream::Demo);
        }
        let rest = text
            .strip_prefix("http://")
            .ok_or_else(|| format!("{text:?}: expected \"builtin:demo\" or an http:// URL"))?;
        if rest.is_empty() || rest.contains(['?', '#']) {
            return Err(format!("{text:?}: expected http://host[:port][/base]"));
        }
        crate::http::origin::split_origin(text)?;
        Ok(Upstream::Http(text.trim_end_matches('/').to_owned()))
    }
}

/// `[tls]`: PEM files; without them a self-signed certificate is generated in the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The default certificate (no SNI, or a name no `[[tls.certificates]]` entry serves).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Certificates per server name.
    pub certificates: Vec<CertificateConfig>,
    /// How often the PEM files are checked for changes (SIGHUP reloads at once).
    pub reload_interval: ConfigDuration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            certificates: Vec::new(),
            reload_interval: ConfigDuration(Duration::from_secs(2)),
        }
    }
}

/// `[[tls.certificates]]`: a certificate chain and key for some server names (`*.example.com`
/// matches one label).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    pub server_names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[admin]`: plain-HTTP `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// `"off"` disables the admin listener.
    pub listen: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: "127.0.0.1:9090".to_owned() }
    }
}

impl AdminConfig {
    /// The address, or `None` when disabled.
    pub fn address(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        if self.listen == "off" {
            return Ok(None);
        }
        self.listen.parse().map(Some).map_err(|e| ConfigError::key("admin.listen", format!("{:?}: {e}", self.listen)))
    }
}

/// `[headers]`: names of the headers sent upstream (CONTRACT §5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadersConfig {
    #[serde(deserialize_with = "from_str_value")]
    pub preset: HeaderPreset,
    pub ja3: Option<String>,
    pub ja4: Option<String>,
    pub ja4_stable: Option<String>,
    pub session_id: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub challenge: Option<String>,
    /// Keys of the live session's metadata sent on every request as `helloguard-session-metadata`
    /// (base64url JSON); `["*"]`: all keys (CONTRACT §11).
    pub forward_session_metadata: Vec<String>,
    /// Keys of the presented refresh token's metadata sent on a refresh exchange as
    /// `helloguard-refresh-token-metadata`.
    pub forward_refresh_token_metadata: Vec<String>,
}

impl Default for HeadersConfig {
    fn default() -> Self {
        Self {
            preset: HeaderPreset::Helloguard,
            ja3: None,
            ja4: None,
            ja4_stable: None,
            session_id: None,
            decision: None,
            reason: None,
            challenge: None,
            forward_session_metadata: Vec::new(),
            forward_refresh_token_metadata: Vec::new(),
        }
    }
}

/// `[headers] preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderPreset {
    Helloguard,
    Cloudfront,
}

wire_names!(HeaderPreset { Helloguard => "helloguard", Cloudfront => "cloudfront" });

/// `[[routes]]`: which requests are logins, token requests and logouts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(deserialize_with = "from_str_value")]
    pub kind: RouteKind,
    /// Exact path; a trailing `*` makes it a prefix. Matched on the normal form of the request's
    /// path (CONTRACT §1.1), ignoring ASCII case unless `case_sensitive`.
    pub path: String,
    /// Empty: every method.
    #[serde(default)]
    pub methods: Vec<String>,
    pub client_id: Option<String>,
    /// Match the path's case exactly (default: ignore ASCII case, as Express and others route).
    #[serde(default)]
    pub case_sensitive: bool,
}

/// `[[routes]] kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Login,
    Token,
    Logout,
}

wire_names!(RouteKind { Login => "login", Token => "token", Logout => "logout" });

/// The routes of the built-in demo, used when the file configures none.
pub fn default_routes() -> Vec<RouteConfig> {
    let route = |kind, path: &str| RouteConfig {
        kind,
        path: path.to_owned(),
        methods: vec!["POST".to_owned()],
        client_id: Some("demo".to_owned()),
        case_sensitive: false,
    };
    vec![
        route(RouteKind::Login, "/login"),
        route(RouteKind::Token, "/oauth/token"),
        route(RouteKind::Logout, "/logout"),
    ]
}
