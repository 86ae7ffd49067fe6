//! The `memory` backend: dashmaps in this process, for tests and single-process demos. Nothing
//! survives a restart.
//!
//! Single-record writes are atomic under the dashmap entry lock; operations that touch several
//! maps (end a session + tombstone + outbox, rotate a token) also hold `multi`, so no two of them
//! interleave.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use super::metadata::RecordKind;
use super::outbox::{Leased, OutboxEntry};
use super::records::{Record, RefreshToken, Session, Timestamp, Tombstone, Versioned};
use super::store::{Cursor, Page, Store, StoreError};

pub struct MemoryStore {
    sessions: DashMap<String, Versioned<Session>>,
    tokens: DashMap<String, Versioned<RefreshToken>>,
    tombstones: DashMap<String, Tombstone>,
    outbox: DashMap<u64, OutboxEntry>,
    next_outbox_id: AtomicU64,
    multi: Mutex<()>,
    tombstone_ttl: Duration,
}

impl MemoryStore {
    pub fn new(tombstone_ttl: Duration) -> Self {
        Self {
            sessions: DashMap::new(),
            tokens: DashMap::new(),
            tombstones: DashMap::new(),
            outbox: DashMap::new(),
            next_outbox_id: AtomicU64::new(1),
            multi: Mutex::new(()),
            tombstone_ttl,
        }
    }

    fn multi(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a poisoned lock carries no broken state.
        self.multi.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tombstone(&self, id: &str, ended_at: Timestamp) {
        let stone = Tombstone { id: id.to_owned(), ended_at, expires_at: ended_at.plus(self.tombstone_ttl) };
        self.tombstones.insert(id.to_owned(), stone);
    }
}

fn create<T: Clone>(
    map: &DashMap<String, Versioned<T>>,
    id: &str,
    record: &T,
    kind: RecordKind,
) -> Result<(), StoreError> {
    match map.entry(id.to_owned()) {
        Entry::Occupied(_) => Err(StoreError::AlreadyExists(kind)),
        Entry::Vacant(v) => {
            v.insert(Versioned { version: 1, record: record.clone() });
            Ok(())
        }
    }
}

fn cas<T: Clone>(
    map: &DashMap<String, Versioned<T>>,
    id: &str,
    record: &T,
    expected: u64,
    kind: RecordKind,
) -> Result<u64, StoreError> {
    let mut slot = map.get_mut(id).ok_or(StoreError::NotFound(kind))?;
    if slot.version != expected {
        return Err(StoreError::Stale { expected });
    }
    slot.version += 1;
    slot.record = record.clone();
    Ok(slot.version)
}

fn remove_if_version<T>(
    map: &DashMap<String, Versioned<T>>,
    id: &str,
    expected: u64,
    kind: RecordKind,
) -> Result<T, StoreError> {
    match map.remove_if(id, |_, v| v.version == expected) {
        Some((_, v)) => Ok(v.record),
        None if map.contains_key(id) => Err(StoreError::Stale { expected }),
        None => Err(StoreError::NotFound(kind)),
    }
}

/// A by-user page from a full scan: fine for a test backend.
fn page<T: Clone>(
    map: &DashMap<String, Versioned<T>>,
    after: Option<&Cursor>,
    take: usize,
    keep: impl Fn(&T) -> bool,
    cursor_of: impl Fn(&T) -> Cursor,
) -> Page<T> {
    let mut items: Vec<T> = map
        .iter()
        .map(|e| e.value().record.clone())
        .filter(|r| keep(r) && after.is_none_or(|a| cursor_of(r) > *a))
        .collect();
    items.sort_by_key(&cursor_of);
    items.truncate(take.saturating_add(1));
    Page::from_candidates(items, take, cursor_of)
}

fn session_cursor(s: &Session) -> Cursor {
    Cursor { created_at: s.created_at.millis(), id: s.id.clone() }
}

fn token_cursor(t: &RefreshToken) -> Cursor {
    Cursor { created_at: t.created_at.millis(), id: t.id.clone() }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        create(&self.sessions, &session.id, session, RecordKind::Session)
    }

    async fn get_session(&self, id: &str) -> Result<Option<Versioned<Session>>, StoreError> {
        Ok(self.sessions.get(id).map(|v| v.clone()))
    }

    async fn put_session(&self, session: &Session, expected: u64) -> Result<u64, StoreError> {
        cas(&self.sessions, &session.id, session, expected, RecordKind::Session)
    }

    async fn end_session(
        &self,
        id: &str,
        expected: u64,
        ended_at: Timestamp,
        outbox: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        let _multi = self.multi();
        remove_if_version(&self.sessions, id, expected, RecordKind::Session)?;
        self.tombstone(id, ended_at);
        for entry in outbox {
            let key = self.next_outbox_id.fetch_add(1, Ordering::Relaxed);
            self.outbox.insert(key, entry);
        }
        Ok(())
    }

    async fn list_sessions(
        &self,
        user_id: &str,
        after: Option<&Cursor>,
        take: usize,
        now: Timestamp,
    ) -> Result<Page<Session>, StoreError> {
        let keep = |s: &Session| s.user_id.as_deref() == Some(user_id) && !s.is_expired(now);
        Ok(page(&self.sessions, after, take, keep, session_cursor))
    }

    async fn expired_session_ids(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self
            .sessions
            .iter()
            .filter(|e| e.value().record.is_expired(now))
            .map(|e| e.key().clone())
            .take(limit)
            .collect())
    }

    async fn create_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        create(&self.tokens, &token.id, token, RecordKind::RefreshToken)
    }

    async fn get_refresh_token(&self, id: &str) -> Result<Option<Versioned<RefreshToken>>, StoreError> {
        Ok(self.tokens.get(id).map(|v| v.clone()))
    }

    async fn put_refresh_token(&self, token: &RefreshToken, expected: u64) -> Result<u64, StoreError> {
        cas(&self.tokens, &token.id, token, expected, RecordKind::RefreshToken)
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        expected: u64,
        now: Timestamp,
        successor: &RefreshToken,
    ) -> Result<(), StoreError> {
        let _multi = self.multi();
        if self.tokens.contains_key(&successor.id) {
            return Err(StoreError::AlreadyExists(RecordKind::RefreshToken));
        }
        {
            let mut old = self.tokens.get_mut(old_id).ok_or(StoreError::NotFound(RecordKind::RefreshToken))?;
            if old.version != expected {
                return Err(StoreError::Stale { expected });
            }
            old.version += 1;
            old.record.retired_at = Some(now);
        }
        create(&self.tokens, &successor.id, successor, RecordKind::RefreshToken)
    }

    async fn end_refresh_token(&self, id: &str, ended_at: Timestamp) -> Result<bool, StoreError> {
        let _multi = self.multi();
        let existed = self.tokens.remove(id).is_some();
        if existed {
            self.tombstone(id, ended_at);
        }
        Ok(existed)
    }

    async fn remove_refresh_token(&self, id: &str, expected: u64) -> Result<(), StoreError> {
        remove_if_version(&self.tokens, id, expected, RecordKind::RefreshToken).map(drop)
    }

    async fn list_refresh_tokens(
        &self,
        user_id: &str,
        after: Option<&Cursor>,
        take: usize,
        now: Timestamp,
    ) -> Result<Page<RefreshToken>, StoreError> {
        let keep = |t: &RefreshToken| t.user_id.as_deref() == Some(user_id) && !t.is_retired() && !t.is_expired(now);
        Ok(page(&self.tokens, after, take, keep, token_cursor))
    }

    async fn expired_refresh_token_ids(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self
            .tokens
            .iter()
            .filter(|e| e.value().record.is_expired(now))
            .map(|e| e.key().clone())
            .take(limit)
            .collect())
    }

    /// A full scan, like the by-user listings: fine for a test backend.
    async fn session_refresh_token_ids(
        &self,
        session_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .tokens
            .iter()
            .filter(|e| e.value().record.linked_session() == Some(session_id) && !e.value().record.is_expired(now))
            .map(|e| e.key().clone())
            .take(limit)
            .collect())
    }

    async fn get_tombstone(&self, id: &str, now: Timestamp) -> Result<Option<Tombstone>, StoreError> {
        Ok(self.tombstones.get(id).map(|t| t.clone()).filter(|t| t.expires_at > now))
    }

    async fn sweep_tombstones(&self, now: Timestamp) -> Result<usize, StoreError> {
        let before = self.tombstones.len();
        self.tombstones.retain(|_, t| t.expires_at > now);
        Ok(before.saturating_sub(self.tombstones.len()))
    }

    async fn lease_outbox(&self, now: Timestamp, lease: Duration, max: usize) -> Result<Vec<Leased>, StoreError> {
        let _multi = self.multi();
        let mut due: Vec<u64> = self.outbox.iter().filter(|e| e.value().due_at <= now).map(|e| *e.key()).collect();
        due.sort_unstable();
        due.truncate(max);
        let mut leased = Vec::with_capacity(due.len());
        for id in due {
            if let Some(mut entry) = self.outbox.get_mut(&id) {
                entry.due_at = now.plus(lease);
                leased.push(Leased { id, entry: entry.clone() });
            }
        }
        Ok(leased)
    }

    async fn ack_outbox(&self, id: u64) -> Result<(), StoreError> {
        self.outbox.remove(&id);
        Ok(())
    }

    async fn retry_outbox(&self, id: u64, attempts: u32, at: Timestamp) -> Result<(), StoreError> {
        if let Some(mut entry) = self.outbox.get_mut(&id) {
            entry.attempts = attempts;
            entry.due_at = at;
        }
        Ok(())
    }
}
