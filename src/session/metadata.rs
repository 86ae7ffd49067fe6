//! `session_metadata` / `refresh_token_metadata`: the validated flat string → string map of
//! CONTRACT §2, its exact error messages, and atomic edits.
//!
//! **Map order** (which entry is checked first when several are invalid) is the map's key order:
//! entries are kept and visited sorted by key bytes, whatever order the caller or a JSON document
//! listed them in. This is also `serde_json`'s own `Map` order, so validating a `serde_json::Value`
//! and validating the same pairs from Rust report the same first failure.
//!
//! Check #3 of §2 ("key is a string") cannot fail here: Rust keys and JSON object keys are always
//! strings, so it has no variant.
//!
//! Lengths are counted in UTF-16 code units, the unit of JavaScript's `.length`, which is what the
//! public reference counts.

use std::collections::BTreeMap;
use std::fmt;

use arrayvec::ArrayVec;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use smallvec::SmallVec;

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
    /// #3 (internal callers: an Action's `setMetadata(3, …)`; JSON keys always are strings)
    #[error("Invalid metadata: Metadata key must be a string")]
    KeyNotString,
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
    pub const ALL: [MetadataError; 9] = [
        Self::NotAnObject,
        Self::TooManyEntries,
        Self::KeyNotString,
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

/// `count` entries, given in map order: checks #2–#9 in order, first failure wins.
fn validate<'a>(count: usize, entries: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(), MetadataError> {
    if count > MAX_ENTRIES {
        return Err(MetadataError::TooManyEntries);
    }
    for (key, value) in entries {
        check_key(key)?;
        check_value(value)?;
    }
    Ok(())
}

/// A valid entry takes at most 255 bytes of key (ASCII only) and 765 of value (255 UTF-16 units,
/// three bytes each at most), so the text of a valid map always fits `u16` positions.
const _: () = assert!(MAX_ENTRIES * (MAX_LEN + 3 * MAX_LEN) <= u16::MAX as usize);

/// A valid metadata map. Every constructor and edit validates the whole candidate map first and
/// only then commits, so a `Metadata` value is always valid (§2 "atomicity").
///
/// Stored flat: every key and value back to back in one string, in map order, with where each
/// ends. Reading a record (which every login and refresh does) so allocates once, not once per
/// string plus the map's nodes; edits, which are rare, go through a `BTreeMap`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    text: String,
    /// Per entry, in map order: where its key ends and where its value ends in `text`. A key
    /// starts where the previous value ended.
    ends: ArrayVec<(u16, u16), MAX_ENTRIES>,
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FlatVisitor)
    }
}

/// Reads a map straight into the flat form: each string is appended to one buffer as it is read.
/// Entries in map order (as [`Metadata`] writes them) stay as they are; any other order, or a
/// repeated key, is sorted out as a map reads it (the last value of a key wins). Then §2 applies.
struct FlatVisitor;

impl<'de> Visitor<'de> for FlatVisitor {
    type Value = Metadata;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Metadata, A::Error> {
        let mut text = String::new();
        // Where each key and each value ends, in arrival order.
        let mut ends: SmallVec<[(usize, usize); MAX_ENTRIES]> = SmallVec::new();
        let mut in_order = true;
        while let Some(key_end) = access.next_key_seed(Append(&mut text))? {
            let value_end = access.next_value_seed(Append(&mut text))?;
            if let Some(&(previous_key_end, previous_value_end)) = ends.last() {
                let previous_key_start = ends.len().checked_sub(2).map_or(0, |i| ends[i].1);
                let key_start = previous_value_end;
                in_order &= text[key_start..key_end] > text[previous_key_start..previous_key_end];
            }
            ends.push((key_end, value_end));
        }
        let entries = || entries_of(&text, &ends);
        if in_order {
            validate(ends.len(), entries()).map_err(de::Error::custom)?;
            let ends = ends.iter().map(|&(key_end, value_end)| (key_end as u16, value_end as u16)).collect();
            return Ok(Metadata { text, ends });
        }
        let map: BTreeMap<&str, &str> = entries().collect();
        validate(map.len(), map.iter().map(|(k, v)| (*k, *v))).map_err(de::Error::custom)?;
        Ok(Metadata::from_valid(map))
    }
}

/// Each entry's key and value, from where each ends in `text`: a key starts where the previous
/// value ended.
fn entries_of<'t, E: Copy + Into<usize>>(
    text: &'t str,
    ends: &'t [(E, E)],
) -> impl Iterator<Item = (&'t str, &'t str)> + 't {
    let starts = std::iter::once(0).chain(ends.iter().map(|&(_, value_end)| value_end.into()));
    starts.zip(ends).map(|(start, &(key_end, value_end))| {
        let (key_end, value_end) = (key_end.into(), value_end.into());
        (&text[start..key_end], &text[key_end..value_end])
    })
}

/// Room for the text of a typical map (the engine's three fingerprints take about 110 bytes).
const TEXT_CAPACITY: usize = 256;

/// Appends the string it reads to a buffer and gives the buffer's new end.
struct Append<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for Append<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Append<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        if self.0.capacity() == 0 {
            // One allocation for a typical map; an empty one (`{}`) makes none.
            self.0.reserve(TEXT_CAPACITY.max(s.len()));
        }
        self.0.push_str(s);
        Ok(self.0.len())
    }
}

impl Metadata {
    /// The empty map (`{}`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The flat form of entries that are valid and in map order.
    fn from_valid<K: AsRef<str>, V: AsRef<str>>(entries: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut flat = Self::default();
        for (key, value) in entries {
            flat.text.push_str(key.as_ref());
            let key_end = flat.text.len() as u16;
            flat.text.push_str(value.as_ref());
            flat.ends.push((key_end, flat.text.len() as u16));
        }
        flat
    }

    /// The entries as a map of their own, to edit.
    fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    /// Validates pairs given by an internal caller. A repeated key keeps its last value.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, MetadataError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: BTreeMap<String, String> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let mut metadata = Self::new();
        metadata.commit(map)?;
        Ok(metadata)
    }

    /// Validates a JSON value as a whole replacement map (API PATCH): `null` entries are dropped,
    /// then the rest must satisfy §2. Non-string values are rejected, never coerced.
    pub fn from_json(value: &Value) -> Result<Self, MetadataError> {
        let map = Self::json_candidate(BTreeMap::new(), value)?;
        Ok(Self::from_valid(&map))
    }

    /// Applies a JSON object of changes to the current map (set operation): strings set, `null`
    /// deletes, anything else fails. All or nothing.
    pub fn merge_json(&mut self, changes: &Value) -> Result<(), MetadataError> {
        let current = self.iter().map(|(k, v)| (k.to_owned(), Some(v.to_owned())));
        let map = Self::json_candidate(current.collect(), changes)?;
        *self = Self::from_valid(&map);
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

    /// The map `edits` make of this one, validated whole (§2, in its order); this one unchanged.
    pub fn edited(&self, edits: &[MetadataEdit]) -> Result<Self, MetadataError> {
        let mut candidate: serde_json::Map<String, Value> =
            self.iter().map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))).collect();
        for edit in edits {
            match edit {
                MetadataEdit::Clear => candidate.clear(),
                MetadataEdit::Delete(key) | MetadataEdit::Set(key, Value::Null) => {
                    candidate.remove(key.as_str().ok_or(MetadataError::KeyNotString)?);
                }
                MetadataEdit::Set(key, value) => {
                    let key = key.as_str().ok_or(MetadataError::KeyNotString)?;
                    candidate.insert(key.to_owned(), value.clone());
                }
            }
        }
        Self::from_json(&Value::Object(candidate))
    }

    /// Sets one key. On error the map is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        self.merge([(key, value)])
    }

    /// Sets several keys at once (the engine's writes): all of them or none.
    pub fn merge<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        writes: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), MetadataError> {
        let mut candidate = self.to_map();
        for (k, v) in writes {
            candidate.insert(k.as_ref().to_owned(), v.as_ref().to_owned());
        }
        self.commit(candidate)
    }

    /// Deletes one key; returns its old value. Removing keys from a valid map keeps it valid.
    pub fn delete(&mut self, key: &str) -> Option<String> {
        let old = self.get(key)?.to_owned();
        self.evict([key]);
        Some(old)
    }

    /// Evicts several keys (e.g. the engine's three, so the next request binds afresh).
    pub fn evict<K: AsRef<str>>(&mut self, keys: impl IntoIterator<Item = K>) {
        let keys: Vec<K> = keys.into_iter().collect();
        let evicted = |key: &str| keys.iter().any(|k| k.as_ref() == key);
        if self.iter().any(|(key, _)| evicted(key)) {
            *self = Self::from_valid(self.iter().filter(|(key, _)| !evicted(key)));
        }
    }

    fn commit(&mut self, candidate: BTreeMap<String, String>) -> Result<(), MetadataError> {
        validate(candidate.len(), candidate.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        *self = Self::from_valid(&candidate);
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Entries in map order (sorted by key).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        entries_of(&self.text, &self.ends)
    }
}

/// One write an Action asked for (CONTRACT §11), in order: keys and values as the Action gave
/// them, so that a non-string one fails validation rather than being coerced.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataEdit {
    /// `setMetadata(key, value)`: a `null` value deletes.
    Set(Value, Value),
    /// `deleteMetadata(key)`.
    Delete(Value),
    /// `evictMetadata()`.
    Clear,
}
