//! The `redis` backend, for several proxies sharing sessions: the `redis` crate on tokio with a
//! `ConnectionManager` (one multiplexed, auto-reconnecting connection).
//!
//! **Atomicity.** Every write is one Lua script run, `GUARDED_BATCH`: it checks the version field
//! of one record hash (absent / equal to the version the writer read / present) and only then runs
//! the batch of commands the Rust side prepared (record, indexes, tombstone, outbox). Redis runs
//! a script without interleaving, so a stale writer gets a typed `Stale` error and a multi-record
//! change (end session + tombstone + outbox) is all or nothing. MULTI/WATCH is not used because
//! WATCH is per connection and the connection manager multiplexes callers on one connection.
//!
//! **Keys** (all under the configured prefix `P`): `P:s:<id>` / `P:t:<id>` hashes `{v, d}`
//! (version, record JSON); `P:su:<user>` / `P:tu:<user>` sorted sets of `<created_at 20
//! digits>:<id>` (all score 0, so lexical order = `created_at`, then `id`); `P:sx` / `P:tx`
//! sorted sets of ids by expiry; `P:ts:<session id>` the ids of the live, non-retired tokens
//! linked to a session (what a revoke ends), scored by their expiry; `P:tomb:<id>`; `P:ob:<n>`
//! outbox entries, `P:obq` their due times, `P:obid` the id counter; `P:layout` the key layout's
//! version.
//!
//! **TTLs follow lifetimes.** A refresh token's key expires at its expiry (expired tokens vanish
//! silently, §7). A session's key expires [`SESSION_KEY_GRACE`] after its expiry: the sweeper
//! must still read an expired session to end it with a back-channel logout, and the grace only
//! matters when no proxy swept for that long. A tombstone expires with its TTL. A `P:ts:` set
//! expires with its latest-expiring member (the script sets that after every batch touching it),
//! so the set of a session whose tokens all vanished by TTL does not linger.
//!
//! **Layout 2** added `P:ts:`. [`RedisStore::connect`] finds `P:layout` missing on data written
//! before it and indexes every stored token, then sets it. Proxies of an older version write
//! tokens without the index: upgrade every proxy sharing a prefix, then delete `P:layout` if older
//! ones ran after the first upgraded one started, and the next connect indexes again.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands as _, Script};

use super::metadata::RecordKind;
use super::outbox::{Leased, OutboxEntry};
use super::records::{Record, RefreshToken, Session, Timestamp, Tombstone, Versioned};
use super::store::{Cursor, Page, Store, StoreError};

/// How long an expired session's key outlives its expiry, waiting for a sweeper.
pub const SESSION_KEY_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The key layout this code writes (see the module docs).
const LAYOUT: u64 = 2;

/// Keys one `SCAN` step asks for while upgrading the layout.
const SCAN_COUNT: usize = 1000;

/// `KEYS[1]`: the guarded hash. `KEYS[2..]`: sorted sets whose key is to expire at their highest
/// score once the batch ran.
const GUARDED_BATCH: &str = r"
local cur = redis.call('HGET', KEYS[1], 'v')
local want = ARGV[1]
if want == 'absent' then
  if cur then return -1 end
elseif want == 'present' then
  if not cur then return -2 end
else
  if not cur then return -2 end
  if cur ~= want then return -3 end
end
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
for k = 2, #KEYS do
  local top = redis.call('ZRANGE', KEYS[k], -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', KEYS[k], string.format('%d', tonumber(top[2]))) end
end
return 1
";

const LEASE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local entry = redis.call('HGET', ARGV[4] .. id, 'd')
  if entry then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    table.insert(out, id)
    table.insert(out, entry)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
";

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("corrupt record: {e}")))
}

/// The condition `GUARDED_BATCH` checks before running its commands.
enum Guard {
    Absent,
    Present,
    Version(u64),
}

/// Commands to run atomically after the guard passes, and the sorted sets whose key then expires
/// with their latest member.
#[derive(Default)]
struct Batch {
    args: Vec<String>,
    expire_at_top: Vec<String>,
}

impl Batch {
    fn cmd<const N: usize>(&mut self, parts: [&str; N]) -> &mut Self {
        self.args.push(N.to_string());
        self.args.extend(parts.iter().map(|p| (*p).to_owned()));
        self
    }
}

/// Per-kind key tags and TTL policy.
trait Keys: Record {
    const TAG: &'static str;
    const USER_TAG: &'static str;
    const EXPIRY_TAG: &'static str;
    /// When the record's key may vanish.
    fn key_expires(&self) -> Timestamp;
}

impl Keys for Session {
    const TAG: &'static str = "s";
    const USER_TAG: &'static str = "su";
    const EXPIRY_TAG: &'static str = "sx";
    fn key_expires(&self) -> Timestamp {
        self.expires().plus(SESSION_KEY_GRACE)
    }
}

impl Keys for RefreshToken {
    const TAG: &'static str = "t";
    const USER_TAG: &'static str = "tu";
    const EXPIRY_TAG: &'static str = "tx";
    fn key_expires(&self) -> Timestamp {
        self.expires()
    }
}

/// `<created_at, 20 digits>:<id>`: sorts lexically as (created_at, id).
fn user_member(created_at: i64, id: &str) -> String {
    format!("{:020}:{id}", created_at.max(0))
}

/// `text` with the `SCAN MATCH` glob characters escaped, so a prefix matches only itself.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn parse_member(member: &str) -> Option<Cursor> {
    let (created, id) = member.split_once(':')?;
    Some(Cursor { created_at: created.parse().ok()?, id: id.to_owned() })
}

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    tombstone_ttl: Duration,
    guarded: Script,
    lease: Script,
}

impl RedisStore {
    /// Connects to `url`; keys live under `prefix` (so several deployments or tests can share a
    /// server). `timeout` bounds the first connection, every reconnection and every command: a
    /// Redis that stops answering yields errors after it, as one that is down does.
    pub async fn connect(
        url: &str,
        prefix: &str,
        tombstone_ttl: Duration,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(timeout, client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| StoreError::Backend("timed out connecting to Redis".into()))?
            .map_err(backend)?;
        let store = Self {
            conn,
            prefix: prefix.to_owned(),
            tombstone_ttl,
            guarded: Script::new(GUARDED_BATCH),
            lease: Script::new(LEASE),
        };
        store.upgrade_layout().await?;
        Ok(store)
    }

    /// Layout 1 → 2: links every stored token to its session's `P:ts:` set, then records the
    /// layout. Idempotent, so proxies starting together may all run it.
    async fn upgrade_layout(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let layout: Option<u64> = conn.get(self.single("layout")).await.map_err(backend)?;
        if layout.is_some_and(|v| v >= LAYOUT) {
            return Ok(());
        }
        let records = self.record_key::<RefreshToken>("");
        let pattern = format!("{}*", glob_escape(&records));
        let mut cursor = 0_u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            for id in keys.iter().filter_map(|k| k.strip_prefix(&records)) {
                self.link_stored_token(id).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let _: () = conn.set(self.single("layout"), LAYOUT).await.map_err(backend)?;
        Ok(())
    }

    /// Adds a stored token to its session's set, unless it changed meanwhile (then again).
    async fn link_stored_token(&self, id: &str) -> Result<(), StoreError> {
        loop {
            let Some(current) = self.get::<RefreshToken>(id).await? else {
                return Ok(());
            };
            let mut batch = Batch::default();
            self.link(&mut batch, &current.record);
            if batch.args.is_empty() {
                return Ok(());
            }
            let key = self.record_key::<RefreshToken>(id);
            match self.guarded(&key, Guard::Version(current.version), &batch, RecordKind::RefreshToken).await {
                Ok(()) | Err(StoreError::NotFound(_)) => return Ok(()),
                Err(StoreError::Stale { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn key(&self, tag: &str, rest: &str) -> String {
        format!("{}:{tag}:{rest}", self.prefix)
    }

    /// A key of which there is one per prefix (`P:obq`).
    fn single(&self, tag: &str) -> String {
        format!("{}:{tag}", self.prefix)
    }

    fn record_key<T: Keys>(&self, id: &str) -> String {
        self.key(T::TAG, id)
    }

    fn expiry_key<T: Keys>(&self) -> String {
        self.single(T::EXPIRY_TAG)
    }

    /// Runs `batch` if `guard` holds for the hash at `key`.
    async fn guarded(&self, key: &str, guard: Guard, batch: &Batch, kind: RecordKind) -> Result<(), StoreError> {
        let mut invocation = self.guarded.key(key);
        for set in &batch.expire_at_top {
            invocation.key(set);
        }
        match guard {
            Guard::Absent => invocation.arg("absent"),
            Guard::Present => invocation.arg("present"),
            Guard::Version(v) => invocation.arg(v.to_string()),
        };
        for arg in &batch.args {
            invocation.arg(arg);
        }
        let mut conn = self.conn.clone();
        let status: i64 = invocation.invoke_async(&mut conn).await.map_err(backend)?;
        match (status, guard) {
            (1, _) => Ok(()),
            (-1, _) => Err(StoreError::AlreadyExists(kind)),
            (-2, _) => Err(StoreError::NotFound(kind)),
            (_, Guard::Version(expected)) => Err(StoreError::Stale { expected }),
            (other, _) => Err(StoreError::Backend(format!("unexpected script status {other}"))),
        }
    }

    async fn get<T: Keys>(&self, id: &str) -> Result<Option<Versioned<T>>, StoreError> {
        let mut conn = self.conn.clone();
        let (version, data): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.record_key::<T>(id))
            .arg("v")
            .arg("d")
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        match (version, data) {
            (Some(version), Some(data)) => Ok(Some(Versioned { version, record: decode(&data)? })),
            _ => Ok(None),
        }
    }

    /// Adds the commands that write `next` at `version` and move its index entries from those of
    /// `previous`.
    fn write_record<T: Keys>(
        &self,
        batch: &mut Batch,
        previous: Option<&T>,
        next: &T,
        version: u64,
    ) -> Result<(), StoreError> {
        self.unindex(batch, previous);
        let key = self.record_key::<T>(next.id());
        batch.cmd(["HSET", &key, "v", &version.to_string(), "d", &encode(next)?]);
        batch.cmd(["PEXPIREAT", &key, &next.key_expires().millis().to_string()]);
        if let Some((user, created)) = next.listed_under() {
            batch.cmd(["ZADD", &self.key(T::USER_TAG, user), "0", &user_member(created, next.id())]);
        }
        batch.cmd(["ZADD", &self.expiry_key::<T>(), &next.expires().millis().to_string(), next.id()]);
        self.link(batch, next);
        Ok(())
    }

    /// Adds `record` to the set of the session it is linked to, scored by when its key expires.
    fn link<T: Keys>(&self, batch: &mut Batch, record: &T) {
        let Some(session) = record.linked_session() else { return };
        let set = self.key("ts", session);
        batch.cmd(["ZADD", &set, &record.key_expires().millis().to_string(), record.id()]);
        batch.expire_at_top.push(set);
    }

    fn unindex<T: Keys>(&self, batch: &mut Batch, previous: Option<&T>) {
        let Some(prev) = previous else { return };
        if let Some((user, created)) = prev.listed_under() {
            batch.cmd(["ZREM", &self.key(T::USER_TAG, user), &user_member(created, prev.id())]);
        }
        batch.cmd(["ZREM", &self.expiry_key::<T>(), prev.id()]);
        if let Some(session) = prev.linked_session() {
            batch.cmd(["ZREM", &self.key("ts", session), prev.id()]);
        }
    }

    fn remove_record<T: Keys>(&self, batch: &mut Batch, record: &T) {
        self.unindex(batch, Some(record));
        batch.cmd(["DEL", &self.record_key::<T>(record.id())]);
    }

    fn tombstone(&self, batch: &mut Batch, id: &str, ended_at: Timestamp) -> Result<(), StoreError> {
        let stone = Tombstone { id: id.to_owned(), ended_at, expires_at: ended_at.plus(self.tombstone_ttl) };
        let key = self.key("tomb", id);
        batch.cmd(["SET", &key, &encode(&stone)?]);
        batch.cmd(["PEXPIREAT", &key, &stone.expires_at.millis().to_string()]);
        Ok(())
    }

    async fn create<T: Keys>(&self, record: &T) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        self.write_record(&mut batch, None, record, 1)?;
        self.guarded(&self.record_key::<T>(record.id()), Guard::Absent, &batch, T::KIND).await
    }

    async fn cas<T: Keys>(&self, record: &T, expected: u64) -> Result<u64, StoreError> {
        let current = self.get::<T>(record.id()).await?.ok_or(StoreError::NotFound(T::KIND))?;
        if current.version != expected {
            return Err(StoreError::Stale { expected });
        }
        let mut batch = Batch::default();
        self.write_record(&mut batch, Some(&current.record), record, expected + 1)?;
        self.guarded(&self.record_key::<T>(record.id()), Guard::Version(expected), &batch, T::KIND).await?;
        Ok(expected + 1)
    }

    async fn list<T: Keys>(
        &self,
        user: &str,
        after: Option<&Cursor>,
        take: usize,
        live: impl Fn(&T) -> bool + Send,
    ) -> Result<Page<T>, StoreError> {
        let index = self.key(T::USER_TAG, user);
        let mut start = match after {
            Some(c) => format!("({}", user_member(c.created_at, &c.id)),
            None => "-".to_owned(),
        };
        let mut items = Vec::new();
        let chunk = take.saturating_add(1).max(16);
        let mut conn = self.conn.clone();
        loop {
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&index)
                .arg(&start)
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            let exhausted = members.len() < chunk;
            for member in &members {
                let Some(cursor) = parse_member(member) else {
                    continue;
                };
                match self.get::<T>(&cursor.id).await? {
                    Some(v) if live(&v.record) => items.push(v.record),
                    Some(_) => {}
                    // The key expired by TTL: drop its index entry on the way.
                    None => {
                        let _: i64 = conn.zrem(&index, member).await.map_err(backend)?;
                    }
                }
                if items.len() > take {
                    break;
                }
            }
            match members.last() {
                Some(last) if !exhausted && items.len() <= take => start = format!("({last}"),
                _ => break,
            }
        }
        Ok(Page::from_candidates(items, take, |r: &T| Cursor {
            created_at: r.listed_under().map(|(_, c)| c).unwrap_or(0),
            id: r.id().to_owned(),
        }))
    }

    async fn expired<T: Keys>(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        let index = self.expiry_key::<T>();
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrangebyscore_limit(&index, "-inf", now.millis(), 0, isize::try_from(limit).unwrap_or(isize::MAX))
            .await
            .map_err(backend)?;
        let mut live = Vec::with_capacity(ids.len());
        for id in ids {
            let exists: bool = conn.exists(self.record_key::<T>(&id)).await.map_err(backend)?;
            if exists {
                live.push(id);
            } else {
                // Vanished by TTL; forget it so it cannot crowd out real work.
                let _: i64 = conn.zrem(&index, &id).await.map_err(backend)?;
            }
        }
        Ok(live)
    }

    async fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        let mut conn = self.conn.clone();
        let data: Option<String> = conn.hget(self.key("ob", &id.to_string()), "d").await.map_err(backend)?;
        data.map(|d| decode(&d)).transpose()
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.create(session).await
    }

    async fn get_session(&self, id: &str) -> Result<Option<Versioned<Session>>, StoreError> {
        self.get(id).await
    }

    async fn put_session(&self, session: &Session, expected: u64) -> Result<u64, StoreError> {
        self.cas(session, expected).await
    }

    async fn end_session(
        &self,
        id: &str,
        expected: u64,
        ended_at: Timestamp,
        outbox: Vec<OutboxEntry>,
    ) -> Result<(), StoreError> {
        let current = self.get::<Session>(id).await?.ok_or(StoreError::NotFound(RecordKind::Session))?;
        if current.version != expected {
            return Err(StoreError::Stale { expected });
        }
        let mut batch = Batch::default();
        self.remove_record(&mut batch, &current.record);
        self.tombstone(&mut batch, id, ended_at)?;
        let mut conn = self.conn.clone();
        for entry in &outbox {
            // Ids only need to be unique; one burnt by a failed guard is harmless.
            let n: u64 = conn.incr(self.single("obid"), 1).await.map_err(backend)?;
            let key = self.key("ob", &n.to_string());
            batch.cmd(["HSET", &key, "v", "1", "d", &encode(entry)?]);
            batch.cmd(["ZADD", &self.single("obq"), &entry.due_at.millis().to_string(), &n.to_string()]);
        }
        self.guarded(&self.record_key::<Session>(id), Guard::Version(expected), &batch, RecordKind::Session).await
    }

    async fn list_sessions(
        &self,
        user_id: &str,
        after: Option<&Cursor>,
        take: usize,
        now: Timestamp,
    ) -> Result<Page<Session>, StoreError> {
        self.list(user_id, after, take, move |s: &Session| !s.is_expired(now)).await
    }

    async fn expired_session_ids(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        self.expired::<Session>(now, limit).await
    }

    async fn create_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        self.create(token).await
    }

    async fn get_refresh_token(&self, id: &str) -> Result<Option<Versioned<RefreshToken>>, StoreError> {
        self.get(id).await
    }

    async fn put_refresh_token(&self, token: &RefreshToken, expected: u64) -> Result<u64, StoreError> {
        self.cas(token, expected).await
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        expected: u64,
        now: Timestamp,
        successor: &RefreshToken,
    ) -> Result<(), StoreError> {
        let old = self.get::<RefreshToken>(old_id).await?.ok_or(StoreError::NotFound(RecordKind::RefreshToken))?;
        if old.version != expected {
            return Err(StoreError::Stale { expected });
        }
        if self.get::<RefreshToken>(&successor.id).await?.is_some() {
            return Err(StoreError::AlreadyExists(RecordKind::RefreshToken));
        }
        let mut retired = old.record.clone();
        retired.retired_at = Some(now);
        let mut batch = Batch::default();
        self.write_record(&mut batch, Some(&old.record), &retired, expected + 1)?;
        self.write_record(&mut batch, None, successor, 1)?;
        self.guarded(
            &self.record_key::<RefreshToken>(old_id),
            Guard::Version(expected),
            &batch,
            RecordKind::RefreshToken,
        )
        .await
    }

    async fn end_refresh_token(&self, id: &str, ended_at: Timestamp) -> Result<bool, StoreError> {
        loop {
            let Some(current) = self.get::<RefreshToken>(id).await? else {
                return Ok(false);
            };
            let mut batch = Batch::default();
            self.remove_record(&mut batch, &current.record);
            self.tombstone(&mut batch, id, ended_at)?;
            let key = self.record_key::<RefreshToken>(id);
            match self.guarded(&key, Guard::Version(current.version), &batch, RecordKind::RefreshToken).await {
                Ok(()) => return Ok(true),
                // Changed meanwhile: end the newer version instead.
                Err(StoreError::Stale { .. }) => continue,
                Err(StoreError::NotFound(_)) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    async fn remove_refresh_token(&self, id: &str, expected: u64) -> Result<(), StoreError> {
        let current = self.get::<RefreshToken>(id).await?.ok_or(StoreError::NotFound(RecordKind::RefreshToken))?;
        if current.version != expected {
            return Err(StoreError::Stale { expected });
        }
        let mut batch = Batch::default();
        self.remove_record(&mut batch, &current.record);
        self.guarded(&self.record_key::<RefreshToken>(id), Guard::Version(expected), &batch, RecordKind::RefreshToken)
            .await
    }

    async fn list_refresh_tokens(
        &self,
        user_id: &str,
        after: Option<&Cursor>,
        take: usize,
        now: Timestamp,
    ) -> Result<Page<RefreshToken>, StoreError> {
        self.list(user_id, after, take, move |t: &RefreshToken| !t.is_expired(now)).await
    }

    async fn expired_refresh_token_ids(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        self.expired::<RefreshToken>(now, limit).await
    }

    async fn session_refresh_token_ids(
        &self,
        session_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let set = self.key("ts", session_id);
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrangebyscore_limit(
                &set,
                format!("({}", now.millis()),
                "+inf",
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
            .map_err(backend)?;
        let mut live = Vec::with_capacity(ids.len());
        for id in ids {
            match self.get::<RefreshToken>(&id).await? {
                Some(t) if t.record.linked_session() == Some(session_id) && !t.record.is_expired(now) => live.push(id),
                Some(_) => {}
                // Gone without the set hearing of it (written by an older layout): forget it.
                None => {
                    let _: i64 = conn.zrem(&set, &id).await.map_err(backend)?;
                }
            }
        }
        Ok(live)
    }

    async fn get_tombstone(&self, id: &str, now: Timestamp) -> Result<Option<Tombstone>, StoreError> {
        let mut conn = self.conn.clone();
        let data: Option<String> = conn.get(self.key("tomb", id)).await.map_err(backend)?;
        let stone: Option<Tombstone> = data.map(|d| decode(&d)).transpose()?;
        Ok(stone.filter(|t| t.expires_at > now))
    }

    async fn sweep_tombstones(&self, _now: Timestamp) -> Result<usize, StoreError> {
        // Tombstone keys carry their own expiry; Redis removes them.
        Ok(0)
    }

    async fn lease_outbox(&self, now: Timestamp, lease: Duration, max: usize) -> Result<Vec<Leased>, StoreError> {
        let until = now.plus(lease);
        let mut conn = self.conn.clone();
        let flat: Vec<String> = self
            .lease
            .key(self.single("obq"))
            .arg(now.millis())
            .arg(max)
            .arg(until.millis())
            .arg(self.key("ob", ""))
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        flat.chunks(2)
            .map(|pair| {
                let [id, data] = pair else {
                    return Err(StoreError::Backend("odd-length lease reply".into()));
                };
                let id: u64 = id.parse().map_err(|_| StoreError::Backend("corrupt outbox id".into()))?;
                let mut entry: OutboxEntry = decode(data)?;
                entry.due_at = until;
                Ok(Leased { id, entry })
            })
            .collect()
    }

    async fn ack_outbox(&self, id: u64) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        let key = self.key("ob", &id.to_string());
        batch.cmd(["DEL", &key]);
        batch.cmd(["ZREM", &self.single("obq"), &id.to_string()]);
        // The guard only needs "entry present"; the kind in a NotFound is irrelevant here.
        match self.guarded(&key, Guard::Present, &batch, RecordKind::Session).await {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn retry_outbox(&self, id: u64, attempts: u32, at: Timestamp) -> Result<(), StoreError> {
        let Some(mut entry) = self.outbox_entry(id).await? else {
            return Ok(());
        };
        entry.attempts = attempts;
        entry.due_at = at;
        let mut batch = Batch::default();
        let key = self.key("ob", &id.to_string());
        batch.cmd(["HSET", &key, "d", &encode(&entry)?]);
        batch.cmd(["ZADD", &self.single("obq"), &at.millis().to_string(), &id.to_string()]);
        match self.guarded(&key, Guard::Present, &batch, RecordKind::Session).await {
            // Acked meanwhile: nothing to retry.
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_characters_of_a_prefix_are_escaped() {
        assert_eq!(glob_escape("helloguard:t:"), "helloguard:t:");
        assert_eq!(glob_escape(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
    }
}
