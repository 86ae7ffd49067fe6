//! The delivery workers (CONTRACT §8 "Durable outbox", §9): lease due outbox entries, send up to
//! `[logout] workers` of them at once, then acknowledge (delivered or final failure) or reschedule
//! (retry) each, with one audit event per attempt.
//!
//! They run beside the proxy, never on a request's path: ending a session only commits entries
//! and wakes them ([`super::SessionEnder::enqueued`]); otherwise they poll every second, which
//! also picks up retries, leases that expired (a worker or process died mid-attempt) and entries
//! another process of a fleet enqueued.
//!
//! At-least-once: an entry is leased (hidden) for longer than an attempt may take; if the process
//! dies before the ack or reschedule is committed, the lease expires and the attempt is repeated
//! after restart, so an RP may receive a second token for the same session end (with another
//! `jti`, the same `sid` and `trace_id`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use ring::rand::SystemRandom;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::config::{ClientConfig, LogoutConfig, TokenTyp};
use super::retry::{after_status, bounded, delay, random_jitter, Next};
use super::sender::Sender;
use super::signer::LogoutSigner;
use super::token::LogoutClaims;
use crate::audit::{AuditSink, LogoutAttempt};
use crate::options::ConfigError;
use crate::session::{Leased, Store, Timestamp};

/// How often idle workers look for due entries when nothing woke them.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Attempts so far, by outcome, for `/metrics`.
#[derive(Default)]
pub struct DeliveryCounts {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
}

impl DeliveryCounts {
    fn count(&self, next: Next) {
        let counter = match next {
            Next::Delivered => &self.delivered,
            Next::Retry => &self.retried,
            Next::GiveUp => &self.failed,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// `(outcome, attempts)`: `delivered`, `retry` (failed, will be tried again), `failed` (final).
    pub fn by_outcome(&self) -> [(&'static str, u64); 3] {
        [
            ("delivered", self.delivered.load(Relaxed)),
            ("retry", self.retried.load(Relaxed)),
            ("failed", self.failed.load(Relaxed)),
        ]
    }
}

/// Sends the outbox's entries.
pub struct Deliveries {
    store: Arc<dyn Store>,
    audit: Arc<dyn AuditSink>,
    counts: Arc<DeliveryCounts>,
    signer: Arc<LogoutSigner>,
    sender: Sender,
    issuer: String,
    typs: HashMap<String, TokenTyp>,
    max_attempts: u32,
    workers: usize,
    retry_base: Duration,
    /// How long a leased entry stays hidden: longer than an attempt plus its bookkeeping.
    lease: Duration,
    random: SystemRandom,
}

impl Deliveries {
    /// `None` when no issuer is configured (then no client has `oidc_logout`, and entries left
    /// from an earlier configuration wait until one is).
    pub fn new(
        (logout, clients): (&LogoutConfig, &[ClientConfig]),
        store: Arc<dyn Store>,
        audit: Arc<dyn AuditSink>,
        counts: Arc<DeliveryCounts>,
        signer: Arc<LogoutSigner>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(issuer) = logout.issuer.clone() else {
            return Ok(None);
        };
        let typs = clients.iter().map(|c| (c.client_id.clone(), c.logout_token_typ)).collect();
        Ok(Some(Self {
            store,
            audit,
            counts,
            signer,
            sender: Sender::new(logout)?,
            issuer,
            typs,
            max_attempts: logout.max_attempts,
            workers: logout.workers,
            retry_base: logout.retry_base.0,
            lease: logout.timeout.0 * 2 + Duration::from_secs(5),
            random: SystemRandom::new(),
        }))
    }

    /// Work until `shutdown` turns true; attempts in flight then finish (each is bounded by the
    /// attempt timeout).
    pub async fn run(self: Arc<Self>, enqueued: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut in_flight: JoinSet<Option<Timestamp>> = JoinSet::new();
        let mut next_retry: Option<Timestamp> = None;
        loop {
            let now = Timestamp::now();
            if next_retry.is_some_and(|at| at <= now) {
                next_retry = None;
            }
            let free = self.workers.saturating_sub(in_flight.len());
            if free > 0 {
                match self.store.lease_outbox(now, self.lease, free).await {
                    Ok(batch) => {
                        for leased in batch {
                            in_flight.spawn(self.clone().attempt(leased));
                        }
                    }
                    Err(error) => tracing::warn!(%error, "logout outbox lease failed; retrying"),
                }
            }
            let wait = next_retry
                .map(|at| Duration::from_millis(u64::try_from(at.millis() - now.millis()).unwrap_or(0)))
                .map_or(POLL_INTERVAL, |d| d.min(POLL_INTERVAL));
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = enqueued.notified() => {}
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Ok(Some(at)) = done {
                        next_retry = Some(next_retry.map_or(at, |earlier| earlier.min(at)));
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// One attempt at one entry; returns when it is due again if it was rescheduled.
    async fn attempt(self: Arc<Self>, leased: Leased) -> Option<Timestamp> {
        let Leased { id, entry } = leased;
        let attempt = entry.attempts.saturating_add(1);
        let typ = self.typs.get(&entry.client_id).copied().unwrap_or_default();
        let issued_at = Timestamp::now().millis() / 1000;
        let result = match self.signer.sign(typ, &LogoutClaims::for_attempt(&self.issuer, &entry, issued_at)) {
            Ok(token) => self.sender.post(&entry.url, &token).await.map_err(|e| e.to_string()),
            Err(error) => Err(format!("signing failed: {error}")),
        };
        let next =
            bounded(result.as_ref().map_or(Next::Retry, |status| after_status(*status)), attempt, self.max_attempts);
        let last = next != Next::Retry;
        let now = Timestamp::now();
        self.audit.record(&LogoutAttempt {
            event: if next == Next::Delivered { LogoutAttempt::SUCCEEDED } else { LogoutAttempt::FAILED },
            time: now,
            session_id: &entry.sid,
            client_id: &entry.client_id,
            url: &entry.url,
            initiator: &entry.initiator,
            trace_id: &entry.trace_id,
            attempt,
            r#final: last,
            status: result.as_ref().ok().copied(),
            error: result.as_ref().err().map(String::as_str),
        });
        self.counts.count(next);
        if next == Next::GiveUp {
            tracing::warn!(
                client_id = %entry.client_id, url = %entry.url, session_id = %entry.sid, attempt,
                outcome = %result.as_ref().map_or_else(Clone::clone, |s| format!("status {s}")),
                "back-channel logout not delivered; giving up"
            );
        }
        if last {
            if let Err(error) = self.store.ack_outbox(id).await {
                tracing::warn!(%error, "logout outbox ack failed; the entry comes back after its lease");
            }
            return None;
        }
        let due = now.plus(delay(self.retry_base, attempt, random_jitter(&self.random)));
        if let Err(error) = self.store.retry_outbox(id, attempt, due).await {
            tracing::warn!(%error, "logout outbox reschedule failed; the entry comes back after its lease");
        }
        Some(due)
    }
}
