//! The refresh-token endpoints: get, patch, delete, a user's tokens (list by path or by query,
//! optionally of one client; delete), revoke by ids or by user, plus ending the tokens of a revoked
//! session. Ending tokens never ends a session, so it sends no back-channel logout token.
//!
//! A retired token (rotated away, CONTRACT §1) and an expired one are not shown (`404`, absent
//! from lists). Delete ends a token that still exists and is not retired; anything else is
//! already gone from the API's view, so it is also `202`.

use super::body::RevokeRequest;
use super::errors::ApiError;
use super::routes::{Paging, MAX_TAKE};
use super::{internal, page_body, Backend, Reply};
use crate::session::{
    Cursor, Metadata, MetadataChange, Page, RecordKind, RefreshToken, StoreError, Timestamp, Versioned,
};

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
    end_live(backend, id, now).await?;
    Ok(Reply::Accepted)
}

/// `GET /api/v2/users/{user_id}/refresh-tokens`: the list under `tokens`, as the reference has it.
pub async fn list(backend: &Backend<'_>, user_id: &str, paging: Paging, now: Timestamp) -> Result<Reply, ApiError> {
    let page = of_user(backend, user_id, None, paging, now).await?;
    Ok(Reply::ok(&page_body("tokens", page)))
}

/// `GET /api/v2/refresh-tokens?user_id=…[&client_id=…]`: the list under `refresh_tokens`.
pub async fn list_by_query(
    backend: &Backend<'_>,
    user_id: &str,
    client_id: Option<&str>,
    paging: Paging,
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let page = of_user(backend, user_id, client_id, paging, now).await?;
    Ok(Reply::ok(&page_body("refresh_tokens", page)))
}

/// Ends the tokens a revoke names: `202` whether or not they existed.
pub async fn revoke(backend: &Backend<'_>, request: RevokeRequest, now: Timestamp) -> Result<Reply, ApiError> {
    match request {
        RevokeRequest::Ids(ids) => {
            for id in &ids {
                end_live(backend, id, now).await?;
            }
        }
        RevokeRequest::User { user_id, client_id } => {
            end_all_of_user(backend, &user_id, client_id.as_deref(), now).await?
        }
    }
    Ok(Reply::Accepted)
}

/// `DELETE /api/v2/users/{user_id}/refresh-tokens`.
pub async fn delete_user(backend: &Backend<'_>, user_id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    end_all_of_user(backend, user_id, None, now).await?;
    Ok(Reply::Accepted)
}

/// A page of a user's live tokens, only those of `client_id` when given. Pages of the store's
/// listing are read until `take` tokens match or the listing ends; `next` continues after the
/// last token examined, so a page never skips one.
async fn of_user(
    backend: &Backend<'_>,
    user_id: &str,
    client_id: Option<&str>,
    paging: Paging,
    now: Timestamp,
) -> Result<Page<RefreshToken>, ApiError> {
    let store = backend.store;
    let Some(client_id) = client_id else {
        return store.list_refresh_tokens(user_id, paging.from.as_ref(), paging.take, now).await.map_err(internal);
    };
    let mut items = Vec::with_capacity(paging.take);
    let mut after = paging.from;
    loop {
        let page = store.list_refresh_tokens(user_id, after.as_ref(), MAX_TAKE, now).await.map_err(internal)?;
        let more = page.next.is_some();
        for token in page.items {
            after = Some(Cursor { created_at: token.created_at.millis(), id: token.id.clone() });
            if token.client_id.as_deref() == Some(client_id) {
                items.push(token);
                if items.len() == paging.take {
                    return Ok(Page { items, next: after });
                }
            }
        }
        if !more {
            return Ok(Page { items, next: None });
        }
    }
}

/// Ends every live token of the user (of one client when given). The ids are gathered first:
/// ending a token takes it out of the listing being walked.
async fn end_all_of_user(
    backend: &Backend<'_>,
    user_id: &str,
    client_id: Option<&str>,
    now: Timestamp,
) -> Result<(), ApiError> {
    let mut ids = Vec::new();
    let mut from = None;
    loop {
        let page = of_user(backend, user_id, client_id, Paging { take: MAX_TAKE, from }, now).await?;
        ids.extend(page.items.into_iter().map(|token| token.id));
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    for id in &ids {
        end_live(backend, id, now).await?;
    }
    Ok(())
}

/// Ends a token that still exists and is not retired, as `DELETE` does.
async fn end_live(backend: &Backend<'_>, id: &str, now: Timestamp) -> Result<(), ApiError> {
    let token = backend.store.get_refresh_token(id).await.map_err(internal)?;
    if token.is_some_and(|t| !t.record.is_retired()) {
        backend.store.end_refresh_token(id, now).await.map_err(internal)?;
    }
    Ok(())
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
