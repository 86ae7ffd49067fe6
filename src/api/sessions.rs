//! The session endpoints: get, patch, delete, revoke, and a user's sessions (list, delete).
//!
//! A session past its idle or absolute expiry but not yet swept is not shown (`404`, absent from
//! lists); delete and revoke still end it. Every end goes through [`crate::logout::SessionEnder`]
//! with initiator `session-revoked`, which commits the tombstone and the logout outbox entries in
//! one store transaction before the `202`.

use super::errors::ApiError;
use super::routes::{Paging, MAX_TAKE};
use super::{internal, page_body, Backend, Reply};
use crate::logout::Initiator;
use crate::session::{Cursor, Metadata, MetadataChange, RecordKind, Session, StoreError, Timestamp, Versioned};

pub async fn get(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    Ok(Reply::ok(&live(backend, id, now).await?.record))
}

pub async fn patch(backend: &Backend<'_>, id: &str, metadata: Metadata, now: Timestamp) -> Result<Reply, ApiError> {
    live(backend, id, now).await?;
    match backend.store.update_session_metadata(id, &MetadataChange::Replace(metadata), now).await {
        Ok(updated) => Ok(Reply::ok(&updated.record)),
        Err(StoreError::NotFound(_)) => Err(ApiError::Inexistent(RecordKind::Session)),
        Err(error) => Err(internal(error)),
    }
}

/// `202` whether or not the session existed; its refresh tokens stay alive.
pub async fn delete(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    end(backend, id, now).await?;
    Ok(Reply::Accepted)
}

/// Ends the session's live refresh tokens, then the session. Tokens go first so that a failure
/// half-way leaves the session in place and the revoke can simply be repeated.
pub async fn revoke(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    if backend.store.get_session(id).await.map_err(internal)?.is_none() {
        return Err(ApiError::Inexistent(RecordKind::Session));
    }
    super::refresh_tokens::end_all_of_session(backend, id, now).await?;
    end(backend, id, now).await?;
    Ok(Reply::Accepted)
}

pub async fn list(backend: &Backend<'_>, user_id: &str, paging: Paging, now: Timestamp) -> Result<Reply, ApiError> {
    let page = backend.store.list_sessions(user_id, paging.from.as_ref(), paging.take, now).await.map_err(internal)?;
    Ok(Reply::ok(&page_body("sessions", page)))
}

/// Ends every live session of the user.
pub async fn delete_user(backend: &Backend<'_>, user_id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    let mut after: Option<Cursor> = None;
    loop {
        let page = backend.store.list_sessions(user_id, after.as_ref(), MAX_TAKE, now).await.map_err(internal)?;
        for session in &page.items {
            end(backend, &session.id, now).await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(Reply::Accepted),
        }
    }
}

async fn live(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<Versioned<Session>, ApiError> {
    match backend.store.get_session(id).await.map_err(internal)? {
        Some(session) if !session.record.is_expired(now) => Ok(session),
        _ => Err(ApiError::Inexistent(RecordKind::Session)),
    }
}

/// Ends the session if it exists (see [`crate::logout::SessionEnder::end_current`]).
async fn end(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<(), ApiError> {
    backend.sessions.end_current(id, Initiator::SessionRevoked, now).await.map(drop).map_err(internal)
}
