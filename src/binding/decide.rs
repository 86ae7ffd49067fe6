//! The request-phase events: a login on a session, a refresh exchange of a token. Each runs the
//! engine, writes a binding it decides on into the compared record, and audits; a write that fails
//! turns the `bind` into `allow`/`metadata_write_failed` (CONTRACT §3).

use super::lookup::Exchange;
use super::{Binder, Facts};
use crate::engine::{decide, Decision, Event, Outcome, Route, Verdict};
use crate::session::{Metadata, RecordKind, Session, Versioned};

/// What the request phase decided, owned (the engine's decision borrows its inputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    pub verdict: Verdict,
    pub reason: &'static str,
    pub session_id: Option<String>,
    pub outcome: Outcome,
}

/// The compared record a bind is written to.
enum Target<'r> {
    Session(&'r str),
    RefreshToken(&'r str),
}

impl Binder {
    /// A login on `session` (the request's live session, if any).
    pub async fn on_login(&self, facts: &Facts<'_>, session: Option<&Versioned<Session>>) -> Evaluated {
        let event = Event {
            route: Route::Login,
            session_id: session.map(|s| s.record.id.as_str()),
            refresh_token_id: None,
            stored: session.map(|s| &s.record.session_metadata),
            observed: facts.observed,
        };
        let target = session.map(|s| Target::Session(&s.record.id));
        let user_id = session.and_then(|s| s.record.user_id.as_deref());
        self.decide_and_bind(facts, &event, target, user_id).await
    }

    /// A refresh exchange: compared with the presented token's record, never the session's.
    pub async fn on_refresh(
        &self,
        facts: &Facts<'_>,
        session: Option<&Versioned<Session>>,
        exchange: &Exchange,
    ) -> Evaluated {
        let record = exchange.record.as_ref();
        let event = Event {
            route: Route::Refresh,
            session_id: record.and_then(|r| r.record.session_id.as_deref()).or(session.map(|s| s.record.id.as_str())),
            refresh_token_id: Some(exchange.token_id.as_str()),
            stored: record.map(|r| &r.record.refresh_token_metadata),
            observed: facts.observed,
        };
        let target = record.map(|r| Target::RefreshToken(&r.record.id));
        let user_id = record.and_then(|r| r.record.user_id.as_deref());
        self.decide_and_bind(facts, &event, target, user_id).await
    }

    /// Decide → write → audit, the one sequence of the request phase.
    async fn decide_and_bind(
        &self,
        facts: &Facts<'_>,
        event: &Event<'_, '_>,
        target: Option<Target<'_>>,
        user_id: Option<&str>,
    ) -> Evaluated {
        let decision = decide(event, &self.policy);
        let error = match (decision.verdict, target) {
            (Verdict::Bind, Some(target)) => self.write_binding(&decision, target, facts).await.err(),
            _ => None,
        };
        let decision = if error.is_some() { decision.after_write_failure() } else { decision };
        let outcome = decision.outcome(&self.policy);
        self.record_decision(facts, &decision, event.stored, user_id, outcome, error.as_deref());
        Evaluated {
            verdict: decision.verdict,
            reason: decision.reason.as_str(),
            session_id: decision.session_id.map(str::to_owned),
            outcome,
        }
    }

    /// Merges a decision's writes into its record; the wrapped message when that fails.
    async fn write_binding(
        &self,
        decision: &Decision<'_>,
        target: Target<'_>,
        facts: &Facts<'_>,
    ) -> Result<(), String> {
        let change = decision.writes.to_change();
        match target {
            Target::Session(id) => self
                .store
                .update_session_metadata(id, &change, facts.now)
                .await
                .map(drop)
                .map_err(|error| RecordKind::Session.wrap(&error)),
            Target::RefreshToken(id) => self
                .store
                .update_refresh_token_metadata(id, &change)
                .await
                .map(drop)
                .map_err(|error| RecordKind::RefreshToken.wrap(&error)),
        }
    }
}

/// Merge the engine's writes into a new record's map before it is stored; returns the map as it
/// was and the wrapped error when the candidate map was invalid (then nothing is written).
pub(super) fn apply_writes(
    metadata: &mut Metadata,
    writes: &crate::engine::Writes<'_>,
    kind: RecordKind,
) -> (Metadata, Option<String>) {
    let before = metadata.clone();
    if writes.is_empty() {
        return (before, None);
    }
    match metadata.merge(writes.iter()) {
        Ok(()) => (before, None),
        Err(error) => {
            *metadata = before.clone();
            (before, Some(kind.wrap(&error)))
        }
    }
}
