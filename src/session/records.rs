//! The `Session` and `RefreshToken` records (CONTRACT §1, §6.4), their ids, timestamps, lifetimes
//! (§7), refresh-token rotation and tombstones.
//!
//! Records serialize in the Management API's shape (§6.4). The store's bookkeeping (the version
//! used for compare-and-swap) lives beside a record in [`Versioned`], never inside it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::metadata::Metadata;

/// Milliseconds since the Unix epoch, UTC. Serialized as RFC 3339 with milliseconds and `Z`
/// (`2025-01-15T09:30:00.000Z`), the only timestamp form of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// `self + d`, saturating: a huge configured lifetime must not wrap into the past.
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(ms))
    }

    pub fn rfc3339(self) -> String {
        let ms = u64::try_from(self.0).unwrap_or(0);
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let ms = t.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0);
        Self(ms)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map(Timestamp::from).map_err(serde::de::Error::custom)
    }
}

/// `prefix` + the first 32 chars of base64url-no-pad(SHA-256(`domain` ‖ secret)) (§1). The secret
/// itself goes nowhere else.
fn derive_id(prefix: &str, domain: &[u8], secret: &[u8]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(domain);
    context.update(secret);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(context.finish());
    // 32 bytes encode to 43 ASCII chars, so the first 32 always exist.
    let head: String = encoded.chars().take(32).collect();
    format!("{prefix}{head}")
}

/// The session id for a raw session cookie value (`ses_…`).
pub fn session_id(cookie_value: impl AsRef<[u8]>) -> String {
    derive_id("ses_", b"helloguard/session\0", cookie_value.as_ref())
}

/// The refresh-token id for a raw refresh token (`rt_…`).
pub fn refresh_token_id(token: &str) -> String {
    derive_id("rt_", b"helloguard/refresh-token\0", token.as_bytes())
}

/// Idle and absolute lifetimes of one record kind (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self { idle: Duration::from_secs(3 * 24 * 3600), absolute: Duration::from_secs(30 * 24 * 3600) }
    }
}

/// Client address and user agent of the creating and of the last request (§6.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub initial_ip: Option<String>,
    pub initial_user_agent: Option<String>,
    pub last_ip: Option<String>,
    pub last_user_agent: Option<String>,
}

impl Device {
    pub fn new(ip: Option<String>, user_agent: Option<String>) -> Self {
        Self {
            initial_ip: ip.clone(),
            initial_user_agent: user_agent.clone(),
            last_ip: ip,
            last_user_agent: user_agent,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRef {
    pub client_id: String,
}

/// A login session (§6.4 shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub authenticated_at: Timestamp,
    pub last_interacted_at: Timestamp,
    pub idle_expires_at: Timestamp,
    pub expires_at: Timestamp,
    pub device: Device,
    pub clients: Vec<ClientRef>,
    pub session_metadata: Metadata,
}

impl Session {
    pub fn new(id: String, now: Timestamp, lifetimes: Lifetimes, device: Device) -> Self {
        let expires_at = now.plus(lifetimes.absolute);
        Self {
            id,
            user_id: None,
            created_at: now,
            updated_at: now,
            authenticated_at: now,
            last_interacted_at: now,
            idle_expires_at: now.plus(lifetimes.idle).min(expires_at),
            expires_at,
            device,
            clients: Vec::new(),
            session_metadata: Metadata::new(),
        }
    }

    /// A proxied request on the session: moves the idle expiry, never past the absolute one.
    pub fn touch(&mut self, now: Timestamp, lifetimes: Lifetimes) {
        self.last_interacted_at = now;
        self.idle_expires_at = now.plus(lifetimes.idle).min(self.expires_at);
    }

    /// The first moment the session counts as expired (§7).
    pub fn ends_at(&self) -> Timestamp {
        self.idle_expires_at.min(self.expires_at)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.ends_at()
    }
}

/// `[{"audience", "scopes"}]` of a refresh token (§6.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceServer {
    pub audience: String,
    pub scopes: String,
}

/// A refresh token record (§6.4 shape, plus `retired_at` for rotated-away tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub id: String,
    pub user_id: Option<String>,
    pub created_at: Timestamp,
    pub idle_expires_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_exchanged_at: Option<Timestamp>,
    pub device: Device,
    pub client_id: Option<String>,
    pub session_id: Option<String>,
    pub rotating: bool,
    pub resource_servers: Vec<ResourceServer>,
    pub refresh_token_metadata: Metadata,
    /// Set when a rotation replaced this token: it then disappears from the API but stays
    /// comparable until its former expiry (§1 "rotation").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Timestamp>,
}

impl RefreshToken {
    pub fn new(id: String, now: Timestamp, lifetimes: Lifetimes, device: Device) -> Self {
        let expires_at = now.plus(lifetimes.absolute);
        Self {
            id,
            user_id: None,
            created_at: now,
            idle_expires_at: now.plus(lifetimes.idle).min(expires_at),
            expires_at,
            last_exchanged_at: None,
            device,
            client_id: None,
            session_id: None,
            rotating: false,
            resource_servers: Vec::new(),
            refresh_token_metadata: Metadata::new(),
            retired_at: None,
        }
    }

    /// An exchange presenting this token: idle expiry counts from `last_exchanged_at` (§7).
    pub fn exchanged(&mut self, now: Timestamp, lifetimes: Lifetimes) {
        self.last_exchanged_at = Some(now);
        self.idle_expires_at = now.plus(lifetimes.idle).min(self.expires_at);
    }

    /// The successor created when an exchange returns a different token: it inherits
    /// `refresh_token_metadata`, `session_id`, `user_id` and `client_id` (§1).
    pub fn successor(&self, new_id: String, now: Timestamp, lifetimes: Lifetimes, device: Device) -> Self {
        let mut next = Self::new(new_id, now, lifetimes, device);
        next.refresh_token_metadata = self.refresh_token_metadata.clone();
        next.session_id = self.session_id.clone();
        next.user_id = self.user_id.clone();
        next.client_id = self.client_id.clone();
        next.resource_servers = self.resource_servers.clone();
        next.rotating = true;
        next
    }

    pub fn is_retired(&self) -> bool {
        self.retired_at.is_some()
    }

    pub fn ends_at(&self) -> Timestamp {
        self.idle_expires_at.min(self.expires_at)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.ends_at()
    }
}

/// What is left of an ended record: its id and end time, kept for `[store] tombstone_ttl` (§1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub id: String,
    pub ended_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A record with the store's version, for compare-and-swap writes. A new record has version 1;
/// every committed change increments it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub version: u64,
    pub record: T,
}

/// What the store backends need to know about a record kind, so each backend writes its
/// create/compare-and-swap/index logic once for both kinds.
pub trait Record: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: super::metadata::RecordKind;
    fn id(&self) -> &str;
    /// `(user_id, created_at millis)` when the record appears in by-user listings: it has a user
    /// and, for a refresh token, is not retired (a retired token disappears from the API, §1).
    fn listed_under(&self) -> Option<(&str, i64)>;
    /// The session whose revoke ends this record (§6.2), for the by-session index: a refresh
    /// token's `session_id` while it is not retired (a retired token is no longer live, §1).
    /// Sessions link to none.
    fn linked_session(&self) -> Option<&str>;
    /// When the record expires (idle or absolute, whichever is first).
    fn expires(&self) -> Timestamp;
}

impl Record for Session {
    const KIND: super::metadata::RecordKind = super::metadata::RecordKind::Session;
    fn id(&self) -> &str {
        &self.id
    }
    fn listed_under(&self) -> Option<(&str, i64)> {
        self.user_id.as_deref().map(|u| (u, self.created_at.millis()))
    }
    fn linked_session(&self) -> Option<&str> {
        None
    }
    fn expires(&self) -> Timestamp {
        self.ends_at()
    }
}

impl Record for RefreshToken {
    const KIND: super::metadata::RecordKind = super::metadata::RecordKind::RefreshToken;
    fn id(&self) -> &str {
        &self.id
    }
    fn listed_under(&self) -> Option<(&str, i64)> {
        match (&self.user_id, self.retired_at) {
            (Some(u), None) => Some((u.as_str(), self.created_at.millis())),
            _ => None,
        }
    }
    fn linked_session(&self) -> Option<&str> {
        self.session_id.as_deref().filter(|_| self.retired_at.is_none())
    }
    fn expires(&self) -> Timestamp {
        self.ends_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values computed independently (Python hashlib + base64.urlsafe_b64encode).
    #[test]
    fn ids_follow_the_contract_derivation() {
        assert_eq!(session_id("cookie-value-123"), "ses_qHUAEMOrTA5p-g48PO5RlC8zkr8X2gwc");
        assert_eq!(refresh_token_id("v1.MRrT-token"), "rt_aueGY1vPE3Zghkqr8XYhqwCGa82wUAuR");
        assert_ne!(session_id("x"), session_id("y"));
    }

    #[test]
    fn timestamps_are_rfc3339_millis_utc() {
        let t = Timestamp(1_736_933_400_123);
        let json = serde_json::to_string(&t).unwrap_or_default();
        assert_eq!(json, "\"2025-01-15T09:30:00.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(t));
    }

    #[test]
    fn lifetimes_cap_idle_at_absolute() {
        let now = Timestamp(0);
        let lifetimes = Lifetimes { idle: Duration::from_secs(10), absolute: Duration::from_secs(15) };
        let mut s = Session::new("ses_x".into(), now, lifetimes, Device::default());
        assert_eq!((s.idle_expires_at, s.expires_at), (Timestamp(10_000), Timestamp(15_000)));
        s.touch(Timestamp(8_000), lifetimes);
        assert_eq!(s.idle_expires_at, Timestamp(15_000), "idle expiry never passes the absolute one");
        assert!(!s.is_expired(Timestamp(14_999)) && s.is_expired(Timestamp(15_000)));
    }
}
