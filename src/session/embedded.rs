//! The `embedded` backend (the default): one redb file in the data directory. Every acknowledged
//! write has been committed with redb's `Durability::Immediate` (fsync), so a crash or restart
//! loses nothing acknowledged and the file always opens in a consistent state.
//!
//! **Group commit.** All writes go to one writer thread. It takes every job that is queued, runs
//! them in one write transaction, commits once and only then answers each job. Under load many
//! writes share one fsync, and none is acknowledged before it is durable. A job checks first
//! (version, existence) and writes after, so a job that fails a check has written nothing; a
//! storage error aborts the whole batch and every job in it gets the error.
//!
//! Reads run on the caller's thread in a redb read transaction (MVCC: they never wait for the
//! writer).
//!
//! **Layout versions.** The `meta` table's `layout` entry says which indexes the file has.
//! Layout 2 added `refresh_tokens_by_session` (the tokens a session revoke ends). A file without
//! the entry was written before it: [`EmbeddedStore::open`] builds the index from the tokens in
//! one transaction and marks the file, so older files open with nothing lost. A binary older
//! than layout 2 would write tokens without the index: do not go back to one on a file that a
//! newer one opened (or delete the `layout` entry first, and the next open rebuilds the index).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;

use super::metadata::RecordKind;
use super::outbox::{Leased, OutboxEntry};
use super::records::{Record, RefreshToken, Session, Timestamp, Tombstone, Versioned};
use super::store::{Cursor, Page, Store, StoreError};

/// The file inside the data directory.
pub const FILE_NAME: &str = "helloguard.redb";

type Bytes = &'static [u8];
const SESSIONS: TableDefinition<&str, Bytes> = TableDefinition::new("sessions");
const SESSIONS_BY_USER: TableDefinition<(&str, i64, &str), ()> = TableDefinition::new("sessions_by_user");
const SESSION_EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("session_expiry");
const TOKENS: TableDefinition<&str, Bytes> = TableDefinition::new("refresh_tokens");
const TOKENS_BY_USER: TableDefinition<(&str, i64, &str), ()> = TableDefinition::new("refresh_tokens_by_user");
const TOKEN_EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("refresh_token_expiry");
/// `(session_id, token id)` of every token that [`Record::linked_session`] links to a session.
const TOKENS_BY_SESSION: TableDefinition<(&str, &str), ()> = TableDefinition::new("refresh_tokens_by_session");
const TOMBSTONES: TableDefinition<&str, Bytes> = TableDefinition::new("tombstones");
const TOMBSTONE_EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("tombstone_expiry");
const OUTBOX: TableDefinition<u64, Bytes> = TableDefinition::new("outbox");
const OUTBOX_DUE: TableDefinition<(i64, u64), ()> = TableDefinition::new("outbox_due");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The `meta` key holding the layout version, and the version this code writes.
const LAYOUT_KEY: &str = "layout";
const LAYOUT: u64 = 2;

/// Up to this many queued jobs share one transaction.
const MAX_BATCH: usize = 512;

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(e.into().to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

/// The record's text is checked as UTF-8 once, as a whole: `from_slice` would check each string.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Backend(format!("corrupt record: {e}"));
    let text = std::str::from_utf8(bytes).map_err(|e| corrupt(&e))?;
    serde_json::from_str(text).map_err(|e| corrupt(&e))
}

/// Where each record kind lives: its table and its two indexes.
trait Tables: Record {
    const TABLE: TableDefinition<'static, &'static str, Bytes>;
    const BY_USER: TableDefinition<'static, (&'static str, i64, &'static str), ()>;
    const EXPIRY: TableDefinition<'static, (i64, &'static str), ()>;
}

impl Tables for Session {
    const TABLE: TableDefinition<'static, &'static str, Bytes> = SESSIONS;
    const BY_USER: TableDefinition<'static, (&'static str, i64, &'static str), ()> = SESSIONS_BY_USER;
    const EXPIRY: TableDefinition<'static, (i64, &'static str), ()> = SESSION_EXPIRY;
}

impl Tables for RefreshToken {
    const TABLE: TableDefinition<'static, &'static str, Bytes> = TOKENS;
    const BY_USER: TableDefinition<'static, (&'static str, i64, &'static str), ()> = TOKENS_BY_USER;
    const EXPIRY: TableDefinition<'static, (i64, &'static str), ()> = TOKEN_EXPIRY;
}

// --- write-side helpers, all run inside one write transaction -----------------------------------

fn read_versioned<T: Tables>(tx: &WriteTransaction, id: &str) -> Result<Option<Versioned<T>>, StoreError> {
    let table = tx.open_table(T::TABLE).map_err(backend)?;
    let found = table.get(id).map_err(backend)?;
    found.map(|v| decode(v.value())).transpose()
}

/// Writes `next` at `version`, moving its index entries from those of `previous`.
fn write_record<T: Tables>(
    tx: &WriteTransaction,
    previous: Option<&T>,
    next: &T,
    version: u64,
) -> Result<(), StoreError> {
    unindex(tx, previous)?;
    let bytes = encode(&Versioned { version, record: next.clone() })?;
    tx.open_table(T::TABLE).map_err(backend)?.insert(next.id(), bytes.as_slice()).map_err(backend)?;
    if let Some((user, created)) = next.listed_under() {
        tx.open_table(T::BY_USER).map_err(backend)?.insert((user, created, next.id()), ()).map_err(backend)?;
    }
    if let Some(session) = next.linked_session() {
        tx.open_table(TOKENS_BY_SESSION).map_err(backend)?.insert((session, next.id()), ()).map_err(backend)?;
    }
    tx.open_table(T::EXPIRY).map_err(backend)?.insert((next.expires().millis(), next.id()), ()).map_err(backend)?;
    Ok(())
}

fn unindex<T: Tables>(tx: &WriteTransaction, previous: Option<&T>) -> Result<(), StoreError> {
    let Some(prev) = previous else { return Ok(()) };
    if let Some((user, created)) = prev.listed_under() {
        tx.open_table(T::BY_USER).map_err(backend)?.remove((user, created, prev.id())).map_err(backend)?;
    }
    if let Some(session) = prev.linked_session() {
        tx.open_table(TOKENS_BY_SESSION).map_err(backend)?.remove((session, prev.id())).map_err(backend)?;
    }
    tx.open_table(T::EXPIRY).map_err(backend)?.remove((prev.expires().millis(), prev.id())).map_err(backend)?;
    Ok(())
}

fn create_in<T: Tables>(tx: &WriteTransaction, record: &T) -> Result<(), StoreError> {
    if read_versioned::<T>(tx, record.id())?.is_some() {
        return Err(StoreError::AlreadyExists(T::KIND));
    }
    write_record(tx, None, record, 1)
}

/// Checks that the record is at `expected` and returns it.
fn check_version<T: Tables>(tx: &WriteTransaction, id: &str, expected: u64) -> Result<T, StoreError> {
    let current = read_versioned::<T>(tx, id)?.ok_or(StoreError::NotFound(T::KIND))?;
    if current.version != expected {
        return Err(StoreError::Stale { expected });
    }
    Ok(current.record)
}

fn cas_in<T: Tables>(tx: &WriteTransaction, record: &T, expected: u64) -> Result<u64, StoreError> {
    let previous = check_version::<T>(tx, record.id(), expected)?;
    write_record(tx, Some(&previous), record, expected + 1)?;
    Ok(expected + 1)
}

fn remove_in<T: Tables>(tx: &WriteTransaction, record: &T) -> Result<(), StoreError> {
    unindex(tx, Some(record))?;
    tx.open_table(T::TABLE).map_err(backend)?.remove(record.id()).map_err(backend)?;
    Ok(())
}

fn tombstone_in(tx: &WriteTransaction, id: &str, ended_at: Timestamp, ttl: Duration) -> Result<(), StoreError> {
    let stone = Tombstone { id: id.to_owned(), ended_at, expires_at: ended_at.plus(ttl) };
    let bytes = encode(&stone)?;
    tx.open_table(TOMBSTONES).map_err(backend)?.insert(id, bytes.as_slice()).map_err(backend)?;
    tx.open_table(TOMBSTONE_EXPIRY).map_err(backend)?.insert((stone.expires_at.millis(), id), ()).map_err(backend)?;
    Ok(())
}

fn put_outbox_in(
    tx: &WriteTransaction,
    id: u64,
    entry: &OutboxEntry,
    previous_due: Option<i64>,
) -> Result<(), StoreError> {
    let mut due = tx.open_table(OUTBOX_DUE).map_err(backend)?;
    if let Some(prev) = previous_due {
        due.remove((prev, id)).map_err(backend)?;
    }
    due.insert((entry.due_at.millis(), id), ()).map_err(backend)?;
    let bytes = encode(entry)?;
    tx.open_table(OUTBOX).map_err(backend)?.insert(id, bytes.as_slice()).map_err(backend)?;
    Ok(())
}

fn next_outbox_id(tx: &WriteTransaction) -> Result<u64, StoreError> {
    let mut counters = tx.open_table(COUNTERS).map_err(backend)?;
    let current = counters.get("outbox").map_err(backend)?.map(|v| v.value()).unwrap_or(0);
    let next = current + 1;
    counters.insert("outbox", next).map_err(backend)?;
    Ok(next)
}

// --- layout upgrades ---------------------------------------------------------------------------

/// Brings a file written by an older layout up to [`LAYOUT`] in one durable transaction; a file
/// already there is left untouched.
fn upgrade_layout(db: &Database) -> Result<(), StoreError> {
    let tx = db.begin_write().map_err(backend)?;
    let layout = tx.open_table(META).map_err(backend)?.get(LAYOUT_KEY).map_err(backend)?.map(|v| v.value());
    if layout.is_some_and(|v| v >= LAYOUT) {
        return tx.abort().map_err(backend);
    }
    rebuild_tokens_by_session(&tx)?;
    tx.open_table(META).map_err(backend)?.insert(LAYOUT_KEY, LAYOUT).map_err(backend)?;
    tx.commit().map_err(backend)
}

/// Layout 1 → 2: the by-session index, from scratch, out of the token records.
fn rebuild_tokens_by_session(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.delete_table(TOKENS_BY_SESSION).map_err(backend)?;
    let tokens = tx.open_table(TOKENS).map_err(backend)?;
    let mut index = tx.open_table(TOKENS_BY_SESSION).map_err(backend)?;
    for entry in tokens.iter().map_err(backend)? {
        let (_, bytes) = entry.map_err(backend)?;
        let token: Versioned<RefreshToken> = decode(bytes.value())?;
        if let Some(session) = token.record.linked_session() {
            index.insert((session, token.record.id.as_str()), ()).map_err(backend)?;
        }
    }
    Ok(())
}

// --- read-side helpers ---------------------------------------------------------------------------

fn read_tx(db: &Database) -> Result<ReadTransaction, StoreError> {
    db.begin_read().map_err(backend)
}

/// `Ok(None)` for a table that was never written (fresh file).
fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>, StoreError> {
    match tx.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(backend(e)),
    }
}

fn get_versioned<T: Tables>(db: &Database, id: &str) -> Result<Option<Versioned<T>>, StoreError> {
    let tx = read_tx(db)?;
    let Some(table) = open_read(&tx, T::TABLE)? else {
        return Ok(None);
    };
    let found = table.get(id).map_err(backend)?;
    found.map(|v| decode(v.value())).transpose()
}

fn list_by_user<T: Tables>(
    db: &Database,
    user: &str,
    after: Option<&Cursor>,
    take: usize,
    live: impl Fn(&T) -> bool,
) -> Result<Page<T>, StoreError> {
    let tx = read_tx(db)?;
    let (Some(index), Some(records)) = (open_read(&tx, T::BY_USER)?, open_read(&tx, T::TABLE)?) else {
        return Ok(Page { items: Vec::new(), next: None });
    };
    let range = match after {
        Some(c) => index.range((user, c.created_at, c.id.as_str())..),
        None => index.range((user, i64::MIN, "")..),
    }
    .map_err(backend)?;
    let mut items = Vec::new();
    for entry in range {
        let (key, _) = entry.map_err(backend)?;
        let (entry_user, created, id) = key.value();
        if entry_user != user {
            break;
        }
        if after.is_some_and(|c| c.created_at == created && c.id == id) {
            continue;
        }
        let Some(bytes) = records.get(id).map_err(backend)? else {
            continue;
        };
        let record: Versioned<T> = decode(bytes.value())?;
        if live(&record.record) {
            items.push(record.record);
            if items.len() > take {
                break;
            }
        }
    }
    Ok(Page::from_candidates(items, take, |r: &T| Cursor {
        created_at: r.listed_under().map(|(_, c)| c).unwrap_or(0),
        id: r.id().to_owned(),
    }))
}

fn session_token_ids(db: &Database, session_id: &str, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
    let tx = read_tx(db)?;
    let (Some(index), Some(records)) = (open_read(&tx, TOKENS_BY_SESSION)?, open_read(&tx, TOKENS)?) else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in index.range((session_id, "")..).map_err(backend)? {
        if ids.len() >= limit {
            break;
        }
        let (key, _) = entry.map_err(backend)?;
        let (session, id) = key.value();
        if session != session_id {
            break;
        }
        let Some(bytes) = records.get(id).map_err(backend)? else {
            continue;
        };
        let token: Versioned<RefreshToken> = decode(bytes.value())?;
        if !token.record.is_expired(now) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

fn expired_ids<T: Tables>(db: &Database, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
    let tx = read_tx(db)?;
    let Some(index) = open_read(&tx, T::EXPIRY)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in index.range((i64::MIN, "")..=(now.millis(), "\u{10FFFF}")).map_err(backend)? {
        let (key, _) = entry.map_err(backend)?;
        ids.push(key.value().1.to_owned());
        if ids.len() >= limit {
            break;
        }
    }
    Ok(ids)
}

// --- the writer thread ---------------------------------------------------------------------------

/// Runs inside the batch transaction; returns whether it hit a storage error (which aborts the
/// batch) and how to answer its caller once the batch's fate is known.
type Job = Box<dyn FnOnce(&WriteTransaction) -> (bool, Completion) + Send>;
/// Called after commit (`None`) or abort (`Some(error)`).
type Completion = Box<dyn FnOnce(Option<StoreError>) + Send>;

fn writer_loop(db: Arc<Database>, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&db, batch);
    }
}

fn run_batch(db: &Database, batch: Vec<Job>) {
    let tx = match db.begin_write() {
        Ok(tx) => tx,
        Err(e) => {
            let err = backend(e);
            // Each job must still be answered; run none of them.
            drop(batch);
            tracing::error!(error = %err, "embedded store: cannot begin write transaction");
            return;
        }
    };
    let mut failed = false;
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        let (storage_error, completion) = job(&tx);
        failed |= storage_error;
        completions.push(completion);
    }
    let outcome = if failed {
        Some(StoreError::Backend("write batch aborted by a storage error".into()))
    } else {
        tx.commit().err().map(backend)
    };
    if let Some(err) = &outcome {
        tracing::error!(error = %err, "embedded store: write batch failed");
    }
    for completion in completions {
        completion(outcome.clone());
    }
}

/// The embedded store. Cheap to share behind an `Arc`.
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// `None` once dropping: closing the channel stops the writer.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    tombstone_ttl: Duration,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (or creates) `helloguard.redb` in `data_dir`, creating the directory if needed.
    pub fn open(data_dir: &Path, tombstone_ttl: Duration) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Backend(format!("create data directory {}: {e}", data_dir.display())))?;
        let path = data_dir.join(FILE_NAME);
        let db = Arc::new(Database::create(&path).map_err(backend)?);
        upgrade_layout(&db)?;
        let (sender, receiver) = mpsc::channel::<Job>();
        let writer_db = Arc::clone(&db);
        let writer = std::thread::Builder::new()
            .name("helloguard-store-writer".into())
            .spawn(move || writer_loop(writer_db, receiver))
            .map_err(|e| StoreError::Backend(format!("spawn writer thread: {e}")))?;
        Ok(Self { db, jobs: Mutex::new(Some(sender)), writer: Some(writer), tombstone_ttl, path })
    }

    /// The redb file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `f` for the writer thread and waits until its batch is durable.
    async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            let result = f(tx);
            let storage_error = matches!(result, Err(StoreError::Backend(_)));
            let completion: Completion = Box::new(move |batch_error| {
                let _ = answer.send(match batch_error {
                    Some(e) => Err(e),
                    None => result,
                });
            });
            (storage_error, completion)
        });
        {
            let sender = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            sender
                .as_ref()
                .ok_or_else(|| StoreError::Backend("store is closing".into()))?
                .send(job)
                .map_err(|_| StoreError::Backend("writer thread stopped".into()))?;
        }
        answered.await.map_err(|_| StoreError::Backend("write transaction did not complete".into()))?
    }
}

impl Drop for EmbeddedStore {
    /// Stops the writer after its last batch and waits for it, so the file lock is released when
    /// the store is gone and the same process (or the next one) can reopen the file at once.
    fn drop(&mut self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("embedded store writer thread panicked");
            }
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let session = session.clone();
        self.write(move |tx| create_in(tx, &session)).await
    }

    async fn get_session(&self, id: &str) -> Result<Option<Versioned<Session>>, StoreError> {
        get_versioned(&self.db, id)
    }

    async fn put_session(&self, session: &Session, expected: u64) -> Result<u64, StoreError> {
        let session = session.clone();
        self.write(move |tx| cas_in(tx, &session, expected)).await
    }

    async fn end_session(
        &self,
        id: &str,
        expected: u64,
        ended_at: Timestamp,
        outbox: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        let ttl = self.tombstone_ttl;
        self.write(move |tx| {
            let session = check_version::<Session>(tx, &id, expected)?;
            remove_in(tx, &session)?;
            tombstone_in(tx, &id, ended_at, ttl)?;
            for entry in &outbox {
                let key = next_outbox_id(tx)?;
                put_outbox_in(tx, key, entry, None)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_sessions(
        &self,
        user_id: &str,
        after: Option<&Cursor>,
        take: usize,
        now: Timestamp,
    ) -> Result<Page<Session>, StoreError> {
        list_by_user(&self.db, user_id, after, take, |s: &Session| !s.is_expired(now))
    }

    async fn expired_session_ids(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        expired_ids::<Session>(&self.db, now, limit)
    }

    async fn create_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.write(move |tx| create_in(tx, &token)).await
    }

    async fn get_refresh_token(&self, id: &str) -> Result<Option<Versioned<RefreshToken>>, StoreError> {
        get_versioned(&self.db, id)
    }

    async fn put_refresh_token(&self, token: &RefreshToken, expected: u64) -> Result<u64, StoreError> {
        let token = token.clone();
        self.write(move |tx| cas_in(tx, &token, expected)).await
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        expected: u64,
        now: Timestamp,
        successor: &RefreshToken,
    ) -> Result<(), StoreError> {
        let old_id = old_id.to_owned();
        let successor = successor.clone();
        self.write(move |tx| {
            let old = check_version::<RefreshToken>(tx, &old_id, expected)?;
            if read_versioned::<RefreshToken>(tx, &successor.id)?.is_some() {
                return Err(StoreError::AlreadyExists(RecordKind::RefreshToken));
            }
            let mut retired = old.clone();
            retired.retired_at = Some(now);
            write_record(tx, Some(&old), &retired, expected + 1)?;
            write_record(tx, None, &successor, 1)
        })
        .await
    }

    async fn end_refresh_token(&self, id: &str, ended_at: Timestamp) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let ttl = self.tombstone_ttl;
        self.write(move |tx| {
            let Some(current) = read_versioned::<RefreshToken>(tx, &id)? else {
                return Ok(false);
            };
            remove_in(tx, &current.record)?;
            tombstone_in(tx, &id, ended_at, ttl)?;
            Ok(true)
        })
        .await
    }

    async fn remove_refresh_token(&self, id: &str, expected: u64) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |tx| {
            let token = check_version::<RefreshToken>(tx, &id, expected)?;
            remove_in(tx, &token)
        })
        .await
    }

    async fn list_refresh_tokens(
        &self,
        user_id: &str,
        after: Option<&Cursor>,
        take: usize,
        now: Timestamp,
    ) -> Result<Page<RefreshToken>, StoreError> {
        list_by_user(&self.db, user_id, after, take, |t: &RefreshToken| !t.is_expired(now))
    }

    async fn expired_refresh_token_ids(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        expired_ids::<RefreshToken>(&self.db, now, limit)
    }

    async fn session_refresh_token_ids(
        &self,
        session_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        session_token_ids(&self.db, session_id, now, limit)
    }

    async fn get_tombstone(&self, id: &str, now: Timestamp) -> Result<Option<Tombstone>, StoreError> {
        let tx = read_tx(&self.db)?;
        let Some(table) = open_read(&tx, TOMBSTONES)? else {
            return Ok(None);
        };
        let found = table.get(id).map_err(backend)?;
        let stone: Option<Tombstone> = found.map(|v| decode(v.value())).transpose()?;
        Ok(stone.filter(|t| t.expires_at > now))
    }

    async fn sweep_tombstones(&self, now: Timestamp) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let mut index = tx.open_table(TOMBSTONE_EXPIRY).map_err(backend)?;
            let mut stones = tx.open_table(TOMBSTONES).map_err(backend)?;
            let mut removed = 0;
            loop {
                let Some((key, _)) = index.first().map_err(backend)? else {
                    break;
                };
                let (expires, id) = key.value();
                if expires > now.millis() {
                    break;
                }
                let id = id.to_owned();
                drop(key);
                index.remove((expires, id.as_str())).map_err(backend)?;
                // A newer tombstone for the same id (ended again) has its own index entry.
                let current: Option<Tombstone> =
                    stones.get(id.as_str()).map_err(backend)?.map(|v| decode(v.value())).transpose()?;
                if current.is_some_and(|t| t.expires_at.millis() == expires) {
                    stones.remove(id.as_str()).map_err(backend)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }

    async fn lease_outbox(&self, now: Timestamp, lease: Duration, max: usize) -> Result<Vec<Leased>, StoreError> {
        self.write(move |tx| {
            let mut due_ids = Vec::new();
            {
                let due = tx.open_table(OUTBOX_DUE).map_err(backend)?;
                for entry in due.range((i64::MIN, 0)..=(now.millis(), u64::MAX)).map_err(backend)? {
                    let (key, _) = entry.map_err(backend)?;
                    due_ids.push(key.value());
                    if due_ids.len() >= max {
                        break;
                    }
                }
            }
            let mut leased = Vec::with_capacity(due_ids.len());
            for (due_at, id) in due_ids {
                let stored = tx
                    .open_table(OUTBOX)
                    .map_err(backend)?
                    .get(id)
                    .map_err(backend)?
                    .map(|v| decode::<OutboxEntry>(v.value()))
                    .transpose()?;
                let Some(mut entry) = stored else { continue };
                entry.due_at = now.plus(lease);
                put_outbox_in(tx, id, &entry, Some(due_at))?;
                leased.push(Leased { id, entry });
            }
            Ok(leased)
        })
        .await
    }

    async fn ack_outbox(&self, id: u64) -> Result<(), StoreError> {
        self.write(move |tx| {
            let removed = tx
                .open_table(OUTBOX)
                .map_err(backend)?
                .remove(id)
                .map_err(backend)?
                .map(|v| decode::<OutboxEntry>(v.value()))
                .transpose()?;
            if let Some(entry) = removed {
                tx.open_table(OUTBOX_DUE).map_err(backend)?.remove((entry.due_at.millis(), id)).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn retry_outbox(&self, id: u64, attempts: u32, at: Timestamp) -> Result<(), StoreError> {
        self.write(move |tx| {
            let stored = tx
                .open_table(OUTBOX)
                .map_err(backend)?
                .get(id)
                .map_err(backend)?
                .map(|v| decode::<OutboxEntry>(v.value()))
                .transpose()?;
            let Some(mut entry) = stored else {
                return Ok(());
            };
            let previous_due = entry.due_at.millis();
            entry.attempts = attempts;
            entry.due_at = at;
            put_outbox_in(tx, id, &entry, Some(previous_due))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::records::{Device, Lifetimes};

    const TTL: Duration = Duration::from_secs(600);

    fn token(id: &str, session: Option<&str>, now: Timestamp) -> RefreshToken {
        let mut t = RefreshToken::new(id.into(), now, Lifetimes::default(), Device::default());
        t.session_id = session.map(Into::into);
        t
    }

    async fn linked(store: &EmbeddedStore, session: &str, now: Timestamp) -> Vec<String> {
        let mut ids = store.session_refresh_token_ids(session, now, 10).await.unwrap();
        ids.sort();
        ids
    }

    /// A record that is not UTF-8, or not JSON, is reported as corrupt, never read as something else.
    #[tokio::test]
    async fn a_corrupt_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut sessions = tx.open_table(SESSIONS).unwrap();
                sessions.insert("ses_not_utf8", b"{\"version\":1,\"record\":\"\xff\"}".as_slice()).unwrap();
                sessions.insert("ses_not_json", b"{\"version\":1,".as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        let store = EmbeddedStore::open(dir.path(), TTL).unwrap();
        for id in ["ses_not_utf8", "ses_not_json"] {
            match store.get_session(id).await {
                Err(StoreError::Backend(message)) => assert!(message.starts_with("corrupt record: "), "{message}"),
                other => panic!("{id}: {other:?}"),
            }
        }
    }

    /// A file from before layout 2 (tokens, no by-session index, no layout entry) opens with the
    /// index built from its tokens, retired ones left out.
    #[tokio::test]
    async fn a_file_without_the_by_session_index_gets_it_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        {
            let store = EmbeddedStore::open(dir.path(), TTL).unwrap();
            for (id, session) in
                [("rt_a", Some("ses_1")), ("rt_b", Some("ses_1")), ("rt_c", Some("ses_2")), ("rt_d", None)]
            {
                store.create_refresh_token(&token(id, session, now)).await.unwrap();
            }
            let successor = token("rt_b2", Some("ses_1"), now);
            store.rotate_refresh_token("rt_b", 1, now, &successor).await.unwrap();
            assert_eq!(linked(&store, "ses_1", now).await, ["rt_a", "rt_b2"]);
        }
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let tx = db.begin_write().unwrap();
            assert!(tx.delete_table(TOKENS_BY_SESSION).unwrap());
            assert_eq!(tx.open_table(META).unwrap().remove(LAYOUT_KEY).unwrap().map(|v| v.value()), Some(LAYOUT));
            tx.commit().unwrap();
            assert_eq!(session_token_ids(&db, "ses_1", now, 10).unwrap(), Vec::<String>::new(), "the index is gone");
        }
        let store = EmbeddedStore::open(dir.path(), TTL).unwrap();
        assert_eq!(linked(&store, "ses_1", now).await, ["rt_a", "rt_b2"]);
        assert_eq!(linked(&store, "ses_2", now).await, ["rt_c"]);
        // Kept up from then on.
        assert!(store.end_refresh_token("rt_a", now).await.unwrap());
        assert_eq!(linked(&store, "ses_1", now).await, ["rt_b2"]);
    }
}
