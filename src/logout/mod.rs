//! How sessions end (CONTRACT §7, §8): one place that ends a session with an initiator, plans
//! the back-channel logout deliveries for it, commits the tombstone and the outbox entries in one
//! store transaction, and audits `session_ended`.
//!
//! Callers: the expiry sweeper and a request meeting an expired session (`session-expired`), the
//! logout route (`rp-logout`), and the Management API's delete and revoke (`session-revoked`).
//!
//! | file | owns |
//! |---|---|
//! | [`config`] | `[logout]` and `[[clients]]` (`oidc_logout`), their checks and warnings |
//! | [`plan`] | which (client, URL) pairs hear of an ended session: the outbox entries |
//! | [`signer`] | the signing key (loaded or generated), its RFC 7638 `kid`, the JWKS |
//! | [`token`] | the logout token's claims (§8), minted fresh for every attempt |
//! | [`sender`] | one attempt: `POST logout_token=…` over HTTPS, no redirects, bounded time |
//! | [`retry`] | what an answer means (success, final, retry) and the backoff |
//! | [`delivery`] | the workers: lease due outbox entries, send in parallel, ack or reschedule, audit |
//!
//! Nothing here runs on a request's path: ending a session only enqueues (in the same store
//! transaction) and wakes the workers.

pub mod config;
pub mod delivery;
pub mod plan;
pub mod retry;
pub mod sender;
pub mod signer;
pub mod token;

use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Notify;

use crate::audit::{AuditSink, SessionEnded};
use crate::session::{OutboxEntry, Session, Store, StoreError, Timestamp, Versioned};

/// What `check-config` verifies beyond the TOML: the key file and retired keys parse and fit
/// `[logout] alg`, and the CA file holds certificates.
pub fn check_files(config: &config::LogoutConfig) -> Result<(), crate::options::ConfigError> {
    signer::LogoutSigner::check_files(config)?;
    sender::Sender::new(config).map(drop)
}

/// Why a session ended: the `backchannel_logout_initiators` values helloguard raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// The configured logout route answered 2xx/3xx.
    RpLogout,
    /// Management API delete or revoke.
    SessionRevoked,
    /// Idle or absolute expiry.
    SessionExpired,
}

/// Every `backchannel_logout_initiators` value of the reference's enum; configuration accepts
/// all of them, helloguard raises the three of [`Initiator`].
pub const INITIATOR_NAMES: [&str; 9] = [
    "rp-logout",
    "idp-logout",
    "password-changed",
    "session-expired",
    "session-revoked",
    "account-deleted",
    "email-identifier-changed",
    "mfa-phone-unenrolled",
    "account-deactivated",
];

impl Initiator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RpLogout => "rp-logout",
            Self::SessionRevoked => "session-revoked",
            Self::SessionExpired => "session-expired",
        }
    }
}

/// Plans the outbox entries for an ended session: one per (client, URL) that wants to hear of
/// this initiator. The trace id is shared by all of them.
pub trait Planner: Send + Sync {
    fn plan(&self, session: &Session, initiator: Initiator, trace_id: &str, now: Timestamp) -> Vec<OutboxEntry>;
}

/// How often an end is tried when the session keeps changing between read and write.
const END_ATTEMPTS: usize = 16;

/// Ends sessions for every caller, the same way.
pub struct SessionEnder {
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditSink>,
    planner: Arc<dyn Planner>,
    random: SystemRandom,
    /// Signalled after outbox entries were committed, so idle delivery workers look at once.
    enqueued: Arc<Notify>,
}

impl SessionEnder {
    pub fn new(store: Arc<dyn Store>, audit: Arc<dyn AuditSink>, planner: Arc<dyn Planner>) -> Self {
        Self { store, audit, planner, random: SystemRandom::new(), enqueued: Arc::new(Notify::new()) }
    }

    /// What the delivery workers wait on between polls.
    pub fn enqueued(&self) -> Arc<Notify> {
        self.enqueued.clone()
    }

    /// Ends `session` if it is still at its version: record gone, tombstone and outbox entries
    /// committed together, then the `session_ended` audit event. `Stale`/`NotFound` mean someone
    /// else changed or ended it first; the caller decides whether to look again.
    pub async fn end(
        &self,
        session: &Versioned<Session>,
        initiator: Initiator,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let trace_id = self.trace_id();
        let entries = self.planner.plan(&session.record, initiator, &trace_id, now);
        let deliveries = entries.len();
        self.store.end_session(&session.record.id, session.version, now, entries).await?;
        if deliveries > 0 {
            self.enqueued.notify_one();
        }
        let record = &session.record;
        let user_id = record.user_id.as_deref();
        self.audit.record(&SessionEnded::new(now, &record.id, user_id, initiator.as_str(), &trace_id));
        Ok(())
    }

    /// Ends session `id` as it is now, whatever its version: re-read and tried again when a
    /// concurrent write (an activity note, a rebind) changed it between read and write. `Ok(false)`:
    /// there was no session to end.
    pub async fn end_current(&self, id: &str, initiator: Initiator, now: Timestamp) -> Result<bool, StoreError> {
        let mut lost = 0;
        for _ in 0..END_ATTEMPTS {
            let Some(session) = self.store.get_session(id).await? else { return Ok(false) };
            match self.end(&session, initiator, now).await {
                Ok(()) => return Ok(true),
                Err(StoreError::NotFound(_)) => return Ok(false),
                Err(StoreError::Stale { expected }) => lost = expected,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Stale { expected: lost })
    }

    /// Ends every session expired at `now` (up to `limit`) with `session-expired`; returns how
    /// many. A session touched or ended meanwhile is left alone (the next sweep looks again).
    pub async fn sweep(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let mut ended = 0;
        for id in self.store.expired_session_ids(now, limit).await? {
            let Some(current) = self.store.get_session(&id).await? else {
                continue;
            };
            if !current.record.is_expired(now) {
                continue;
            }
            match self.end(&current, Initiator::SessionExpired, now).await {
                Ok(()) => ended += 1,
                Err(StoreError::Stale { .. } | StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    /// 32 random hex digits, one per session end.
    fn trace_id(&self) -> String {
        let mut bytes = [0u8; 16];
        // The OS random source only fails when it has none; an all-zero id still correlates.
        let _ = self.random.fill(&mut bytes);
        hex::encode(bytes)
    }
}
