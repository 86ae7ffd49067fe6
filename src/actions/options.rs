//! `[actions]` (CONTRACT §11): the files, their limits, what an error decides, and the secrets
//! `event.secrets` carries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::options::{wire_names, ConfigDuration};

/// `[actions]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionsConfig {
    /// Files run in order, relative to the config file's directory.
    pub post_login: Vec<PathBuf>,
    /// Run time each invocation may take.
    pub timeout: ConfigDuration,
    /// Memory the Actions runtime may hold (`"16MiB"`, `"512KiB"`, or bytes).
    pub memory_limit: ByteSize,
    /// What a throwing, rejecting, looping or memory-hungry Action decides.
    pub on_error: OnError,
    /// `event.secrets`: NAME = "env:VARIABLE".
    pub secrets: BTreeMap<String, String>,
    /// A MaxMind DB City file for `event.request.geoip`, relative to the config file's directory.
    pub geoip_database: Option<PathBuf>,
    /// The config file's directory (set by the loader, not by the file).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            post_login: Vec::new(),
            timeout: ConfigDuration(Duration::from_millis(20)),
            memory_limit: ByteSize(16 * 1024 * 1024),
            on_error: OnError::Challenge,
            secrets: BTreeMap::new(),
            geoip_database: None,
            base_dir: None,
        }
    }
}

impl ActionsConfig {
    /// A configured path, relative to the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_owned(),
        }
    }

    /// `event.secrets`, or the name and reason of one that cannot be read.
    pub fn secret_values(&self) -> Result<serde_json::Map<String, serde_json::Value>, (String, String)> {
        let mut values = serde_json::Map::new();
        for (name, source) in &self.secrets {
            let Some(variable) = source.strip_prefix("env:") else {
                return Err((name.clone(), format!("{source:?}: write \"env:VARIABLE\"")));
            };
            let value = std::env::var(variable)
                .map_err(|_| (name.clone(), format!("environment variable {variable} is not set")))?;
            values.insert(name.clone(), serde_json::Value::String(value));
        }
        Ok(values)
    }
}

/// `[actions] on_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    #[default]
    Challenge,
    Deny,
    Allow,
}

wire_names!(OnError { Challenge => "challenge", Deny => "deny", Allow => "allow" });

/// A size in bytes, written `"16MiB"`, `"512KiB"` or as a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
        let scale = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1024,
            "MiB" => 1024 * 1024,
            "GiB" => 1024 * 1024 * 1024,
            other => return Err(format!("unknown unit {other:?} in {text:?}; write e.g. \"16MiB\" or \"512KiB\"")),
        };
        let number: usize = number.parse().map_err(|_| format!("{text:?} is not a size; write e.g. \"16MiB\""))?;
        match number.checked_mul(scale) {
            Some(bytes) if bytes >= 1024 * 1024 => Ok(Self(bytes)),
            Some(_) => Err(format!("{text:?} is too small: at least 1MiB")),
            None => Err(format!("{text:?} is too large")),
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::options::from_str_value(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("16MiB".parse(), Ok(ByteSize(16 << 20)));
        assert_eq!("2048KiB".parse(), Ok(ByteSize(2 << 20)));
        assert!("16MB".parse::<ByteSize>().is_err());
        assert!("1KiB".parse::<ByteSize>().is_err());
    }
}
