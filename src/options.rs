//! What every module's configuration options are made of: durations written as text, errors that
//! name the key path, the open/closed failure policy, and the one mechanism that gives an enum its
//! wire names ([`wire_names!`]). Each module owns its own option types (`session::StoreConfig`,
//! `proxy::options::ServerConfig`, …) built from these; [`crate::config`] assembles them into the
//! file and reports key paths. Nothing here depends on another module of the crate.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
    pub fn key(path: &str, message: impl Into<String>) -> Self {
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

/// `n` days.
pub fn days(n: u64) -> ConfigDuration {
    ConfigDuration(Duration::from_secs(n * 24 * 3600))
}

/// Implements `Display`, `Serialize`, `Deserialize` and `FromStr` from one table of (variant, wire
/// name), so the accepted spellings and the printed ones cannot drift apart. The `FromStr` error
/// is the message the config loader prints: `unknown value "x", expected one of a, b, c`.
macro_rules! wire_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in documentation order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::options::from_str_value(d)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::options::unknown_value(text, Self::ALL.iter().map(|v| v.as_str()))),
                }
            }
        }
    };
}
pub(crate) use wire_names;

/// `unknown value "x", expected one of a, b, c`.
pub fn unknown_value<'a>(text: &str, expected: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = expected.collect();
    format!("unknown value {text:?}, expected one of {}", names.join(", "))
}

/// `[server] capture_failure` and `[store] on_error`: go on without (open) or refuse (closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    #[default]
    Open,
    Closed,
}

wire_names!(FailurePolicy { Open => "open", Closed => "closed" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_parse_print_and_name_the_alternatives() {
        assert_eq!("closed".parse::<FailurePolicy>(), Ok(FailurePolicy::Closed));
        assert_eq!(FailurePolicy::Open.to_string(), "open");
        assert_eq!("shut".parse::<FailurePolicy>(), Err("unknown value \"shut\", expected one of open, closed".into()));
    }

    #[test]
    fn durations() {
        assert_eq!("1h 30m".parse::<ConfigDuration>(), Ok(ConfigDuration(Duration::from_secs(5400))));
        assert!("0s".parse::<ConfigDuration>().unwrap_err().contains("greater than zero"));
        assert!("soon".parse::<ConfigDuration>().unwrap_err().starts_with("invalid duration \"soon\""));
    }
}
