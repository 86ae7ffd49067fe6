//! `[api]` and `[[api.keys]]`: where the Management API listens and who may call it.
//! [`crate::config`] assembles them into the file.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::options::{from_str_value, wire_names, ConfigError};

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

    pub fn validate(&self) -> Result<(), ConfigError> {
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

wire_names!(ApiKeyKind { Pem => "pem", Jwks => "jwks", Hs256 => "hs256" });
