//! Finding the records a request names: the live session of its cookie, the record of the refresh
//! token it presents. An ended record (a tombstone) is a revoked use: audited and counted here;
//! the HTTP layer removes the cookie or refuses the exchange.

use super::{Binder, Facts, StoreFailure};
use crate::audit::RevokedUse;
use crate::logout::Initiator;
use crate::session::{refresh_token_id, session_id, RefreshToken, Session, Versioned};

/// What a request's session cookie names.
pub enum SessionLookup {
    /// No cookie, or one that names no session (expired ones end here).
    None,
    Live(Box<Versioned<Session>>),
    /// An ended session's cookie: it must not reach the upstream.
    Revoked,
}

/// A refresh exchange's presented token.
pub struct Exchange {
    pub token_id: String,
    /// Its record (retired ones included: a replayed old token is still compared); `None` for a
    /// token helloguard never saw.
    pub record: Option<Versioned<RefreshToken>>,
}

/// What a presented refresh token names.
pub enum ExchangeLookup {
    Known(Box<Exchange>),
    /// An ended token: the exchange is refused without reaching the upstream.
    Revoked,
}

impl Binder {
    /// The live session the cookie value names.
    pub async fn session_of(&self, cookie: Option<&[u8]>, facts: &Facts<'_>) -> Result<SessionLookup, StoreFailure> {
        let Some(value) = cookie else { return Ok(SessionLookup::None) };
        let id = session_id(value);
        match self.store.get_session(&id).await {
            Ok(Some(session)) if !session.record.is_expired(facts.now) => {
                return Ok(SessionLookup::Live(Box::new(session)))
            }
            Ok(Some(expired)) => {
                // Met before the sweeper: it ends here the same way (CONTRACT §7).
                if let Err(error) = self.sessions.end(&expired, Initiator::SessionExpired, facts.now).await {
                    tracing::debug!(%error, "expired session already changed or ended");
                }
                return Ok(SessionLookup::None);
            }
            Ok(None) => {}
            Err(error) => return Err(self.store_failed("session lookup", &error)),
        }
        let tombstone = self.store.get_tombstone(&id, facts.now).await;
        if tombstone.map_err(|error| self.store_failed("session tombstone lookup", &error))?.is_none() {
            return Ok(SessionLookup::None);
        }
        self.counters.revoked_uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.audit.record(&RevokedUse::session(facts.now, &id, Some(facts.client_ip)));
        Ok(SessionLookup::Revoked)
    }

    /// The record of a refresh token presented in an exchange.
    pub async fn exchange_of(&self, token: &str, facts: &Facts<'_>) -> Result<ExchangeLookup, StoreFailure> {
        let token_id = refresh_token_id(token);
        let record = self.store.get_refresh_token(&token_id).await;
        let record = record.map_err(|error| self.store_failed("refresh token lookup", &error))?;
        if record.is_none() {
            let tombstone = self.store.get_tombstone(&token_id, facts.now).await;
            if tombstone.map_err(|error| self.store_failed("refresh token tombstone lookup", &error))?.is_some() {
                self.counters.revoked_uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.audit.record(&RevokedUse::refresh_token(facts.now, &token_id, Some(facts.client_ip)));
                return Ok(ExchangeLookup::Revoked);
            }
        }
        Ok(ExchangeLookup::Known(Box::new(Exchange { token_id, record })))
    }
}
