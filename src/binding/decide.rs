//! The request-phase events: a login on a session, a refresh exchange of a token, and (with
//! Actions) another token request. Each runs the built-in decision (CONTRACT §3), then the
//! Actions (§11), combines their decisions (`deny` beats `challenge` beats `allow`), validates every
//! metadata write, writes those to records that exist in one change per record, holds those for
//! records the upstream has yet to create, and audits; the one sequence of the request phase.

use serde_json::{Map, Value};

use super::actions::Records;
use super::lookup::Exchange;
use super::{Binder, Facts};
use crate::actions::{Edit, OnError, Requests};
use crate::engine::{decide, Decision, Event, Factor, Factors, Outcome, Reason, Route, Verdict, Writes};
use crate::session::{Metadata, MetadataChange, MetadataEdit, RecordKind, Session, Timestamp, Versioned};

/// What the request phase decided, owned (the engine's decision borrows its inputs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluated {
    pub verdict: Verdict,
    pub reason: &'static str,
    pub session_id: Option<String>,
    pub outcome: Outcome,
    /// An Action's challenge factors (else the policy's).
    pub factors: Option<Vec<Factor>>,
    /// `api.access.deny(reason)`.
    pub deny: Option<String>,
    /// A metadata write an Action asked for failed validation: the request is refused with this
    /// `error_description` (`Failed to set session metadata: …`), nothing written.
    pub refused: Option<String>,
    /// Writes for the session or token the upstream's answer may create.
    pub held: Held,
    /// `{"id_token": {...}, "access_token": {...}}` for the upstream (`helloguard-claims`).
    pub claims: Option<Map<String, Value>>,
}

/// Action writes for records that do not exist yet (CONTRACT §11): applied to the session or
/// refresh token the upstream's answer creates, dropped if it creates none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Held {
    pub session: Vec<MetadataEdit>,
    pub refresh_token: Vec<MetadataEdit>,
}

/// Which of the request's records was compared, and so takes the built-in writes.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Session,
    RefreshToken,
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
        let records = Records { route: Route::Login, session, refresh_token: None };
        let target = session.map(|_| Target::Session);
        let user_id = session.and_then(|s| s.record.user_id.as_deref());
        self.decide_and_bind(facts, &event, &records, target, user_id).await
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
        let records = Records { route: Route::Refresh, session, refresh_token: record };
        let target = record.map(|_| Target::RefreshToken);
        let user_id = record.and_then(|r| r.record.user_id.as_deref());
        self.decide_and_bind(facts, &event, &records, target, user_id).await
    }

    /// Another token request that can issue tokens (a password or code grant): only Actions run.
    /// `None` when none is configured.
    pub async fn on_token_request(&self, facts: &Facts<'_>, session: Option<&Versioned<Session>>) -> Option<Evaluated> {
        self.actions.as_ref()?;
        let event = Event {
            route: Route::Token,
            session_id: session.map(|s| s.record.id.as_str()),
            refresh_token_id: None,
            stored: None,
            observed: facts.observed,
        };
        let records = Records { route: Route::Token, session, refresh_token: None };
        let user_id = session.and_then(|s| s.record.user_id.as_deref());
        Some(self.decide_and_bind(facts, &event, &records, None, user_id).await)
    }

    /// Decide → Actions → write → audit, the one sequence of the request phase.
    async fn decide_and_bind(
        &self,
        facts: &Facts<'_>,
        event: &Event<'_, '_>,
        records: &Records<'_>,
        target: Option<Target>,
        user_id: Option<&str>,
    ) -> Evaluated {
        let builtin_runs = !self.policy.builtin_off && event.route != Route::Token;
        let builtin = builtin_runs.then(|| decide(event, &self.policy));
        // Boxed: without Actions, this future stays as small as the built-in decision needs.
        let requests = match self.actions {
            Some(_) => Box::pin(self.run_actions(facts, records, builtin.as_ref())).await,
            None => None,
        };
        let mut decision = builtin.unwrap_or(Decision {
            verdict: Verdict::Allow,
            reason: Reason::NoSession,
            route: event.route,
            session_id: event.session_id,
            refresh_token_id: event.refresh_token_id,
            factors: None,
            writes: Writes::default(),
        });
        let mut evaluated = Evaluated::default();
        let factors_of_action;
        if let Some(requests) = &requests {
            let (verdict, reason) = self.combine(&mut evaluated, requests, decision.verdict);
            if let Some((verdict, reason)) = verdict.zip(reason) {
                decision.verdict = verdict;
                decision.reason = reason;
                decision.writes = Writes::default();
            }
            factors_of_action = evaluated.factors.as_ref().and_then(|f| Factors::new(f[0], &f[1..]).ok());
            decision.factors = match decision.verdict {
                Verdict::Challenge => Some(factors_of_action.as_ref().unwrap_or(&self.policy.factors)),
                _ => None,
            };
        }
        let error = self.write(&mut evaluated, &decision, requests.as_ref(), records, target, facts).await;
        let decision = if error.is_some() && decision.verdict == Verdict::Bind {
            decision.after_write_failure()
        } else {
            decision
        };
        let outcome = if evaluated.refused.is_some() { Outcome::Rejected } else { decision.outcome(&self.policy) };
        let names = requests.as_ref().map(|r| (r.files.clone(), r.claim_names()));
        self.record_decision(facts, &decision, event.stored, user_id, outcome, error.as_deref(), names.as_ref());
        evaluated.verdict = decision.verdict;
        evaluated.reason = decision.reason.as_str();
        evaluated.session_id = decision.session_id.map(str::to_owned);
        evaluated.outcome = outcome;
        evaluated
    }

    /// Folds what the Actions asked for into the built-in verdict: the verdict and reason to use
    /// instead (if any), and the factors, denial and claims into `evaluated`.
    fn combine(
        &self,
        evaluated: &mut Evaluated,
        requests: &Requests,
        builtin: Verdict,
    ) -> (Option<Verdict>, Option<Reason>) {
        evaluated.claims = (!requests.claims.is_empty()).then(|| requests.claims.clone());
        let on_error = self.actions.as_ref().map_or(OnError::Challenge, |a| a.on_error());
        let decided = requests.verdict(on_error);
        let (verdict, reason) = Requests::over(decided.as_ref(), builtin).unzip();
        if let Some(decided) = decided {
            evaluated.factors = decided.factors;
            evaluated.deny = decided.deny;
        }
        if !requests.errors.is_empty() {
            let decided = verdict.map_or(builtin.as_str(), Verdict::as_str);
            self.audit_action_errors(requests, decided, Timestamp::now());
        }
        (verdict, reason)
    }

    /// Writes the built-in binding and the Actions' metadata writes; returns the wrapped message of
    /// a write that failed in the store (`metadata_write_failed`). An Action write that fails
    /// validation refuses the request instead (`evaluated.refused`), and nothing is written.
    async fn write(
        &self,
        evaluated: &mut Evaluated,
        decision: &Decision<'_>,
        requests: Option<&Requests>,
        records: &Records<'_>,
        target: Option<Target>,
        facts: &Facts<'_>,
    ) -> Option<String> {
        let built_in: Vec<Edit> =
            decision.writes.iter().map(|(k, v)| Edit::Set(Value::from(k), Value::from(v))).collect();
        let empty = Vec::new();
        let (session_edits, token_edits) = requests.map_or((&empty, &empty), |r| (&r.session, &r.refresh_token));
        let mut plan: Vec<(RecordKind, String, Vec<Edit>)> = Vec::new();
        let mut add = |kind, id: &str, edits: Vec<Edit>| {
            if !edits.is_empty() {
                plan.push((kind, id.to_owned(), edits));
            }
        };
        // Each record's writes: with the built-in ones when it is the compared record; held when
        // the record does not exist yet.
        let held = &mut evaluated.held;
        let records_and_edits = [
            (
                RecordKind::Session,
                Target::Session,
                records.session.map(|s| &s.record.id),
                session_edits,
                &mut held.session,
            ),
            (
                RecordKind::RefreshToken,
                Target::RefreshToken,
                records.refresh_token.map(|t| &t.record.id),
                token_edits,
                &mut held.refresh_token,
            ),
        ];
        for (kind, which, id, action_edits, held) in records_and_edits {
            match id {
                Some(id) => {
                    let mut edits = if target == Some(which) { built_in.clone() } else { Vec::new() };
                    edits.extend(action_edits.iter().cloned());
                    add(kind, id, edits);
                }
                None => *held = action_edits.clone(),
            }
        }
        // The Actions' writes are validated before anything is written (or forwarded): one that
        // fails refuses the request. (A built-in write that fails is `metadata_write_failed`.)
        let empty_map = Metadata::new();
        let session_map = records.session.map_or(&empty_map, |s| &s.record.session_metadata);
        let token_map = records.refresh_token.map_or(&empty_map, |t| &t.record.refresh_token_metadata);
        for (kind, edits, current) in
            [(RecordKind::Session, session_edits, session_map), (RecordKind::RefreshToken, token_edits, token_map)]
        {
            if edits.is_empty() {
                continue;
            }
            if let Err(error) = current.edited(edits) {
                evaluated.refused = Some(kind.wrap(&error));
                evaluated.held = Held::default();
                return None;
            }
        }
        let mut failed = None;
        for (kind, id, edits) in plan {
            let change = MetadataChange::Edit(edits);
            let result = match kind {
                RecordKind::Session => self.store.update_session_metadata(&id, &change, facts.now).await.map(drop),
                RecordKind::RefreshToken => self.store.update_refresh_token_metadata(&id, &change).await.map(drop),
            };
            if let Err(error) = result {
                failed.get_or_insert(kind.wrap(&error));
            }
        }
        failed
    }
}

/// Merge the engine's writes into a new record's map before it is stored; returns the map as it
/// was and the wrapped error when the candidate map was invalid (then nothing is written).
pub(super) fn apply_writes(
    metadata: &mut Metadata,
    writes: &Writes<'_>,
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

/// Applies held Action writes to a record the upstream's answer created: all or none.
pub(super) fn apply_held(metadata: &mut Metadata, edits: &[MetadataEdit], kind: RecordKind) -> Option<String> {
    if edits.is_empty() {
        return None;
    }
    match metadata.edited(edits) {
        Ok(next) => {
            *metadata = next;
            None
        }
        Err(error) => Some(kind.wrap(&error)),
    }
}
