//! The TOML configuration file: defaults that work with no file at all, and errors that name the
//! key path (`policy.compare: unknown value "ja5", expected one of ja4_stable, ja4, ja3n, ja3`).
//!
//! This module owns `[store]`, `[session]`, `[refresh_tokens]`, `[policy]` and the proxy's
//! sections; `[logout]` and `[[clients]]` live in [`crate::logout::config`]. To add a section:
//! add a `#[serde(default)]` field of a type with a `Default` to [`Config`]; value types parse
//! through `FromStr` via [`from_str_value`] so their errors read like the rest; checks that span
//! several keys go into [`Config::validate`]. Unknown keys are errors, to catch typos.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::engine::{CompareKey, Factor, Factors, Mode, Policy};
use crate::logout::config::{ClientConfig, LogoutConfig};
use crate::proxy::proxy_protocol::Cidr;
use crate::session::Lifetimes;

/// A configuration error, with the dotted key path it is about when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Key { path: String, message: String },
    #[error("{0}")]
    Syntax(String),
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
}

impl ConfigError {
    pub(crate) fn key(path: &str, message: impl Into<String>) -> Self {
        Self::Key { path: path.to_owned(), message: message.into() }
    }
}

/// Deserializes any `FromStr` type from a TOML string, keeping its error message.
pub fn from_str_value<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// A duration written as `"60s"`, `"3d"`, `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl FromStr for ConfigDuration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() => Ok(Self(d)),
            Ok(_) => Err(format!("invalid duration {text:?}: must be greater than zero")),
            Err(e) => Err(format!("invalid duration {text:?} ({e}); write e.g. \"60s\", \"15m\", \"3d\"")),
        }
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_value(d)
    }
}

fn days(n: u64) -> ConfigDuration {
    ConfigDuration(Duration::from_secs(n * 24 * 3600))
}

/// `[store] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    #[default]
    Embedded,
    Memory,
    Redis,
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "embedded" => Ok(Self::Embedded),
            "memory" => Ok(Self::Memory),
            "redis" => Ok(Self::Redis),
            _ => Err(format!("unknown value {text:?}, expected one of embedded, memory, redis")),
        }
    }
}

impl<'de> Deserialize<'de> for Backend {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_value(d)
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub backend: Backend,
    /// The data directory; the embedded store is `<path>/helloguard.redb`.
    pub path: PathBuf,
    /// Required with `backend = "redis"`.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key.
    pub redis_key_prefix: String,
    /// How long one Redis command (or the first connection) may take before it counts as a store
    /// failure; a Redis that hangs then fails like one that is down, per `on_error`.
    pub redis_timeout: ConfigDuration,
    pub tombstone_ttl: ConfigDuration,
    /// When the store cannot be read (e.g. Redis is down): `open` forwards login and token requests
    /// without a binding or a decision; `closed` answers them 503. Logged and counted either way.
    #[serde(deserialize_with = "from_str_value")]
    pub on_error: FailurePolicy,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            path: PathBuf::from("./data"),
            redis_url: None,
            redis_key_prefix: "helloguard".to_owned(),
            redis_timeout: ConfigDuration(Duration::from_secs(2)),
            tombstone_ttl: days(30),
            on_error: FailurePolicy::Open,
        }
    }
}

/// `[session]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub cookie_name: String,
    pub user_id_header: String,
    /// How the user id header's value carries the id: `raw` (UTF-8, default) or `percent`.
    #[serde(deserialize_with = "from_str_value")]
    pub user_id_encoding: crate::session::UserIdEncoding,
    pub idle_timeout: ConfigDuration,
    pub absolute_timeout: ConfigDuration,
    pub sweep_interval: ConfigDuration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "session".to_owned(),
            user_id_header: "helloguard-user-id".to_owned(),
            user_id_encoding: crate::session::UserIdEncoding::Raw,
            idle_timeout: days(3),
            absolute_timeout: days(30),
            sweep_interval: ConfigDuration(Duration::from_secs(60)),
        }
    }
}

impl SessionConfig {
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes { idle: self.idle_timeout.0, absolute: self.absolute_timeout.0 }
    }
}

/// `[refresh_tokens]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefreshTokensConfig {
    pub idle_timeout: ConfigDuration,
    pub absolute_timeout: ConfigDuration,
}

impl Default for RefreshTokensConfig {
    fn default() -> Self {
        Self { idle_timeout: days(3), absolute_timeout: days(30) }
    }
}

impl RefreshTokensConfig {
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes { idle: self.idle_timeout.0, absolute: self.absolute_timeout.0 }
    }
}

/// A factor name as written in the file (`push` normalised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactorName(pub Factor);

impl FromStr for FactorName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Factor::parse(text).map(Self)
    }
}

impl<'de> Deserialize<'de> for FactorName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_value(d)
    }
}

/// `[policy]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(deserialize_with = "from_str_value")]
    pub mode: Mode,
    #[serde(deserialize_with = "from_str_value")]
    pub compare: CompareKey,
    pub challenge: FactorName,
    pub additional_factors: Vec<FactorName>,
    pub challenge_url: Option<String>,
    pub confirm_header: String,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            compare: CompareKey::Ja4Stable,
            challenge: FactorName(Factor::Otp),
            additional_factors: vec![FactorName(Factor::PushNotification), FactorName(Factor::Phone)],
            challenge_url: None,
            confirm_header: "helloguard-mfa-confirmed".to_owned(),
        }
    }
}

impl PolicyConfig {
    /// The engine's view; fails on repeated factors.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let additional: Vec<Factor> = self.additional_factors.iter().map(|f| f.0).collect();
        let factors = Factors::new(self.challenge.0, &additional)
            .map_err(|e| ConfigError::key("policy.additional_factors", e.to_string()))?;
        Ok(Policy { mode: self.mode, compare: self.compare, factors, has_challenge_url: self.challenge_url.is_some() })
    }
}

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
    pub trusted_proxies: Vec<Cidr>,
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

impl ProxyProtocol {
    /// Whether a header of this version is accepted.
    pub fn accepts(self, version: crate::proxy::proxy_protocol::Version) -> bool {
        use crate::proxy::proxy_protocol::Version;
        matches!((self, version), (Self::Any, _) | (Self::V1, Version::V1) | (Self::V2, Version::V2))
    }
}

impl FromStr for ProxyProtocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "off" => Ok(Self::Off),
            "v1" => Ok(Self::V1),
            "v2" => Ok(Self::V2),
            "any" => Ok(Self::Any),
            other => Err(format!("unknown value {other:?}, expected one of off, v1, v2, any")),
        }
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_value(d)
    }
}

/// `[server] workers` above this is surely a typo.
const MAX_WORKERS: usize = 1024;

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
        crate::proxy::upstream::split_origin(text)?;
        Ok(Upstream::Http(text.trim_end_matches('/').to_owned()))
    }
}

/// `[server] capture_failure` and `[store] on_error`: go on without (open) or refuse (closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    #[default]
    Open,
    Closed,
}

impl FromStr for FailurePolicy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            other => Err(format!("unknown value {other:?}, expected one of open, closed")),
        }
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
        }
    }
}

/// `[headers] preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderPreset {
    Helloguard,
    Cloudfront,
}

impl FromStr for HeaderPreset {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "helloguard" => Ok(Self::Helloguard),
            "cloudfront" => Ok(Self::Cloudfront),
            other => Err(format!("unknown value {other:?}, expected one of helloguard, cloudfront")),
        }
    }
}

/// `[audit]`: where decision events go, one JSON object per line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// A file to append to; absent means standard output.
    pub path: Option<PathBuf>,
}

/// `[api]`: the Management API (CONTRACT §6).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// A separate listener for the API; absent: the API is on the proxy listener under `/api/v2/`.
    pub listen: Option<String>,
    /// Serve the separate listener as plain HTTP; only for a loopback `listen` address. Otherwise it
    /// speaks TLS with the proxy's certificate.
    pub plain_http: bool,
    /// A bearer token's `aud` must contain this.
    pub audience: String,
    /// When set, a bearer token's `iss` must equal it; also the `iss` of `helloguard token`.
    pub issuer: Option<String>,
    /// Keys that verify bearer tokens, besides the local management key.
    pub keys: Vec<ApiKeyConfig>,
    /// Token bucket per bearer token: its size...
    pub rate_limit_burst: u32,
    /// ...and how many requests per second refill it.
    #[serde(deserialize_with = "positive_rate")]
    pub rate_limit_per_second: PerSecond,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: None,
            plain_http: false,
            audience: "helloguard-management".to_owned(),
            issuer: None,
            keys: Vec::new(),
            rate_limit_burst: 50,
            rate_limit_per_second: PerSecond(10.0),
        }
    }
}

impl ApiConfig {
    /// The separate listener's address, or `None` when the API shares the proxy listener.
    pub fn address(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let Some(listen) = &self.listen else {
            return Ok(None);
        };
        listen.parse().map(Some).map_err(|e| ConfigError::key("api.listen", format!("{listen:?}: {e}")))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let address = self.address()?;
        if self.plain_http && !address.is_some_and(|a| a.ip().is_loopback()) {
            return Err(ConfigError::key("api.plain_http", "only allowed when api.listen is a loopback address"));
        }
        if self.audience.is_empty() {
            return Err(ConfigError::key("api.audience", "must not be empty"));
        }
        if self.rate_limit_burst == 0 {
            return Err(ConfigError::key("api.rate_limit_burst", "must be at least 1"));
        }
        for (i, key) in self.keys.iter().enumerate() {
            if key.kind == ApiKeyKind::Jwks && key.kid.is_some() {
                return Err(ConfigError::key(
                    &format!("api.keys[{i}].kid"),
                    "not used with kind = \"jwks\" (the file names its keys)",
                ));
            }
        }
        Ok(())
    }
}

/// A rate in events per second: finite and greater than zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerSecond(pub f64);

// Never NaN (see `positive_rate`), so equality is an equivalence.
impl Eq for PerSecond {}

fn positive_rate<'de, D: Deserializer<'de>>(d: D) -> Result<PerSecond, D::Error> {
    let rate = f64::deserialize(d)?;
    if rate.is_finite() && rate > 0.0 {
        Ok(PerSecond(rate))
    } else {
        Err(serde::de::Error::custom(format!("{rate} is not a rate: must be a number greater than zero")))
    }
}

/// `[[api.keys]]`: one file of bearer-token verification keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    #[serde(deserialize_with = "from_str_value")]
    pub kind: ApiKeyKind,
    pub path: PathBuf,
    /// The `kid` tokens signed with this key carry (`pem` and `hs256` only).
    pub kid: Option<String>,
}

/// `[[api.keys]] kind`: what the file holds. Explicit, so that a public key can never be taken
/// for an HS256 secret (algorithm confusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyKind {
    /// A PEM public key: EC P-256 (ES256) or RSA (RS256).
    Pem,
    /// A JSON Web Key Set: EC P-256, RSA and `oct` keys.
    Jwks,
    /// A shared secret (the file's bytes, at least 32) for HS256.
    Hs256,
}

impl FromStr for ApiKeyKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "pem" => Ok(Self::Pem),
            "jwks" => Ok(Self::Jwks),
            "hs256" => Ok(Self::Hs256),
            other => Err(format!("unknown value {other:?}, expected one of pem, jwks, hs256")),
        }
    }
}

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

impl FromStr for RouteKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "login" => Ok(Self::Login),
            "token" => Ok(Self::Token),
            "logout" => Ok(Self::Logout),
            other => Err(format!("unknown value {other:?}, expected one of login, token, logout")),
        }
    }
}

/// The routes of the built-in demo, used when the file configures none.
fn default_routes() -> Vec<RouteConfig> {
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

/// The whole file. Every section is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    pub session: SessionConfig,
    pub refresh_tokens: RefreshTokensConfig,
    pub policy: PolicyConfig,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub admin: AdminConfig,
    pub headers: HeadersConfig,
    pub audit: AuditConfig,
    pub api: ApiConfig,
    #[serde(default = "default_routes")]
    pub routes: Vec<RouteConfig>,
    pub logout: LogoutConfig,
    pub clients: Vec<ClientConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store: StoreConfig::default(),
            session: SessionConfig::default(),
            refresh_tokens: RefreshTokensConfig::default(),
            policy: PolicyConfig::default(),
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            admin: AdminConfig::default(),
            headers: HeadersConfig::default(),
            audit: AuditConfig::default(),
            api: ApiConfig::default(),
            routes: default_routes(),
            logout: LogoutConfig::default(),
            clients: Vec::new(),
        }
    }
}

impl Config {
    /// Parses TOML text, then checks rules that span keys.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let config: Self = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().message().to_owned();
            if path == "." {
                ConfigError::Syntax(message)
            } else {
                ConfigError::Key { path, message }
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.display().to_string(), message: e.to_string() })?;
        Self::from_toml(&text)
    }

    /// Accepted but discouraged settings, one line each (`check-config` prints them).
    pub fn warnings(&self) -> Vec<String> {
        crate::logout::config::warnings(&self.clients)
    }

    /// Rules that no single value's parser can see.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.policy()?;
        if self.store.backend == Backend::Redis && self.store.redis_url.is_none() {
            return Err(ConfigError::key("store.redis_url", "required when store.backend = \"redis\""));
        }
        if self.session.idle_timeout.0 > self.session.absolute_timeout.0 {
            return Err(ConfigError::key("session.idle_timeout", "must not be longer than session.absolute_timeout"));
        }
        self.validate_proxy()?;
        crate::logout::config::validate(&self.logout, &self.clients)?;
        self.api.validate()?;
        for (path, value) in [
            ("session.cookie_name", &self.session.cookie_name),
            ("session.user_id_header", &self.session.user_id_header),
            ("policy.confirm_header", &self.policy.confirm_header),
        ] {
            if value.is_empty() {
                return Err(ConfigError::key(path, "must not be empty"));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The proxy sections' cross-key rules.
    fn validate_proxy(&self) -> Result<(), ConfigError> {
        if self.server.hello_timeout.0 > self.server.handshake_timeout.0 {
            return Err(ConfigError::key("server.hello_timeout", "must not be longer than server.handshake_timeout"));
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError::key("server.max_connections", "must be at least 1"));
        }
        if self.server.workers > MAX_WORKERS {
            return Err(ConfigError::key("server.workers", format!("must be at most {MAX_WORKERS} (0: one per core)")));
        }
        if !(512..=1 << 20).contains(&self.server.max_hello_size) {
            return Err(ConfigError::key("server.max_hello_size", "must be between 512 and 1048576 bytes"));
        }
        if self.server.proxy_protocol != ProxyProtocol::Off && self.server.trusted_proxies.is_empty() {
            return Err(ConfigError::key("server.trusted_proxies", "required when server.proxy_protocol is on"));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::key("tls.key", "tls.cert and tls.key go together"));
        }
        for (i, pair) in self.tls.certificates.iter().enumerate() {
            if pair.server_names.is_empty() || pair.server_names.iter().any(|n| n.is_empty()) {
                return Err(ConfigError::key(
                    &format!("tls.certificates[{i}].server_names"),
                    "must list at least one non-empty server name",
                ));
            }
        }
        self.admin.address()?;
        for (i, route) in self.routes.iter().enumerate() {
            if !route.path.starts_with('/') {
                return Err(ConfigError::key(&format!("routes[{i}].path"), "must start with /"));
            }
            for method in &route.methods {
                if hyper::Method::from_bytes(method.as_bytes()).is_err() {
                    return Err(ConfigError::key(
                        &format!("routes[{i}].methods"),
                        format!("{method:?} is not a method"),
                    ));
                }
            }
        }
        if let Some(url) = &self.policy.challenge_url {
            let path = url.split(['?', '#']).next().unwrap_or_default();
            let path =
                path.find("://").map_or(path, |at| path[at + 3..].find('/').map_or("/", |p| &path[at + 3 + p..]));
            let path = crate::http::path::normalise(path);
            let login = |r: &RouteConfig| crate::http::path::PathPattern::new(&r.path, r.case_sensitive).matches(&path);
            if self.routes.iter().any(|r| r.kind == RouteKind::Login && login(r)) {
                return Err(ConfigError::key("policy.challenge_url", "must not be a login route (it would loop)"));
            }
        }
        for (path, value) in [
            ("headers.ja3", &self.headers.ja3),
            ("headers.ja4", &self.headers.ja4),
            ("headers.ja4_stable", &self.headers.ja4_stable),
            ("headers.session_id", &self.headers.session_id),
            ("headers.decision", &self.headers.decision),
            ("headers.reason", &self.headers.reason),
            ("headers.challenge", &self.headers.challenge),
        ] {
            if let Some(name) = value {
                if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(ConfigError::key(path, format!("{name:?} is not a valid header name")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match Config::from_toml(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn no_file_means_working_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.store.backend, Backend::Embedded);
        assert_eq!(c.store.path, PathBuf::from("./data"));
        assert_eq!(c.store.tombstone_ttl.0, Duration::from_secs(30 * 86400));
        assert_eq!(c.session.cookie_name, "session");
        assert_eq!(c.session.user_id_header, "helloguard-user-id");
        assert_eq!(c.session.lifetimes(), Lifetimes::default());
        assert_eq!(c.session.sweep_interval.0, Duration::from_secs(60));
        assert_eq!(c.refresh_tokens.lifetimes(), Lifetimes::default());
        let p = c.policy.policy().unwrap();
        assert_eq!((p.mode, p.compare), (Mode::Enforce, CompareKey::Ja4Stable));
        assert_eq!(p.factors.all(), [Factor::Otp, Factor::PushNotification, Factor::Phone]);
        assert_eq!(c.policy.confirm_header, "helloguard-mfa-confirmed");
        assert!(!p.has_challenge_url);
    }

    #[test]
    fn values_parse() {
        let c = Config::from_toml(
            r#"
            [store]
            backend = "redis"
            redis_url = "redis://127.0.0.1:6379"
            tombstone_ttl = "7d"
            redis_timeout = "750ms"
            on_error = "closed"
            [session]
            idle_timeout = "1h 30m"
            absolute_timeout = "2days"
            sweep_interval = "15s"
            [refresh_tokens]
            idle_timeout = "10d"
            absolute_timeout = "90d"
            [policy]
            mode = "monitor"
            compare = "ja3n"
            challenge = "webauthn-platform"
            additional_factors = ["push", "recovery-code"]
            challenge_url = "https://idp.example/mfa"
            "#,
        )
        .unwrap();
        assert_eq!(c.store.backend, Backend::Redis);
        assert_eq!(c.store.tombstone_ttl.0, Duration::from_secs(7 * 86400));
        assert_eq!(c.store.redis_timeout.0, Duration::from_millis(750));
        assert_eq!(c.store.on_error, FailurePolicy::Closed);
        assert_eq!(c.session.idle_timeout.0, Duration::from_secs(5400));
        assert_eq!(c.session.sweep_interval.0, Duration::from_secs(15));
        let p = c.policy.policy().unwrap();
        assert_eq!((p.mode, p.compare, p.has_challenge_url), (Mode::Monitor, CompareKey::Ja3n, true));
        assert_eq!(p.factors.all(), [Factor::WebauthnPlatform, Factor::PushNotification, Factor::RecoveryCode]);
    }

    #[test]
    fn errors_name_the_key_path() {
        assert_eq!(
            error("[policy]\ncompare = \"ja5\""),
            r#"policy.compare: unknown value "ja5", expected one of ja4_stable, ja4, ja3n, ja3"#
        );
        assert_eq!(
            error("[policy]\nmode = \"block\""),
            r#"policy.mode: unknown value "block", expected one of enforce, annotate, monitor"#
        );
        assert_eq!(
            error("[store]\nbackend = \"sqlite\""),
            r#"store.backend: unknown value "sqlite", expected one of embedded, memory, redis"#
        );
        assert!(error("[policy]\nadditional_factors = [\"otp2\"]")
            .starts_with(r#"policy.additional_factors[0]: unknown value "otp2", expected one of otp, email,"#));
        assert!(
            error("[session]\nidle_timeout = \"soon\"").starts_with("session.idle_timeout: invalid duration \"soon\"")
        );
        assert!(error("[session]\nidle_timeout = \"0s\"").starts_with("session.idle_timeout: "));
        assert!(error("[session]\nidle_timeout = 60").starts_with("session.idle_timeout: invalid type"));
        assert!(error("[store]\ntombstone = \"1d\"").starts_with("store.tombstone: unknown field `tombstone`"));
        assert!(error("[polciy]\nmode = \"x\"").starts_with("polciy: unknown field `polciy`"));
        assert_eq!(error("[store]\nbackend = \"redis\""), r#"store.redis_url: required when store.backend = "redis""#);
        assert_eq!(
            error("[session]\nidle_timeout = \"40d\""),
            "session.idle_timeout: must not be longer than session.absolute_timeout"
        );
        assert!(error("[policy\n").contains("TOML parse error"));
        assert_eq!(
            error("[[tls.certificates]]\nserver_names = []\ncert = \"a.pem\"\nkey = \"a.key\""),
            "tls.certificates[0].server_names: must list at least one non-empty server name"
        );
        assert_eq!(
            error("[server]\nproxy_protocol = \"v2\""),
            "server.trusted_proxies: required when server.proxy_protocol is on"
        );
        assert_eq!(
            error("[server]\nproxy_protocol = \"v3\""),
            r#"server.proxy_protocol: unknown value "v3", expected one of off, v1, v2, any"#
        );
        assert_eq!(
            error("[server]\nproxy_protocol = \"any\"\ntrusted_proxies = [\"10.0.0.0/8\", \"10.1.0.0/40\"]"),
            r#"server.trusted_proxies[1]: "10.1.0.0/40": prefix must be 0-32"#
        );
        assert_eq!(
            error("[store]\non_error = \"retry\""),
            r#"store.on_error: unknown value "retry", expected one of open, closed"#
        );
    }

    #[test]
    fn repeated_factors_are_errors() {
        assert_eq!(
            error("[policy]\nadditional_factors = [\"phone\", \"phone\"]"),
            r#"policy.additional_factors: "phone" is listed twice"#
        );
        assert_eq!(
            error("[policy]\nadditional_factors = [\"push-notification\", \"push\"]"),
            r#"policy.additional_factors: "push-notification" is listed twice"#
        );
        assert_eq!(
            error("[policy]\nadditional_factors = [\"otp\"]"),
            r#"policy.additional_factors: "otp" repeats the primary factor (policy.challenge)"#
        );
        let c = Config::from_toml("[policy]\nadditional_factors = []").unwrap();
        assert_eq!(c.policy.policy().unwrap().factors.additional(), []);
    }

    #[test]
    fn api_section() {
        let c = Config::from_toml("").unwrap();
        assert_eq!((c.api.audience.as_str(), c.api.rate_limit_burst), ("helloguard-management", 50));
        assert_eq!((c.api.rate_limit_per_second, c.api.address()), (PerSecond(10.0), Ok(None)));
        let c = Config::from_toml(
            r#"
            [api]
            listen = "127.0.0.1:9443"
            plain_http = true
            issuer = "https://login.example/"
            rate_limit_per_second = 0.5
            [[api.keys]]
            kind = "jwks"
            path = "/etc/helloguard/idp.jwks"
            [[api.keys]]
            kind = "hs256"
            path = "/etc/helloguard/secret"
            kid = "shared"
            "#,
        )
        .unwrap();
        assert_eq!(c.api.rate_limit_per_second, PerSecond(0.5));
        assert_eq!(c.api.keys[1].kind, ApiKeyKind::Hs256);
        assert_eq!(c.api.keys[1].kid.as_deref(), Some("shared"));
        assert_eq!(
            error("[api]\nlisten = \"0.0.0.0:9443\"\nplain_http = true"),
            "api.plain_http: only allowed when api.listen is a loopback address"
        );
        assert_eq!(
            error("[api]\nplain_http = true"),
            "api.plain_http: only allowed when api.listen is a loopback address"
        );
        assert!(error("[api]\nlisten = \"nowhere\"").starts_with("api.listen: \"nowhere\": "));
        assert_eq!(error("[api]\naudience = \"\""), "api.audience: must not be empty");
        assert_eq!(error("[api]\nrate_limit_burst = 0"), "api.rate_limit_burst: must be at least 1");
        assert!(error("[api]\nrate_limit_per_second = 0").starts_with("api.rate_limit_per_second: 0 is not a rate"));
        assert!(
            error("[api]\nrate_limit_per_second = -1.5").starts_with("api.rate_limit_per_second: -1.5 is not a rate")
        );
        assert_eq!(
            error("[[api.keys]]\nkind = \"x509\"\npath = \"k\""),
            r#"api.keys[0].kind: unknown value "x509", expected one of pem, jwks, hs256"#
        );
        assert!(error("[[api.keys]]\nkind = \"pem\"").starts_with("api.keys[0]: missing field `path`"));
        assert_eq!(
            error("[[api.keys]]\nkind = \"jwks\"\npath = \"k\"\nkid = \"a\""),
            r#"api.keys[0].kid: not used with kind = "jwks" (the file names its keys)"#
        );
    }
}
