//! The refresh-token endpoints: get, patch, delete, and a user's tokens (list), plus ending the
//! tokens of a revoked session.
//!
//! A retired token (rotated away, CONTRACT §1) and an expired one are not shown (`404`, absent
//! from lists). Delete ends a token that still exists and is not retired; anything else is
//! already gone from the API's view, so it is also `202`.

use super::errors::ApiError;
use super::routes::{Paging, MAX_TAKE};
use super::{internal, page_body, Backend, Reply};
use crate::session::{Metadata, MetadataChange, RecordKind, RefreshToken, StoreError, Timestamp, Versioned};

pub async fn get(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    Ok(Reply::ok(&live(backend, id, now).await?.record))
}

pub async fn patch(backend: &Backend<'_>, id: &str, metadata: Metadata, now: Timestamp) -> Result<Reply, ApiError> {
    live(backend, id, now).await?;
    match backend.store.update_refresh_token_metadata(id, &MetadataChange::Replace(metadata)).await {
        Ok(updated) => Ok(Reply::ok(&updated.record)),
        Err(StoreError::NotFound(_)) => Err(ApiError::Inexistent(RecordKind::RefreshToken)),
        Err(error) => Err(internal(error)),
    }
}

pub async fn delete(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    let token = backend.store.get_refresh_token(id).await.map_err(internal)?;
    if token.is_some_and(|t| !t.record.is_retired()) {
        backend.store.end_refresh_token(id, now).await.map_err(internal)?;
    }
    Ok(Reply::Accepted)
}

pub async fn list(backend: &Backend<'_>, user_id: &str, paging: Paging, now: Timestamp) -> Result<Reply, ApiError> {
    let page =
        backend.store.list_refresh_tokens(user_id, paging.from.as_ref(), paging.take, now).await.map_err(internal)?;
    Ok(Reply::ok(&page_body("tokens", page)))
}

/// Ends every live token whose `session_id` is `session_id`, whatever its user (a session the
/// upstream named no user for has tokens too), through the store's by-session index. Ending a
/// token takes it out of the index, so each round asks again, until a round ends none.
pub async fn end_all_of_session(backend: &Backend<'_>, session_id: &str, now: Timestamp) -> Result<(), ApiError> {
    loop {
        let ids = backend.store.session_refresh_token_ids(session_id, now, MAX_TAKE).await.map_err(internal)?;
        let mut ended = 0_usize;
        for id in &ids {
            if backend.store.end_refresh_token(id, now).await.map_err(internal)? {
                ended += 1;
            }
        }
        if ended == 0 {
            return Ok(());
        }
    }
}

async fn live(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<Versioned<RefreshToken>, ApiError> {
    match backend.store.get_refresh_token(id).await.map_err(internal)? {
        Some(token) if !token.record.is_retired() && !token.record.is_expired(now) => Ok(token),
        _ => Err(ApiError::Inexistent(RecordKind::RefreshToken)),
    }
}
