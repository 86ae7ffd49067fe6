//! The `Store` trait every backend implements, its error type, paging cursors, and the
//! operations built once on top of the backends' primitives (metadata updates, sweeps).
//!
//! Backends implement small primitives with a version check (compare-and-swap): a writer that read
//! version `n` can only commit if the record is still at `n`, else it gets [`StoreError::Stale`].
//! The read-modify-write operations here retry on `Stale`, so concurrent engine merges are
//! serialized and none is lost; a caller that must not overwrite a newer record uses the
//! primitives directly and sees the typed error.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;

use super::metadata::{Metadata, MetadataError, RecordKind};
use super::outbox::{Leased, OutboxEntry};
use super::records::{Record, RefreshToken, Session, Timestamp, Tombstone, Versioned};

/// Every way a store operation can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist (or ended meanwhile); the message is the contract's (§2).
    #[error("{}", .0.missing_message())]
    NotFound(RecordKind),
    #[error("a record with this id already exists")]
    AlreadyExists(RecordKind),
    /// A compare-and-swap lost: the record changed since it was read.
    #[error("stale write: the record changed since version {expected}")]
    Stale { expected: u64 },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("invalid paging cursor")]
    InvalidCursor,
    /// The backend failed (I/O, connection, corrupt data). Never carries a secret.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// How an engine write or an API PATCH changes a record's metadata (§2, §6.3).
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataChange {
    /// API PATCH: the whole map is replaced.
    Replace(Metadata),
    /// Engine write: these keys are merged into the current map.
    Merge(Vec<(String, String)>),
    /// Drop these keys (e.g. the engine's, to rebind on the next request).
    Evict(Vec<String>),
    /// Actions' writes in order, validated on the whole resulting map.
    Edit(Vec<super::metadata::MetadataEdit>),
}

impl MetadataChange {
    /// Applies the change to a copy; the original is untouched on error.
    pub fn apply(&self, current: &Metadata) -> Result<Metadata, MetadataError> {
        let mut next = current.clone();
        match self {
            Self::Replace(map) => next = map.clone(),
            Self::Merge(writes) => next.merge(writes.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
            Self::Evict(keys) => next.evict(keys),
            Self::Edit(edits) => next = current.edited(edits)?,
        }
        Ok(next)
    }
}

/// Position in a by-user listing: records sort by `created_at`, then `id` (§6.2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    /// The opaque `next` string of the API.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at, self.id))
    }

    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| StoreError::InvalidCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
        let (created, id) = text.split_once(':').ok_or(StoreError::InvalidCursor)?;
        let created_at = created.parse().map_err(|_| StoreError::InvalidCursor)?;
        Ok(Self { created_at, id: id.to_owned() })
    }
}

/// One page of a by-user listing; `next` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `take + 1` candidates in order: the extra one only says there is
    /// more, and the cursor points at the last item shown.
    pub fn from_candidates(mut items: Vec<T>, take: usize, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let next = if items.len() > take {
            items.truncate(take);
            items.last().map(cursor_of)
        } else {
            None
        };
        Self { items, next }
    }
}

/// Why [`Store::update_session_metadata`]-style retries give up: under pathological contention
/// a writer returns `Stale` instead of spinning forever.
const MAX_CAS_RETRIES: usize = 1000;

/// The storage behind sessions, refresh tokens, tombstones and the logout outbox.
#[async_trait]
pub trait Store: Send + Sync {
    // --- sessions ---------------------------------------------------------------------------
    /// Inserts a new session at version 1; `AlreadyExists` if the id is taken.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    /// The session, expired or not (the caller decides what expiry means for it).
    async fn get_session(&self, id: &str) -> Result<Option<Versioned<Session>>, StoreError>;
    /// Replaces the session if it is still at `expected`; returns the new version.
    async fn put_session(&self, session: &Session, expected: u64) -> Result<u64, StoreError>;
    /// Ends the session if it is still at `expected`: in one transaction the record goes, a
    /// tombstone (`ended_at` + the store's tombstone TTL) appears, and `outbox` is enqueued.
    async fn end_session(
        &self,
        id: &str,
        expected: u64,
        ended_at: Timestamp,
        outbox: Vec<OutboxEntry>,
    ) -> Result<(), StoreError>;
    /// Live sessions of a user after `after`, ordered by `created_at` then `id`.
    async fn list_sessions(
        &self,
        user_id: &str,
        after: Option<&Cursor>,
        take: usize,
        now: Timestamp,
    ) -> Result<Page<Session>, StoreError>;
    /// Ids of up to `limit` sessions whose idle or absolute expiry is at or before `now`.
    async fn expired_session_ids(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError>;

    // --- refresh tokens ---------------------------------------------------------------------
    async fn create_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;
    /// The token, including a retired one (still compared until its former expiry).
    async fn get_refresh_token(&self, id: &str) -> Result<Option<Versioned<RefreshToken>>, StoreError>;
    async fn put_refresh_token(&self, token: &RefreshToken, expected: u64) -> Result<u64, StoreError>;
    /// Rotation (§1): if `old` is still at `expected`, it is retired at `now` and `successor` is
    /// created, in one transaction.
    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        expected: u64,
        now: Timestamp,
        successor: &RefreshToken,
    ) -> Result<(), StoreError>;
    /// Ends a token by API delete or session revoke: record gone, tombstone left. Returns whether
    /// it existed.
    async fn end_refresh_token(&self, id: &str, ended_at: Timestamp) -> Result<bool, StoreError>;
    /// Removes an expired token silently (no tombstone, §7) if it is still at `expected`.
    async fn remove_refresh_token(&self, id: &str, expected: u64) -> Result<(), StoreError>;
    /// Live, non-retired tokens of a user, ordered by `created_at` then `id`.
    async fn list_refresh_tokens(
        &self,
        user_id: &str,
        after: Option<&Cursor>,
        take: usize,
        now: Timestamp,
    ) -> Result<Page<RefreshToken>, StoreError>;
    async fn expired_refresh_token_ids(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Ids of up to `limit` live (not expired at `now`), non-retired tokens whose `session_id` is
    /// `session_id`, whatever their `user_id`, in no particular order: what a session revoke ends
    /// (§6.2). Backed by a by-session index that every token write keeps in its own transaction,
    /// so ending the returned tokens and asking again eventually answers fewer than `limit`.
    async fn session_refresh_token_ids(
        &self,
        session_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    // --- tombstones -------------------------------------------------------------------------
    /// The tombstone of an ended session or token, if still within its TTL.
    async fn get_tombstone(&self, id: &str, now: Timestamp) -> Result<Option<Tombstone>, StoreError>;
    /// Drops tombstones past their TTL; returns how many.
    async fn sweep_tombstones(&self, now: Timestamp) -> Result<usize, StoreError>;

    // --- logout outbox ----------------------------------------------------------------------
    /// Up to `max` entries due at `now`; each is hidden from other leases for `lease`, so a
    /// worker that dies lets it come back.
    async fn lease_outbox(&self, now: Timestamp, lease: Duration, max: usize) -> Result<Vec<Leased>, StoreError>;
    /// Delivery done (success or final failure): the entry goes.
    async fn ack_outbox(&self, id: u64) -> Result<(), StoreError>;
    /// Delivery to retry: records the attempt count and the next due time.
    async fn retry_outbox(&self, id: u64, attempts: u32, at: Timestamp) -> Result<(), StoreError>;

    // --- built on the primitives ------------------------------------------------------------
    /// Applies a metadata change to a session inside a version-checked write, retrying when a
    /// concurrent writer got there first. Updates `updated_at`.
    async fn update_session_metadata(
        &self,
        id: &str,
        change: &MetadataChange,
        now: Timestamp,
    ) -> Result<Versioned<Session>, StoreError> {
        update_metadata(self, id, change, now).await
    }

    /// As [`Store::update_session_metadata`], for a refresh token (which has no `updated_at`).
    async fn update_refresh_token_metadata(
        &self,
        id: &str,
        change: &MetadataChange,
    ) -> Result<Versioned<RefreshToken>, StoreError> {
        update_metadata(self, id, change, Timestamp::now()).await
    }

    /// Removes refresh tokens (live or retired) past their expiry, silently (§7), and returns
    /// them.
    async fn sweep_refresh_tokens(&self, now: Timestamp, limit: usize) -> Result<Vec<RefreshToken>, StoreError> {
        let mut removed = Vec::new();
        for id in self.expired_refresh_token_ids(now, limit).await? {
            let Some(current) = self.get_refresh_token(&id).await? else {
                continue;
            };
            if !current.record.is_expired(now) {
                continue;
            }
            match self.remove_refresh_token(&id, current.version).await {
                Ok(()) => removed.push(current.record),
                Err(StoreError::Stale { .. } | StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

/// How the read-modify-write loop reaches one record kind through the `Store` primitives.
trait Editable: Record {
    fn fetch<'a, S: Store + ?Sized>(
        store: &'a S,
        id: &'a str,
    ) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send + 'a;
    fn cas<'a, S: Store + ?Sized>(
        store: &'a S,
        record: &'a Self,
        expected: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'a;
    fn metadata(&self) -> &Metadata;
    /// Installs the new map and notes the change time where the record has one.
    fn set_metadata(&mut self, metadata: Metadata, now: Timestamp);
}

impl Editable for Session {
    fn fetch<'a, S: Store + ?Sized>(
        store: &'a S,
        id: &'a str,
    ) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send + 'a {
        store.get_session(id)
    }
    fn cas<'a, S: Store + ?Sized>(
        store: &'a S,
        record: &'a Self,
        expected: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'a {
        store.put_session(record, expected)
    }
    fn metadata(&self) -> &Metadata {
        &self.session_metadata
    }
    fn set_metadata(&mut self, metadata: Metadata, now: Timestamp) {
        self.session_metadata = metadata;
        self.updated_at = now;
    }
}

impl Editable for RefreshToken {
    fn fetch<'a, S: Store + ?Sized>(
        store: &'a S,
        id: &'a str,
    ) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send + 'a {
        store.get_refresh_token(id)
    }
    fn cas<'a, S: Store + ?Sized>(
        store: &'a S,
        record: &'a Self,
        expected: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'a {
        store.put_refresh_token(record, expected)
    }
    fn metadata(&self) -> &Metadata {
        &self.refresh_token_metadata
    }
    fn set_metadata(&mut self, metadata: Metadata, _now: Timestamp) {
        self.refresh_token_metadata = metadata;
    }
}

/// Read, apply, compare-and-swap; on `Stale` read again. The change is validated against the
/// record as it is at that moment, so a merge never overwrites a concurrent writer's keys.
async fn update_metadata<S: Store + ?Sized, T: Editable>(
    store: &S,
    id: &str,
    change: &MetadataChange,
    now: Timestamp,
) -> Result<Versioned<T>, StoreError> {
    for _ in 0..MAX_CAS_RETRIES {
        let current = T::fetch(store, id).await?.ok_or(StoreError::NotFound(T::KIND))?;
        let mut next = current.record.clone();
        next.set_metadata(change.apply(current.record.metadata())?, now);
        match T::cas(store, &next, current.version).await {
            Ok(version) => return Ok(Versioned { version, record: next }),
            Err(StoreError::Stale { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Stale { expected: 0 })
}
