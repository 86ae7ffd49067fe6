//! `[store]`, `[session]` and `[refresh_tokens]`: where records are kept and how long they live.
//! [`crate::config`] assembles these into the file.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Lifetimes;
use crate::options::{days, from_str_value, wire_names, ConfigDuration};

/// `[store] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    #[default]
    Embedded,
    Memory,
    Redis,
}

wire_names!(Backend { Embedded => "embedded", Memory => "memory", Redis => "redis" });

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
    pub on_error: crate::options::FailurePolicy,
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
            on_error: crate::options::FailurePolicy::Open,
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
    pub user_id_encoding: super::UserIdEncoding,
    pub idle_timeout: ConfigDuration,
    pub absolute_timeout: ConfigDuration,
    pub sweep_interval: ConfigDuration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "session".to_owned(),
            user_id_header: "helloguard-user-id".to_owned(),
            user_id_encoding: super::UserIdEncoding::Raw,
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
