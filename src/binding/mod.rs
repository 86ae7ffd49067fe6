//! The binding layer: what helloguard does with sessions and refresh tokens when something happens
//! to them, one method per event, each taking a small value of facts (observed fingerprints, the
//! client's address and user agent, ids, the time) and returning what the HTTP layer must do. No
//! HTTP type appears here; the proxy and `replay --decide` call it, and the Actions runtime plugs
//! into it.
//!
//! | file | owns |
//! |---|---|
//! | [`actions`] | the `event` Actions read, and their run on the worker's Actions thread |
//! | [`lookup`] | the live session of a cookie, the record of a presented refresh token, revoked uses |
//! | [`decide`] | the request-phase events: `on_login`, `on_refresh` (decide → write → audit, once) |
//! | [`records`] | the response-phase events: `on_new_session`, `on_token_issued`, `on_mfa_confirmed`, `on_user_reported`, `note_activity`, `on_logout`; and `sweep` |
//! | [`counters`] | what the layer counts (decisions, write failures, revoked uses, store errors) |
//!
//! Cookies and tokens are hashed into ids here and never stored or logged.

pub mod actions;
pub mod counters;
pub mod decide;
pub mod lookup;
pub mod records;

use std::sync::Arc;

pub use actions::RequestInfo;
pub use counters::Counters;
pub use decide::{Evaluated, Held};
pub use lookup::{Exchange, ExchangeLookup, SessionLookup};
pub use records::{IssuedToken, NewSession};

use crate::actions::Actions;
use crate::audit::{AuditSink, DecisionEvent};
use crate::engine::{Decision, Observed, Outcome, Policy};
use crate::logout::SessionEnder;
use crate::session::{Device, Lifetimes, Metadata, Store, StoreError, Timestamp};

/// What is known about the request an event comes from.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The connection's fingerprints; `None` when none was captured (unknown).
    pub observed: Option<Observed<'a>>,
    /// The client's address (TCP peer or PROXY-protocol source), as text.
    pub client_ip: &'a str,
    /// The request's `User-Agent`.
    pub user_agent: Option<&'a str>,
    pub now: Timestamp,
    /// The request as Actions read it; `None` when no Action is configured.
    pub request: Option<&'a RequestInfo>,
}

impl Facts<'_> {
    /// The request's device fields: address, and user agent cut to 512 bytes.
    pub fn device(&self) -> Device {
        Device::new(Some(self.client_ip.to_owned()), self.user_agent.map(cut_user_agent))
    }
}

/// A store operation failed; it has been logged and, when the backend failed, counted. The caller
/// decides whether the request may go on (`[store] on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFailure {
    /// The backend failed, rather than a write losing a race.
    pub backend: bool,
}

/// Sessions and refresh tokens, bound to the fingerprints of the clients that use them.
pub struct Binder {
    store: Arc<dyn Store>,
    policy: Policy,
    audit: Arc<dyn AuditSink>,
    sessions: Arc<SessionEnder>,
    counters: Arc<Counters>,
    session_lifetimes: Lifetimes,
    token_lifetimes: Lifetimes,
    actions: Option<Arc<Actions>>,
}

impl Binder {
    pub fn new(
        store: Arc<dyn Store>,
        policy: Policy,
        audit: Arc<dyn AuditSink>,
        sessions: Arc<SessionEnder>,
        counters: Arc<Counters>,
        (session_lifetimes, token_lifetimes): (Lifetimes, Lifetimes),
    ) -> Self {
        Self { store, policy, audit, sessions, counters, session_lifetimes, token_lifetimes, actions: None }
    }

    /// Runs these Actions after the built-in decision (CONTRACT §11).
    pub fn with_actions(mut self, actions: Option<Arc<Actions>>) -> Self {
        self.actions = actions;
        self
    }

    /// The Actions in service, if any.
    pub fn actions(&self) -> Option<&Arc<Actions>> {
        self.actions.as_ref()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Log and count one failed store operation. A lost race (stale version, record ended
    /// meanwhile) is no failure of the store: it is logged at debug level and not counted.
    fn store_failed(&self, operation: &'static str, error: &StoreError) -> StoreFailure {
        let backend = matches!(error, StoreError::Backend(_));
        if backend {
            self.counters.store_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(operation, %error, "session store failed");
        } else {
            tracing::debug!(operation, %error, "store write lost a race");
        }
        StoreFailure { backend }
    }

    /// The audit event and the count of one decision, with the Actions that ran and the claims
    /// they set (`None` in the response phase, where no Action runs).
    #[allow(clippy::too_many_arguments)]
    fn record_decision(
        &self,
        facts: &Facts<'_>,
        decision: &Decision<'_>,
        stored: Option<&Metadata>,
        user_id: Option<&str>,
        outcome: Outcome,
        error: Option<&str>,
        actions: Option<&(Vec<String>, Vec<String>)>,
    ) {
        if let Some(error) = error {
            self.counters.metadata_write_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(error, "metadata write failed; request continues");
        }
        self.audit.record(&DecisionEvent {
            time: Timestamp::now(),
            decision,
            mode: self.policy.mode,
            outcome,
            user_id,
            observed: facts.observed,
            stored,
            client_addr: Some(facts.client_ip),
            error,
            actions: actions.map(|(files, _)| files.as_slice()),
            claims: actions.map(|(_, claims)| claims.as_slice()),
        });
        self.counters.decided(decision.verdict, self.policy.mode);
    }
}

/// User agents are kept to 512 bytes, cut at a character boundary.
pub fn cut_user_agent(agent: &str) -> String {
    let mut end = agent.len().min(512);
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    agent[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cut_at_a_char_boundary() {
        let agent = "é".repeat(300);
        let cut = cut_user_agent(&agent);
        assert!(cut.len() <= 512 && cut.len() >= 510);
    }
}
