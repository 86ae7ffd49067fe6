//! The policy knobs the engine reads (CONTRACT §3, §4): the compared key, the mode, and the
//! challenge factors, each with its exact wire name. Parsing from text lives here so the config
//! loader and the CLI accept the same spellings.

use crate::options::wire_names;

/// Which fingerprint key is compared (`[policy] compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompareKey {
    #[default]
    Ja4Stable,
    Ja4,
    Ja3n,
    Ja3,
}

wire_names!(CompareKey { Ja4Stable => "ja4_stable", Ja4 => "ja4", Ja3n => "ja3n", Ja3 => "ja3" });

/// `[policy] mode` (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Enforce,
    Annotate,
    Monitor,
}

wire_names!(Mode { Enforce => "enforce", Annotate => "annotate", Monitor => "monitor" });

/// An MFA factor a challenge can ask for (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Otp,
    Email,
    WebauthnPlatform,
    WebauthnRoaming,
    RecoveryCode,
    Phone,
    PushNotification,
}

wire_names!(Factor {
    Otp => "otp",
    Email => "email",
    WebauthnPlatform => "webauthn-platform",
    WebauthnRoaming => "webauthn-roaming",
    RecoveryCode => "recovery-code",
    Phone => "phone",
    PushNotification => "push-notification",
});

impl Factor {
    /// Parses a configured factor name; `push` is normalised to `push-notification` (§3).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "push" {
            return Ok(Self::PushNotification);
        }
        text.parse()
    }
}

/// Why a factor list is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactorsError {
    #[error("{0:?} repeats the primary factor (policy.challenge)")]
    RepeatsPrimary(&'static str),
    #[error("{0:?} is listed twice")]
    Duplicate(&'static str),
}

/// The factors of a challenge: a primary and ordered fallbacks, none repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factors {
    /// Primary first, then the additional ones: the order of the enforce-mode refresh answer.
    all: Vec<Factor>,
}

impl Factors {
    pub fn new(primary: Factor, additional: &[Factor]) -> Result<Self, FactorsError> {
        let mut all = vec![primary];
        for &factor in additional {
            if factor == primary {
                return Err(FactorsError::RepeatsPrimary(factor.as_str()));
            }
            if all.contains(&factor) {
                return Err(FactorsError::Duplicate(factor.as_str()));
            }
            all.push(factor);
        }
        Ok(Self { all })
    }

    pub fn primary(&self) -> Factor {
        // `new` always puts the primary first.
        self.all.first().copied().unwrap_or(Factor::Otp)
    }

    pub fn additional(&self) -> &[Factor] {
        self.all.get(1..).unwrap_or(&[])
    }

    /// Primary then additional.
    pub fn all(&self) -> &[Factor] {
        &self.all
    }
}

impl Default for Factors {
    /// `otp`, then `push-notification`, `phone` (§3).
    fn default() -> Self {
        Self { all: vec![Factor::Otp, Factor::PushNotification, Factor::Phone] }
    }
}

/// Everything `decide` needs from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    pub compare: CompareKey,
    pub factors: Factors,
    /// Whether `[policy] challenge_url` is set: decides how an enforce-mode login challenge ends.
    pub has_challenge_url: bool,
    /// `[policy] builtin = false`: the built-in binding does not run; Actions alone decide.
    pub builtin_off: bool,
}
