//! `[policy]`: what the engine decides with (mode, compared key, factors) and how a challenge ends
//! (`challenge_url`, the confirmation header). [`crate::config`] assembles it into the file.

use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use super::{CompareKey, Factor, Factors, Mode, Policy};
use crate::options::{from_str_value, ConfigError};

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
    pub mode: Mode,
    pub compare: CompareKey,
    pub challenge: FactorName,
    pub additional_factors: Vec<FactorName>,
    pub challenge_url: Option<String>,
    pub confirm_header: String,
    /// The built-in binding of CONTRACT §3; `false`: Actions alone decide and write.
    pub builtin: bool,
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
            builtin: true,
        }
    }
}

impl PolicyConfig {
    /// The engine's view; fails on repeated factors.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let additional: Vec<Factor> = self.additional_factors.iter().map(|f| f.0).collect();
        let factors = Factors::new(self.challenge.0, &additional)
            .map_err(|e| ConfigError::key("policy.additional_factors", e.to_string()))?;
        Ok(Policy {
            mode: self.mode,
            compare: self.compare,
            factors,
            has_challenge_url: self.challenge_url.is_some(),
            builtin_off: !self.builtin,
        })
    }
}
