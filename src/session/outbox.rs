//! Entries of the durable back-channel logout outbox (CONTRACT §8): what a delivery needs, never
//! a token. Entries are enqueued in the same store transaction that ends a session, leased by
//! delivery workers, then acknowledged or rescheduled.

use serde::{Deserialize, Serialize};

use super::metadata::Metadata;
use super::records::Timestamp;

/// One pending delivery to one (client, URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub client_id: String,
    pub url: String,
    /// The ended session's id (`sid`).
    pub sid: String,
    /// The user id (`sub`), when known.
    pub sub: Option<String>,
    /// Snapshot taken when the session ended, when the client asked for it.
    pub session_metadata: Option<Metadata>,
    /// `session-revoked`, `session-expired` or `rp-logout`.
    pub initiator: String,
    /// One per session end, shared by its deliveries and attempts.
    pub trace_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not due before this time (moved forward by leases and retries).
    pub due_at: Timestamp,
}

/// An entry handed to a delivery worker, with the id to ack or retry it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub id: u64,
    pub entry: OutboxEntry,
}
