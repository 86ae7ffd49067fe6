//! `[logout]` and `[[clients]]` (CONTRACT §8): who hears of an ended session, how tokens are
//! signed, how deliveries are retried. Per-client settings take the reference's `oidc_logout`
//! shape; `oidc_backchannel_logout` is its deprecated alias (accepted, warned about).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::INITIATOR_NAMES;
use crate::options::{from_str_value, wire_names, ConfigDuration, ConfigError};

/// `[logout] alg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    /// ECDSA on P-256 with SHA-256.
    #[default]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of at least 2048 bits.
    Rs256,
}

wire_names!(SigningAlg { Es256 => "ES256", Rs256 => "RS256" });

/// `[logout]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogoutConfig {
    /// The logout token's `iss`; required once any client has `oidc_logout`.
    pub issuer: Option<String>,
    pub alg: SigningAlg,
    /// PEM private key (PKCS#8; RSA also PKCS#1). Absent: generated into
    /// `<store.path>/keys/logout-<alg>.pem` on first start.
    pub key_file: Option<PathBuf>,
    /// PEM public keys still published in the JWKS after a key rotation.
    pub retired_public_keys: Vec<PathBuf>,
    pub jwks_path: String,
    pub max_attempts: u32,
    /// Deliveries in flight at once.
    pub workers: usize,
    /// Allow `http://` back-channel URLs (tests, internal networks).
    pub allow_insecure_urls: bool,
    /// PEM certificates trusted for RP URLs besides the public web roots.
    pub ca_file: Option<PathBuf>,
    /// Time for one delivery attempt (connect, TLS, request, response head).
    pub timeout: ConfigDuration,
    /// Attempt n+1 waits min(retry_base × 2^(n−1), 300 s) ± 20 %.
    pub retry_base: ConfigDuration,
}

impl Default for LogoutConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            alg: SigningAlg::Es256,
            key_file: None,
            retired_public_keys: Vec::new(),
            jwks_path: "/.well-known/jwks.json".to_owned(),
            max_attempts: 8,
            workers: 16,
            allow_insecure_urls: false,
            ca_file: None,
            timeout: ConfigDuration(Duration::from_secs(5)),
            retry_base: ConfigDuration(Duration::from_secs(1)),
        }
    }
}

/// `[[clients]] logout_token_typ`: the JWT header's `typ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenTyp {
    /// `logout+jwt`, as OIDC Back-Channel Logout 1.0 recommends.
    #[default]
    LogoutJwt,
    /// `JWT`, for relying parties that pinned Auth0's header.
    Jwt,
}

wire_names!(TokenTyp { LogoutJwt => "logout+jwt", Jwt => "JWT" });

/// One name of the reference's initiator enum (helloguard raises three of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiatorName(pub String);

impl FromStr for InitiatorName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if INITIATOR_NAMES.contains(&text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("unknown value {text:?}, expected one of {}", INITIATOR_NAMES.join(", ")))
        }
    }
}

impl<'de> Deserialize<'de> for InitiatorName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_value(d)
    }
}

/// `backchannel_logout_initiators.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitiatorMode {
    All,
    Custom,
}

wire_names!(InitiatorMode { All => "all", Custom => "custom" });

/// `backchannel_logout_initiators`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitiatorsConfig {
    pub mode: InitiatorMode,
    /// Required with `mode = "custom"`.
    pub selected_initiators: Option<Vec<InitiatorName>>,
}

impl Default for InitiatorsConfig {
    /// The reference's default: RP- and IdP-initiated logouts only.
    fn default() -> Self {
        let names = ["rp-logout", "idp-logout"].map(|n| InitiatorName(n.to_owned()));
        Self { mode: InitiatorMode::Custom, selected_initiators: Some(names.to_vec()) }
    }
}

impl InitiatorsConfig {
    /// Whether a session ended by `initiator` is announced.
    pub fn enables(&self, initiator: &str) -> bool {
        match self.mode {
            InitiatorMode::All => true,
            InitiatorMode::Custom => self.selected_initiators.iter().flatten().any(|n| n.0 == initiator),
        }
    }
}

/// `backchannel_logout_session_metadata`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionMetadataConfig {
    pub include: bool,
}

/// `[clients.oidc_logout]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcLogout {
    pub backchannel_logout_urls: Vec<String>,
    #[serde(default)]
    pub backchannel_logout_initiators: InitiatorsConfig,
    /// Absent means `include = false`.
    #[serde(default)]
    pub backchannel_logout_session_metadata: SessionMetadataConfig,
}

/// `[[clients]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    #[serde(default)]
    pub logout_token_typ: TokenTyp,
    pub oidc_logout: Option<OidcLogout>,
    /// Deprecated alias of `oidc_logout`.
    pub oidc_backchannel_logout: Option<OidcLogout>,
}

impl ClientConfig {
    /// The back-channel settings, under either name.
    pub fn logout(&self) -> Option<&OidcLogout> {
        self.oidc_logout.as_ref().or(self.oidc_backchannel_logout.as_ref())
    }
}

/// Checks that span keys of `[logout]` and `[[clients]]`.
pub fn validate(logout: &LogoutConfig, clients: &[ClientConfig]) -> Result<(), ConfigError> {
    if !logout.jwks_path.starts_with('/') {
        return Err(ConfigError::key("logout.jwks_path", "must start with /"));
    }
    if logout.max_attempts == 0 {
        return Err(ConfigError::key("logout.max_attempts", "must be at least 1"));
    }
    if logout.workers == 0 {
        return Err(ConfigError::key("logout.workers", "must be at least 1"));
    }
    for (i, client) in clients.iter().enumerate() {
        let at = |key: &str| format!("clients[{i}].{key}");
        if client.client_id.is_empty() {
            return Err(ConfigError::key(&at("client_id"), "must not be empty"));
        }
        if clients[..i].iter().any(|c| c.client_id == client.client_id) {
            return Err(ConfigError::key(&at("client_id"), format!("{:?} is configured twice", client.client_id)));
        }
        let section = match (&client.oidc_logout, &client.oidc_backchannel_logout) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::key(
                    &at("oidc_backchannel_logout"),
                    "is the deprecated name of oidc_logout; set only one of them",
                ))
            }
            (Some(settings), None) => ("oidc_logout", settings),
            (None, Some(settings)) => ("oidc_backchannel_logout", settings),
            (None, None) => continue,
        };
        validate_client_logout(logout, &at(section.0), section.1)?;
        if logout.issuer.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::key(
                "logout.issuer",
                format!("required when a client has oidc_logout ({})", at(section.0)),
            ));
        }
    }
    Ok(())
}

fn validate_client_logout(logout: &LogoutConfig, at: &str, settings: &OidcLogout) -> Result<(), ConfigError> {
    if settings.backchannel_logout_urls.is_empty() {
        return Err(ConfigError::key(&format!("{at}.backchannel_logout_urls"), "must list at least one URL"));
    }
    for (j, url) in settings.backchannel_logout_urls.iter().enumerate() {
        check_url(url, logout.allow_insecure_urls)
            .map_err(|message| ConfigError::key(&format!("{at}.backchannel_logout_urls[{j}]"), message))?;
    }
    let initiators = &settings.backchannel_logout_initiators;
    if initiators.mode == InitiatorMode::Custom && initiators.selected_initiators.is_none() {
        return Err(ConfigError::key(
            &format!("{at}.backchannel_logout_initiators.selected_initiators"),
            "required when mode = \"custom\"",
        ));
    }
    Ok(())
}

/// An absolute `https` URL without a fragment (`http` only when allowed).
fn check_url(text: &str, allow_insecure: bool) -> Result<(), String> {
    if text.trim() != text {
        return Err(format!("{text:?} must not have surrounding spaces"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => return Err(format!("{text:?}: http URLs need logout.allow_insecure_urls = true")),
        other => return Err(format!("{text:?}: scheme {other:?} is not https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if url.fragment().is_some() {
        return Err(format!("{text:?} must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} must not carry credentials"));
    }
    Ok(())
}

/// What `check-config` warns about: deprecated names still accepted.
pub fn warnings(clients: &[ClientConfig]) -> Vec<String> {
    clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.oidc_backchannel_logout.is_some())
        .map(|(i, _)| {
            format!("clients[{i}].oidc_backchannel_logout is deprecated; rename it to clients[{i}].oidc_logout")
        })
        .collect()
}
