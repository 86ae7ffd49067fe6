//! The response-phase events (CONTRACT §1, §3): what the upstream's answer creates or confirms.
//!
//! - a new session cookie creates a session bound to the connection's fingerprints
//!   (`new_session`), or, when the request carried a live session, one that inherits it
//!   (`rotation`; the old record is retired silently and its refresh tokens follow the new
//!   session, so that ending the new session ends them);
//! - a refresh token in a token answer is recorded (`new_refresh_token`) or rotates the presented
//!   one (`rotation`);
//! - the upstream's user id is stored; its MFA confirmation rebinds (`mfa_confirmed`);
//! - a proxied request notes the session's activity; an accepted logout ends the session;
//! - the sweeper ends expired sessions and drops expired records.

use super::decide::{apply_held, apply_writes};
use super::{Binder, Facts, StoreFailure};
use crate::engine::{bind_on_response, Outcome, Reason, Route};
use crate::logout::Initiator;
use crate::session::{
    refresh_token_id, session_id, ClientRef, MetadataEdit, RecordKind, RefreshToken, ResourceServer, Session,
    StoreError, Timestamp, Versioned,
};

/// A login answer set a session cookie.
pub struct NewSession<'a> {
    /// The cookie's value as the client will send it back (unquoted).
    pub cookie: &'a str,
    /// The user id the upstream reported with it.
    pub user_id: Option<String>,
    /// The live session the request carried: a new cookie on it is a rotation.
    pub previous: Option<&'a Versioned<Session>>,
    /// The login route's `client_id`.
    pub client_id: Option<String>,
    /// Actions' writes held for the session this answer creates (CONTRACT §11).
    pub held: &'a [MetadataEdit],
}

/// A token answer carried a refresh token.
pub struct IssuedToken<'a> {
    pub token: &'a str,
    pub user_id: Option<String>,
    /// The live session of the request's cookie (non-browser grants have none).
    pub session: Option<&'a Versioned<Session>>,
    /// The record of the token the request presented, for a refresh exchange.
    pub presented: Option<&'a Versioned<RefreshToken>>,
    /// The request's `client_id` parameter, else the route's.
    pub client_id: Option<String>,
    /// The request's audience with the answer's scopes, when both are known.
    pub resource: Option<ResourceServer>,
    /// Actions' writes held for a token this answer issues (CONTRACT §11).
    pub held: &'a [MetadataEdit],
}

/// Tokens moved per store query when a session's refresh tokens follow a cookie rotation.
const RELINK_BATCH: usize = 100;

/// Records ended or dropped per sweep and kind.
const SWEEP_BATCH: usize = 1000;

impl Binder {
    /// Records the session a login answer's cookie creates. Returns its id (`None`: nothing new).
    pub async fn on_new_session(&self, facts: &Facts<'_>, new: NewSession<'_>) -> Result<Option<String>, StoreFailure> {
        let id = session_id(new.cookie);
        if new.previous.is_some_and(|s| s.record.id == id) {
            return Ok(None); // the cookie the request carried, set again: its session is live
        }
        match self.store.get_session(&id).await {
            Ok(Some(_)) => return Ok(None), // already a live session: nothing new
            Ok(None) => {}
            Err(error) => return Err(self.store_failed("session lookup for a new cookie", &error)),
        }
        let mut session = Session::new(id.clone(), facts.now, self.session_lifetimes, facts.device());
        // The request phase may have written the old record (a first binding, an upgrade): the
        // new session inherits it as it is now.
        let previous = match new.previous {
            Some(old) => match self.store.get_session(&old.record.id).await {
                Ok(current) => Some(current.unwrap_or_else(|| old.clone())),
                Err(error) => return Err(self.store_failed("session lookup for a rotated cookie", &error)),
            },
            None => None,
        };
        let reason = match &previous {
            Some(old) => {
                session.session_metadata = old.record.session_metadata.clone();
                session.user_id = old.record.user_id.clone();
                session.clients = old.record.clients.clone();
                Reason::Rotation
            }
            None => Reason::NewSession,
        };
        if new.user_id.is_some() {
            session.user_id = new.user_id;
        }
        if let Some(client_id) = new.client_id {
            if !session.clients.iter().any(|c| c.client_id == client_id) {
                session.clients.push(ClientRef { client_id });
            }
        }
        let decision = bind_on_response(reason, Route::Login, Some(&id), None, facts.observed, &self.policy);
        let (stored_before, error) = apply_writes(&mut session.session_metadata, &decision.writes, RecordKind::Session);
        let error = error.or_else(|| apply_held(&mut session.session_metadata, new.held, RecordKind::Session));
        if let Err(e) = self.store.create_session(&session).await {
            return Err(self.store_failed("create session", &e));
        }
        if let Some(old) = previous {
            // Cookie rotation: the old session's refresh tokens follow the new one (so that ending it
            // ends them), then the old record is retired silently (no logout token).
            if let Err(error) = self.relink_refresh_tokens(&old.record.id, &id, facts.now).await {
                self.store_failed("relink refresh tokens to the rotated-in session", &error);
            }
            if let Err(error) = self.retire(&old.record.id, facts.now).await {
                self.store_failed("retire rotated-out session", &error);
            }
        }
        let decision = if error.is_some() { decision.after_write_failure() } else { decision };
        let user_id = session.user_id.as_deref();
        self.record_decision(
            facts,
            &decision,
            Some(&stored_before),
            user_id,
            Outcome::Forwarded,
            error.as_deref(),
            None,
        );
        Ok(Some(id))
    }

    /// Ends a rotated-out session silently (no logout token), as it is now: a concurrent activity
    /// note is no reason to leave it live.
    async fn retire(&self, id: &str, now: Timestamp) -> Result<(), StoreError> {
        const ATTEMPTS: usize = 4;
        let mut result = Ok(());
        for _ in 0..ATTEMPTS {
            let Some(current) = self.store.get_session(id).await? else { return Ok(()) };
            result = self.store.end_session(id, current.version, now, Vec::new()).await;
            if !matches!(result, Err(StoreError::Stale { .. })) {
                break;
            }
        }
        match result {
            Err(StoreError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    /// Points every live refresh token of session `from` at session `to`, batch by batch until a
    /// batch moves nothing: a token changed meanwhile (a lost compare-and-swap) is asked for again,
    /// and one that keeps changing cannot hold the walk.
    async fn relink_refresh_tokens(&self, from: &str, to: &str, now: Timestamp) -> Result<(), StoreError> {
        loop {
            let ids = self.store.session_refresh_token_ids(from, now, RELINK_BATCH).await?;
            let mut moved = 0;
            for id in &ids {
                let Some(token) = self.store.get_refresh_token(id).await? else { continue };
                if token.record.session_id.as_deref() != Some(from) {
                    continue;
                }
                let mut record = token.record;
                record.session_id = Some(to.to_owned());
                match self.store.put_refresh_token(&record, token.version).await {
                    Ok(_) => moved += 1,
                    Err(StoreError::Stale { .. } | StoreError::NotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            if moved == 0 {
                return Ok(());
            }
        }
    }

    /// The upstream named the request's session's user (last value wins). A concurrent writer
    /// wins; the next answer carries the user id again.
    pub async fn on_user_reported(&self, session: &Versioned<Session>, user_id: &str, now: Timestamp) {
        if session.record.user_id.as_deref() == Some(user_id) {
            return;
        }
        let mut next = session.record.clone();
        next.user_id = Some(user_id.to_owned());
        next.updated_at = now;
        if let Err(error) = self.store.put_session(&next, session.version).await {
            tracing::debug!(%error, "user id not stored on the session");
        }
    }

    /// Records the refresh token of a token answer. Returns the recorded token's id (`None`: the
    /// presented one again).
    pub async fn on_token_issued(
        &self,
        facts: &Facts<'_>,
        issued: IssuedToken<'_>,
    ) -> Result<Option<String>, StoreFailure> {
        let new_id = refresh_token_id(issued.token);
        // The request phase may have written the presented token (a binding, an Action's write):
        // it rotates, and its successor inherits, as it is now.
        let current = match issued.presented {
            Some(old) => match self.store.get_refresh_token(&old.record.id).await {
                Ok(current) => Some(current.unwrap_or_else(|| old.clone())),
                Err(error) => return Err(self.store_failed("refresh token lookup for a rotation", &error)),
            },
            None => None,
        };
        if let Some(old) = current.as_ref() {
            if old.record.id == new_id {
                // The same token again (a non-rotating upstream): only the exchange is noted.
                let mut exchanged = old.record.clone();
                exchanged.exchanged(facts.now, self.token_lifetimes);
                let device = facts.device();
                exchanged.device.last_ip = device.last_ip;
                exchanged.device.last_user_agent = device.last_user_agent;
                if let Err(error) = self.store.put_refresh_token(&exchanged, old.version).await {
                    self.store_failed("note refresh token exchange", &error);
                }
                return Ok(None);
            }
            let mut successor = old.record.successor(new_id.clone(), facts.now, self.token_lifetimes, facts.device());
            successor.last_exchanged_at = Some(facts.now);
            if issued.user_id.is_some() {
                successor.user_id = issued.user_id;
            }
            if let Err(error) =
                self.store.rotate_refresh_token(&old.record.id, old.version, facts.now, &successor).await
            {
                return Err(self.store_failed("rotate refresh token", &error));
            }
            let session_id = successor.session_id.as_deref();
            let decision = bind_on_response(
                Reason::Rotation,
                Route::Refresh,
                session_id,
                Some(&new_id),
                facts.observed,
                &self.policy,
            );
            let stored = &old.record.refresh_token_metadata;
            self.record_decision(
                facts,
                &decision,
                Some(stored),
                successor.user_id.as_deref(),
                Outcome::Forwarded,
                None,
                None,
            );
            return Ok(Some(new_id));
        }
        let mut record = RefreshToken::new(new_id.clone(), facts.now, self.token_lifetimes, facts.device());
        record.session_id = issued.session.map(|s| s.record.id.clone());
        record.user_id = issued.user_id.or_else(|| issued.session.and_then(|s| s.record.user_id.clone()));
        record.client_id = issued.client_id;
        record.resource_servers = issued.resource.into_iter().collect();
        let session_id = record.session_id.as_deref();
        let decision = bind_on_response(
            Reason::NewRefreshToken,
            Route::Refresh,
            session_id,
            Some(&new_id),
            facts.observed,
            &self.policy,
        );
        let (before, error) =
            apply_writes(&mut record.refresh_token_metadata, &decision.writes, RecordKind::RefreshToken);
        let error =
            error.or_else(|| apply_held(&mut record.refresh_token_metadata, issued.held, RecordKind::RefreshToken));
        if let Err(e) = self.store.create_refresh_token(&record).await {
            return Err(self.store_failed("create refresh token", &e));
        }
        let decision = if error.is_some() { decision.after_write_failure() } else { decision };
        self.record_decision(
            facts,
            &decision,
            Some(&before),
            record.user_id.as_deref(),
            Outcome::Forwarded,
            error.as_deref(),
            None,
        );
        Ok(Some(new_id))
    }

    /// After a successful MFA the upstream says so: the session and tokens of this request take
    /// the connection's fingerprints. Ignored when the fingerprint is unknown.
    pub async fn on_mfa_confirmed(
        &self,
        facts: &Facts<'_>,
        session: Option<&str>,
        tokens: impl Iterator<Item = String>,
    ) {
        let Some(observed) = facts.observed else { return };
        let decision =
            bind_on_response(Reason::MfaConfirmed, Route::Login, session, None, Some(observed), &self.policy);
        let change = decision.writes.to_change();
        if let Some(id) = session {
            let result = self.store.update_session_metadata(id, &change, facts.now).await;
            self.confirmed(facts, &decision, result.err().map(|e| RecordKind::Session.wrap(&e)));
        }
        for token in tokens {
            let decision = bind_on_response(
                Reason::MfaConfirmed,
                Route::Refresh,
                session,
                Some(&token),
                Some(observed),
                &self.policy,
            );
            let result = self.store.update_refresh_token_metadata(&token, &change).await;
            self.confirmed(facts, &decision, result.err().map(|e| RecordKind::RefreshToken.wrap(&e)));
        }
    }

    fn confirmed(&self, facts: &Facts<'_>, decision: &crate::engine::Decision<'_>, error: Option<String>) {
        let decision = if error.is_some() { decision.after_write_failure() } else { *decision };
        self.record_decision(facts, &decision, None, None, Outcome::Forwarded, error.as_deref(), None);
    }

    /// CONTRACT §6.4: a proxied request on a live session moves `last_interacted_at` (and the idle
    /// expiry) at most once a minute, and `device.last_ip` / `last_user_agent` when they change. A
    /// concurrent writer wins; the next request notes the activity again.
    pub async fn note_activity(&self, facts: &Facts<'_>, session: &Versioned<Session>) {
        const AT_MOST_EVERY: i64 = 60_000;
        let device = facts.device();
        let record = &session.record;
        let due = facts.now.millis() - record.last_interacted_at.millis() >= AT_MOST_EVERY;
        let moved = record.device.last_ip != device.last_ip || record.device.last_user_agent != device.last_user_agent;
        if !due && !moved {
            return;
        }
        // The request phase may have written the record (a bind): start from the stored version.
        let current = match self.store.get_session(&record.id).await {
            Ok(Some(current)) => current,
            Ok(None) => return,
            Err(error) => {
                self.store_failed("session lookup for activity", &error);
                return;
            }
        };
        let mut next = current.record.clone();
        if due {
            next.touch(facts.now, self.session_lifetimes);
        }
        next.device.last_ip = device.last_ip;
        next.device.last_user_agent = device.last_user_agent;
        if let Err(error) = self.store.put_session(&next, current.version).await {
            self.store_failed("note session activity", &error);
        }
    }

    /// Ends expired sessions (initiator `session-expired`), drops expired refresh tokens and
    /// tombstones past their TTL. Store errors are logged; the next sweep tries again.
    pub async fn sweep(&self, now: Timestamp) {
        match self.sessions.sweep(now, SWEEP_BATCH).await {
            Ok(ended) if ended > 0 => tracing::info!(count = ended, "expired sessions ended"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "session sweep failed"),
        }
        if let Err(error) = self.store.sweep_refresh_tokens(now, SWEEP_BATCH).await {
            tracing::warn!(%error, "refresh token sweep failed");
        }
        if let Err(error) = self.store.sweep_tombstones(now).await {
            tracing::warn!(%error, "tombstone sweep failed");
        }
    }

    /// A logout the upstream accepted ends the session as it is now: a concurrent write (this or
    /// another request's activity note, a rebind) is no reason to leave it live. A session that
    /// still cannot be ended is logged at warn level and counted.
    pub async fn on_logout(&self, session_id: &str, now: Timestamp) {
        if let Err(error) = self.sessions.end_current(session_id, Initiator::RpLogout, now).await {
            self.counters.logout_end_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if matches!(error, StoreError::Backend(_)) {
                self.counters.store_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            tracing::warn!(%error, session_id, "logout accepted by the upstream, but the session could not be ended");
        }
    }
}
