//! The TOML configuration file: defaults that work with no file at all, and errors that name the
//! key path (`policy.compare: unknown value "ja5", expected one of ja4_stable, ja4, ja3n, ja3`).
//!
//! This module owns `[store]`, `[session]`, `[refresh_tokens]` and `[policy]`. To add a section:
//! add a `#[serde(default)]` field of a type with a `Default` to [`Config`]; value types parse
//! through `FromStr` via [`from_str_value`] so their errors read like the rest; checks that span
//! several keys go into [`Config::validate`]. Unknown keys are errors, to catch typos.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::engine::{CompareKey, Factor, Factors, Mode, Policy};
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
    fn key(path: &str, message: impl Into<String>) -> Self {
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
    pub tombstone_ttl: ConfigDuration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            path: PathBuf::from("./data"),
            redis_url: None,
            redis_key_prefix: "helloguard".to_owned(),
            tombstone_ttl: days(30),
        }
    }
}

/// `[session]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub cookie_name: String,
    pub user_id_header: String,
    pub idle_timeout: ConfigDuration,
    pub absolute_timeout: ConfigDuration,
    pub sweep_interval: ConfigDuration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "session".to_owned(),
            user_id_header: "helloguard-user-id".to_owned(),
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

/// The whole file. Every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    pub session: SessionConfig,
    pub refresh_tokens: RefreshTokensConfig,
    pub policy: PolicyConfig,
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

    /// Rules that no single value's parser can see.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.policy()?;
        if self.store.backend == Backend::Redis && self.store.redis_url.is_none() {
            return Err(ConfigError::key("store.redis_url", "required when store.backend = \"redis\""));
        }
        if self.session.idle_timeout.0 > self.session.absolute_timeout.0 {
            return Err(ConfigError::key("session.idle_timeout", "must not be longer than session.absolute_timeout"));
        }
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
}
