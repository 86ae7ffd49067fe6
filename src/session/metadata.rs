//! `session_metadata` / `refresh_token_metadata`: the validated flat string → string map of
//! CONTRACT §2, its exact error messages, and atomic edits.
//!
//! **Map order** (which entry is checked first when several are invalid) is the map's key order:
//! the map is a `BTreeMap`, so entries are visited sorted by key bytes, whatever order the caller
//! or a JSON document listed them in. This is also `serde_json`'s own `Map` order, so validating a
//! `serde_json::Value` and validating the same pairs from Rust report the same first failure.
//!
//! Check #3 of §2 ("key is a string") cannot fail here: Rust keys and JSON object keys are always
//! strings, so it has no variant.
//!
//! Lengths are counted in UTF-16 code units, the unit of JavaScript's `.length`, which is what the
//! public reference counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many entries (§2).
pub const MAX_ENTRIES: usize = 25;
/// At most this many UTF-16 code units per key and per value (§2).
pub const MAX_LEN: usize = 255;

/// The API-facing message for count and length violations (CONTRACT §6.5).
pub const LIMITS_API_MESSAGE: &str =
    "Metadata must not exceed 25 entries. Each key and value must be ≤ 255 characters.";

/// A violation of §2, in validation order. `Display` is the verbatim inner message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// #1
    #[error("Invalid metadata: Metadata must be an object")]
    NotAnObject,
    /// #2
    #[error("Invalid metadata: Metadata must not contain more than 25 entries")]
    TooManyEntries,
    /// #4
    #[error("Invalid metadata: All metadata keys must be at most 255 characters long")]
    KeyTooLong,
    /// #5 (`\x00` is four ASCII characters, never a real NUL)
    #[error("Invalid metadata: Metadata keys must not contain null bytes (\\x00)")]
    KeyContainsNul,
    /// #6
    #[error("Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens")]
    KeyCharset,
    /// #7
    #[error("Invalid metadata: Metadata value must be a string")]
    ValueNotString,
    /// #8
    #[error("Invalid metadata: All metadata values must be at most 255 characters long")]
    ValueTooLong,
    /// #9
    #[error("Invalid metadata: Metadata values must not contain null bytes (\\x00)")]
    ValueContainsNul,
}

impl MetadataError {
    /// Every inner message of §2 this validator can produce, in table order.
    pub const ALL: [MetadataError; 8] = [
        Self::NotAnObject,
        Self::TooManyEntries,
        Self::KeyTooLong,
        Self::KeyContainsNul,
        Self::KeyCharset,
        Self::ValueNotString,
        Self::ValueTooLong,
        Self::ValueContainsNul,
    ];

    /// The message the Management API shows (§6.5): count and length violations share the seed
    /// documents' message, every other check keeps its inner message.
    pub fn api_message(&self) -> String {
        match self {
            Self::TooManyEntries | Self::KeyTooLong | Self::ValueTooLong => LIMITS_API_MESSAGE.to_owned(),
            other => other.to_string(),
        }
    }
}

/// Which record a metadata write targeted; chooses the wrapper and "does not exist" messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordKind {
    #[serde(rename = "session")]
    Session,
    #[serde(rename = "refresh_token")]
    RefreshToken,
}

impl RecordKind {
    /// `Failed to set session metadata: <inner>` (§2), logged and audited for failed engine writes.
    pub fn wrap(self, inner: &dyn std::fmt::Display) -> String {
        match self {
            Self::Session => format!("Failed to set session metadata: {inner}"),
            Self::RefreshToken => format!("Failed to set refresh token metadata: {inner}"),
        }
    }

    /// The message for a write to a record that was deleted meanwhile (§2).
    pub fn missing_message(self) -> &'static str {
        match self {
            Self::Session => "Cannot set metadata on a session that does not exist.",
            Self::RefreshToken => "Cannot set metadata on a refresh token that does not exist.",
        }
    }
}

/// Whether `s` is longer than [`MAX_LEN`] UTF-16 code units. A character never takes more
/// UTF-16 units than UTF-8 bytes, so a short string is decided by its byte length alone.
fn over_max_len(s: &str) -> bool {
    s.len() > MAX_LEN && s.chars().map(char::len_utf16).sum::<usize>() > MAX_LEN
}

fn check_key(key: &str) -> Result<(), MetadataError> {
    if over_max_len(key) {
        return Err(MetadataError::KeyTooLong);
    }
    if key.as_bytes().contains(&0) {
        return Err(MetadataError::KeyContainsNul);
    }
    // An empty key fails here too: the contract's charset rule is `{1,255}`.
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(MetadataError::KeyCharset);
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), MetadataError> {
    if over_max_len(value) {
        return Err(MetadataError::ValueTooLong);
    }
    if value.as_bytes().contains(&0) {
        return Err(MetadataError::ValueContainsNul);
    }
    Ok(())
}

/// A candidate map: checks #2–#9 in order, first failure wins.
fn validate(map: &BTreeMap<String, String>) -> Result<(), MetadataError> {
    if map.len() > MAX_ENTRIES {
        return Err(MetadataError::TooManyEntries);
    }
    for (key, value) in map {
        check_key(key)?;
        check_value(value)?;
    }
    Ok(())
}

/// A valid metadata map. Every constructor and edit validates the whole candidate map first and
/// only then commits, so a `Metadata` value is always valid (§2 "atomicity").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Metadata(BTreeMap<String, String>);

impl TryFrom<BTreeMap<String, String>> for Metadata {
    type Error = MetadataError;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        validate(&map)?;
        Ok(Self(map))
    }
}

impl From<Metadata> for BTreeMap<String, String> {
    fn from(m: Metadata) -> Self {
        m.0
    }
}

impl Metadata {
    /// The empty map (`{}`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates pairs given by an internal caller. A repeated key keeps its last value.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, MetadataError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: BTreeMap<String, String> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self::try_from(map)
    }

    /// Validates a JSON value as a whole replacement map (API PATCH): `null` entries are dropped,
    /// then the rest must satisfy §2. Non-string values are rejected, never coerced.
    pub fn from_json(value: &Value) -> Result<Self, MetadataError> {
        Self::json_candidate(BTreeMap::new(), value).map(Self)
    }

    /// Applies a JSON object of changes to the current map (set operation): strings set, `null`
    /// deletes, anything else fails. All or nothing.
    pub fn merge_json(&mut self, changes: &Value) -> Result<(), MetadataError> {
        let current = self.0.iter().map(|(k, v)| (k.clone(), Some(v.clone())));
        self.0 = Self::json_candidate(current.collect(), changes)?;
        Ok(())
    }

    /// Builds the candidate map (`None` marks a value of the wrong type, kept so that the count
    /// check #2 sees it and the per-entry checks report it in map order), then validates it.
    fn json_candidate(
        mut candidate: BTreeMap<String, Option<String>>,
        changes: &Value,
    ) -> Result<BTreeMap<String, String>, MetadataError> {
        let Value::Object(object) = changes else {
            return Err(MetadataError::NotAnObject);
        };
        for (key, value) in object {
            match value {
                Value::Null => {
                    candidate.remove(key);
                }
                Value::String(s) => {
                    candidate.insert(key.clone(), Some(s.clone()));
                }
                _ => {
                    candidate.insert(key.clone(), None);
                }
            }
        }
        if candidate.len() > MAX_ENTRIES {
            return Err(MetadataError::TooManyEntries);
        }
        let mut valid = BTreeMap::new();
        for (key, value) in candidate {
            check_key(&key)?;
            let value = value.ok_or(MetadataError::ValueNotString)?;
            check_value(&value)?;
            valid.insert(key, value);
        }
        Ok(valid)
    }

    /// Sets one key. On error the map is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let mut candidate = self.0.clone();
        candidate.insert(key.to_owned(), value.to_owned());
        self.commit(candidate)
    }

    /// Sets several keys at once (the engine's writes): all of them or none.
    pub fn merge<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        writes: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), MetadataError> {
        let mut candidate = self.0.clone();
        for (k, v) in writes {
            candidate.insert(k.as_ref().to_owned(), v.as_ref().to_owned());
        }
        self.commit(candidate)
    }

    /// Deletes one key; returns its old value. Removing keys from a valid map keeps it valid.
    pub fn delete(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// Evicts several keys (e.g. the engine's three, so the next request binds afresh).
    pub fn evict<K: AsRef<str>>(&mut self, keys: impl IntoIterator<Item = K>) {
        for key in keys {
            self.0.remove(key.as_ref());
        }
    }

    fn commit(&mut self, candidate: BTreeMap<String, String>) -> Result<(), MetadataError> {
        validate(&candidate)?;
        self.0 = candidate;
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in map order (sorted by key).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
