//! One conformance suite for every `Store` backend: each `async fn` below is written once and
//! instantiated for `memory`, `embedded` and `redis` by the `conformance!` macro at the bottom.
//!
//! Redis: `HELLOGUARD_REDIS_URL` (default `redis://127.0.0.1:6379`). Unreachable → the Redis
//! instances print why and pass, unless `HELLOGUARD_REQUIRE_REDIS=1`, which makes them fail. Each
//! test uses its own key prefix, so tests run in parallel, and deletes its keys at the end.
//!
//! Times are real "now" plus offsets: Redis expires keys by wall clock, so a record must not be
//! born already past its TTL.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use helloguard::audit::JsonLines;
use helloguard::config::StoreConfig;
use helloguard::logout::{Initiator, Planner, SessionEnder};
use helloguard::session::embedded::EmbeddedStore;
use helloguard::session::memory::MemoryStore;
use helloguard::session::redis::RedisStore;
use helloguard::session::{
    Device, Lifetimes, Metadata, MetadataChange, MetadataError, OutboxEntry, RecordKind, RefreshToken, Session, Store,
    StoreError, Timestamp,
};

const TOMBSTONE_TTL: Duration = Duration::from_secs(600);
const DAY: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Copy)]
enum Backend {
    Memory,
    Embedded,
    Redis,
}

/// What keeps a backend alive for one test, and cleans up after it.
struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    redis: Option<(String, String)>,
}

impl Fixture {
    async fn open(backend: Backend, test: &str) -> Option<Self> {
        match backend {
            Backend::Memory => Some(Self { store: Arc::new(MemoryStore::new(TOMBSTONE_TTL)), _dir: None, redis: None }),
            Backend::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                let store = EmbeddedStore::open(dir.path(), TOMBSTONE_TTL).unwrap();
                Some(Self { store: Arc::new(store), _dir: Some(dir), redis: None })
            }
            Backend::Redis => {
                let url = std::env::var("HELLOGUARD_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                let prefix = format!("hgtest:{test}:{}:{}", std::process::id(), Timestamp::now().millis());
                match RedisStore::connect(&url, &prefix, TOMBSTONE_TTL, StoreConfig::default().redis_timeout.0).await {
                    Ok(store) => Some(Self { store: Arc::new(store), _dir: None, redis: Some((url, prefix)) }),
                    Err(e) if std::env::var("HELLOGUARD_REQUIRE_REDIS").as_deref() == Ok("1") => {
                        panic!("Redis at {url} is required (HELLOGUARD_REQUIRE_REDIS=1): {e}")
                    }
                    Err(e) => {
                        eprintln!("skipped: Redis at {url} unreachable ({e}); set HELLOGUARD_REQUIRE_REDIS=1 to fail");
                        None
                    }
                }
            }
        }
    }

    async fn cleanup(self) {
        let Some((url, prefix)) = self.redis else {
            return;
        };
        delete_keys(&url, &format!("{prefix}:*")).await;
    }
}

/// A plain connection to the Redis at `url`, beside the store's.
async fn raw_redis(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Deletes the keys matching `pattern`; returns how many there were.
async fn delete_keys(url: &str, pattern: &str) -> usize {
    let mut conn = raw_redis(url).await;
    let keys: Vec<String> = ::redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        let _: i64 = ::redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    }
    keys.len()
}

async fn run<F, Fut>(backend: Backend, test: &str, body: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(fixture) = Fixture::open(backend, test).await else {
        return;
    };
    body(Arc::clone(&fixture.store)).await;
    fixture.cleanup().await;
}

fn session(id: &str, user: Option<&str>, at: Timestamp) -> Session {
    let mut s = Session::new(id.into(), at, Lifetimes::default(), Device::new(Some("203.0.113.7".into()), None));
    s.user_id = user.map(Into::into);
    s
}

fn token(id: &str, user: Option<&str>, at: Timestamp) -> RefreshToken {
    let mut t = RefreshToken::new(id.into(), at, Lifetimes::default(), Device::default());
    t.user_id = user.map(Into::into);
    t
}

fn entry(sid: &str, url: &str, due: Timestamp) -> OutboxEntry {
    OutboxEntry {
        client_id: "web".into(),
        url: url.into(),
        sid: sid.into(),
        sub: Some("auth0|u1".into()),
        session_metadata: Some(Metadata::from_pairs([("ja4_stable", "x")]).unwrap()),
        initiator: "session-revoked".into(),
        trace_id: "0123456789abcdef0123456789abcdef".into(),
        attempts: 0,
        due_at: due,
    }
}

fn merge(pairs: &[(&str, &str)]) -> MetadataChange {
    MetadataChange::Merge(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect())
}

// --- the suite -----------------------------------------------------------------------------------

async fn session_create_get_put(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let s = session("ses_a", Some("u1"), now);
    assert_eq!(store.get_session("ses_a").await.unwrap(), None);
    store.create_session(&s).await.unwrap();
    assert_eq!(store.create_session(&s).await, Err(StoreError::AlreadyExists(RecordKind::Session)));
    let got = store.get_session("ses_a").await.unwrap().unwrap();
    assert_eq!((got.version, &got.record), (1, &s));

    let mut next = got.record.clone();
    next.touch(now.plus(Duration::from_secs(60)), Lifetimes::default());
    assert_eq!(store.put_session(&next, 1).await, Ok(2));
    assert_eq!(store.put_session(&next, 1).await, Err(StoreError::Stale { expected: 1 }));
    assert_eq!(store.get_session("ses_a").await.unwrap().unwrap().record, next);
    let missing = session("ses_missing", None, now);
    assert_eq!(store.put_session(&missing, 1).await, Err(StoreError::NotFound(RecordKind::Session)));
}

async fn metadata_updates(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    store.create_session(&session("ses_m", None, now)).await.unwrap();
    let later = now.plus(Duration::from_secs(5));
    let v = store.update_session_metadata("ses_m", &merge(&[("ja4_stable", "s"), ("ja3", "j")]), later).await.unwrap();
    assert_eq!(v.record.session_metadata.len(), 2);
    assert_eq!(v.record.updated_at, later);
    let v = store.update_session_metadata("ses_m", &merge(&[("team", "a")]), later).await.unwrap();
    assert_eq!(v.record.session_metadata.len(), 3, "engine writes merge");

    // An invalid write changes nothing.
    let bad = store.update_session_metadata("ses_m", &merge(&[("bad key", "x")]), later).await;
    assert_eq!(bad.unwrap_err(), StoreError::Metadata(MetadataError::KeyCharset));
    let over = (0..23).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let bad = store.update_session_metadata("ses_m", &MetadataChange::Merge(over), later).await;
    assert_eq!(bad.unwrap_err(), StoreError::Metadata(MetadataError::TooManyEntries));
    assert_eq!(store.get_session("ses_m").await.unwrap().unwrap().record.session_metadata.len(), 3);

    // PATCH replaces the whole map; evict drops the engine's keys.
    let replace = MetadataChange::Replace(Metadata::from_pairs([("ja4_stable", "s"), ("only", "1")]).unwrap());
    let v = store.update_session_metadata("ses_m", &replace, later).await.unwrap();
    assert_eq!(v.record.session_metadata.iter().collect::<Vec<_>>(), [("ja4_stable", "s"), ("only", "1")]);
    let v =
        store.update_session_metadata("ses_m", &MetadataChange::Evict(vec!["ja4_stable".into()]), later).await.unwrap();
    assert_eq!(v.record.session_metadata.iter().collect::<Vec<_>>(), [("only", "1")]);
    assert_eq!(store.get_session("ses_m").await.unwrap().unwrap(), v);

    let gone = store.update_session_metadata("ses_gone", &merge(&[("a", "b")]), later).await.unwrap_err();
    assert_eq!(gone.to_string(), "Cannot set metadata on a session that does not exist.");

    store.create_refresh_token(&token("rt_m", None, now)).await.unwrap();
    let v = store.update_refresh_token_metadata("rt_m", &merge(&[("ja4_stable", "t")])).await.unwrap();
    assert_eq!(v.record.refresh_token_metadata.get("ja4_stable"), Some("t"));
    assert_eq!(v.version, 2);
    let gone = store.update_refresh_token_metadata("rt_gone", &merge(&[("a", "b")])).await.unwrap_err();
    assert_eq!(gone.to_string(), "Cannot set metadata on a refresh token that does not exist.");
}

async fn end_session_tombstone_and_outbox(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    store.create_session(&session("ses_e", Some("u1"), now)).await.unwrap();
    assert_eq!(store.end_session("ses_e", 7, now, vec![]).await, Err(StoreError::Stale { expected: 7 }));
    assert!(store.get_session("ses_e").await.unwrap().is_some(), "a stale end changes nothing");
    assert_eq!(store.lease_outbox(now, DAY, 10).await.unwrap(), vec![]);

    let entries = vec![entry("ses_e", "https://rp1.example/bcl", now), entry("ses_e", "https://rp2.example/bcl", now)];
    store.end_session("ses_e", 1, now, entries.clone()).await.unwrap();
    assert_eq!(store.get_session("ses_e").await.unwrap(), None);
    assert_eq!(store.list_sessions("u1", None, 10, now).await.unwrap().items, vec![]);
    let stone = store.get_tombstone("ses_e", now).await.unwrap().unwrap();
    assert_eq!((stone.ended_at, stone.expires_at), (now, now.plus(TOMBSTONE_TTL)));
    assert_eq!(store.get_tombstone("ses_e", now.plus(TOMBSTONE_TTL)).await.unwrap(), None, "expired tombstone");
    assert_eq!(store.end_session("ses_e", 1, now, vec![]).await, Err(StoreError::NotFound(RecordKind::Session)));

    // Lease: both due now, hidden while leased, back after the lease.
    let lease = Duration::from_secs(30);
    let mut leased = store.lease_outbox(now, lease, 10).await.unwrap();
    leased.sort_by(|a, b| a.entry.url.cmp(&b.entry.url));
    assert_eq!(leased.len(), 2);
    assert_eq!(leased[0].entry, OutboxEntry { due_at: now.plus(lease), ..entries[0].clone() });
    assert_eq!(store.lease_outbox(now, lease, 10).await.unwrap(), vec![]);
    assert_eq!(store.lease_outbox(now.plus(lease), lease, 1).await.unwrap().len(), 1, "max is honoured");

    // One delivered, one to retry later.
    store.ack_outbox(leased[0].id).await.unwrap();
    let retry_at = now.plus(Duration::from_secs(3600));
    store.retry_outbox(leased[1].id, 1, retry_at).await.unwrap();
    assert_eq!(store.lease_outbox(Timestamp(retry_at.millis() - 1), lease, 10).await.unwrap(), vec![], "not due yet");
    let again = store.lease_outbox(retry_at, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].entry.attempts), (leased[1].id, 1));
    store.ack_outbox(again[0].id).await.unwrap();
    store.ack_outbox(again[0].id).await.unwrap();
    assert_eq!(store.lease_outbox(retry_at.plus(DAY), lease, 10).await.unwrap(), vec![]);

    // Tombstone sweep leaves no expired stone behind (Redis expires them itself).
    store.sweep_tombstones(now.plus(TOMBSTONE_TTL)).await.unwrap();
    assert_eq!(store.get_tombstone("ses_e", now.plus(TOMBSTONE_TTL)).await.unwrap(), None);
}

async fn list_by_user_pages_in_order(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let t = |s: u64| now.plus(Duration::from_secs(s));
    // Two share created_at: the id breaks the tie.
    for (id, at) in [("ses_c", t(2)), ("ses_b", t(1)), ("ses_a2", t(1)), ("ses_d", t(3)), ("ses_e", t(4))] {
        store.create_session(&session(id, Some("auth0|u1"), at)).await.unwrap();
    }
    store.create_session(&session("ses_other", Some("auth0|u2"), t(0))).await.unwrap();
    store.create_session(&session("ses_anon", None, t(0))).await.unwrap();

    let mut ids = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.list_sessions("auth0|u1", cursor.as_ref(), 2, now).await.unwrap();
        ids.extend(page.items.iter().map(|s| s.id.clone()));
        pages += 1;
        match page.next {
            Some(next) => cursor = Some(helloguard::session::Cursor::decode(&next.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(ids, ["ses_a2", "ses_b", "ses_c", "ses_d", "ses_e"]);
    assert_eq!(pages, 3);
    let all = store.list_sessions("auth0|u1", None, 5, now).await.unwrap();
    assert_eq!((all.items.len(), all.next), (5, None), "no next on the last page");
    assert_eq!(store.list_sessions("nobody", None, 5, now).await.unwrap().items, vec![]);

    // Expired sessions are not live; a changed user id moves the session.
    let later = store.list_sessions("auth0|u1", None, 10, now.plus(Duration::from_secs(4 * 24 * 3600))).await.unwrap();
    assert_eq!(later.items, vec![]);
    let mut moved = store.get_session("ses_c").await.unwrap().unwrap();
    moved.record.user_id = Some("auth0|u2".into());
    store.put_session(&moved.record, moved.version).await.unwrap();
    let u2: Vec<String> =
        store.list_sessions("auth0|u2", None, 10, now).await.unwrap().items.into_iter().map(|s| s.id).collect();
    assert_eq!(u2, ["ses_other", "ses_c"]);
    assert_eq!(store.list_sessions("auth0|u1", None, 10, now).await.unwrap().items.len(), 4);

    // Refresh tokens list the same way.
    store.create_refresh_token(&token("rt_2", Some("auth0|u1"), t(2))).await.unwrap();
    store.create_refresh_token(&token("rt_1", Some("auth0|u1"), t(1))).await.unwrap();
    let page = store.list_refresh_tokens("auth0|u1", None, 1, now).await.unwrap();
    assert_eq!(page.items[0].id, "rt_1");
    let rest = store.list_refresh_tokens("auth0|u1", page.next.as_ref(), 1, now).await.unwrap();
    assert_eq!((rest.items[0].id.as_str(), rest.next), ("rt_2", None));
}

async fn sweep_ends_expired_sessions(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    for id in ["ses_x1", "ses_x2", "ses_live"] {
        store.create_session(&session(id, Some("u1"), now)).await.unwrap();
    }
    // ses_live is used a day later, so its idle expiry moves.
    let mut live = store.get_session("ses_live").await.unwrap().unwrap();
    live.record.touch(now.plus(DAY), Lifetimes::default());
    store.put_session(&live.record, live.version).await.unwrap();

    let audit = Arc::new(JsonLines::new(Vec::new()));
    let ender = SessionEnder::new(store.clone(), audit.clone(), Arc::new(OneDeliveryEach));
    let sweep_at = now.plus(Duration::from_secs(3 * 24 * 3600));
    assert_eq!(ender.sweep(now, 10).await.unwrap(), 0, "nothing expired yet");
    assert_eq!(ender.sweep(sweep_at, 10).await.unwrap(), 2);
    assert!(store.get_session("ses_x1").await.unwrap().is_none());
    assert!(store.get_session("ses_x2").await.unwrap().is_none());
    assert!(store.get_session("ses_live").await.unwrap().is_some());
    assert!(store.get_tombstone("ses_x1", sweep_at).await.unwrap().is_some());
    let mut leased: Vec<(String, String)> = store
        .lease_outbox(sweep_at, DAY, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.entry.sid, l.entry.initiator))
        .collect();
    leased.sort();
    assert_eq!(
        leased,
        [("ses_x1".into(), "session-expired".into()), ("ses_x2".into(), "session-expired".into())],
        "one logout per ended session, enqueued with the end"
    );
    assert_eq!(ender.sweep(sweep_at, 10).await.unwrap(), 0, "a session ends once");

    drop(ender);
    let audit = Arc::try_unwrap(audit).ok().unwrap().into_inner();
    let events: Vec<serde_json::Value> =
        String::from_utf8(audit).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event["event"], "session_ended");
        assert_eq!(event["initiator"], "session-expired");
        assert_eq!(event["user_id"], "u1");
        assert_eq!(event["trace_id"].as_str().unwrap().len(), 32);
    }
    assert_ne!(events[0]["trace_id"], events[1]["trace_id"], "one trace id per session end");
}

/// A planner that asks for one delivery per ended session, carrying the initiator and trace id.
struct OneDeliveryEach;

impl Planner for OneDeliveryEach {
    fn plan(&self, session: &Session, initiator: Initiator, trace_id: &str, now: Timestamp) -> Vec<OutboxEntry> {
        vec![OutboxEntry {
            initiator: initiator.as_str().into(),
            trace_id: trace_id.into(),
            ..entry(&session.id, "https://rp.example/bcl", now)
        }]
    }
}

async fn refresh_token_rotation_and_end(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let mut old = token("rt_old", Some("u1"), now);
    old.session_id = Some("ses_1".into());
    old.client_id = Some("web".into());
    old.refresh_token_metadata = Metadata::from_pairs([("ja4_stable", "s")]).unwrap();
    store.create_refresh_token(&old).await.unwrap();
    assert_eq!(store.create_refresh_token(&old).await, Err(StoreError::AlreadyExists(RecordKind::RefreshToken)));

    let later = now.plus(Duration::from_secs(60));
    let successor = old.successor("rt_new".into(), later, Lifetimes::default(), Device::default());
    assert_eq!(
        store.rotate_refresh_token("rt_old", 5, later, &successor).await,
        Err(StoreError::Stale { expected: 5 })
    );
    assert_eq!(store.get_refresh_token("rt_new").await.unwrap(), None, "a failed rotation creates nothing");
    store.rotate_refresh_token("rt_old", 1, later, &successor).await.unwrap();
    let new = store.get_refresh_token("rt_new").await.unwrap().unwrap().record;
    assert_eq!(new.refresh_token_metadata, old.refresh_token_metadata);
    assert_eq!(
        (new.session_id, new.user_id, new.client_id),
        (old.session_id.clone(), old.user_id.clone(), old.client_id.clone())
    );
    let retired = store.get_refresh_token("rt_old").await.unwrap().unwrap();
    assert_eq!((retired.version, retired.record.retired_at), (2, Some(later)));
    let listed: Vec<String> =
        store.list_refresh_tokens("u1", None, 10, later).await.unwrap().items.into_iter().map(|t| t.id).collect();
    assert_eq!(listed, ["rt_new"], "a retired token disappears from listings");
    assert_eq!(
        store.rotate_refresh_token("rt_old", 2, later, &successor).await,
        Err(StoreError::AlreadyExists(RecordKind::RefreshToken))
    );

    assert!(store.end_refresh_token("rt_new", later).await.unwrap());
    assert!(!store.end_refresh_token("rt_new", later).await.unwrap());
    assert_eq!(store.get_refresh_token("rt_new").await.unwrap(), None);
    assert!(store.get_tombstone("rt_new", later).await.unwrap().is_some());

    // Expiry removes tokens (retired ones at their former expiry) silently: no tombstone.
    let expired_at = now.plus(Duration::from_secs(31 * 24 * 3600));
    assert_eq!(store.sweep_refresh_tokens(now, 10).await.unwrap(), vec![]);
    let removed: Vec<String> =
        store.sweep_refresh_tokens(expired_at, 10).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(removed, ["rt_old"]);
    assert_eq!(store.get_refresh_token("rt_old").await.unwrap(), None);
    assert_eq!(store.get_tombstone("rt_old", later).await.unwrap(), None);
}

/// The ids `session_refresh_token_ids` answers for `session`, sorted.
async fn linked(store: &dyn Store, session: &str, at: Timestamp) -> Vec<String> {
    let mut ids = store.session_refresh_token_ids(session, at, 100).await.unwrap();
    ids.sort();
    ids
}

/// What a session revoke ends: the live, non-retired tokens of the session, whatever their user.
async fn tokens_of_a_session(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let on = |id: &str, user: Option<&str>, session: Option<&str>| {
        let mut t = token(id, user, now);
        t.session_id = session.map(Into::into);
        t
    };
    for t in [
        on("rt_anon1", None, Some("ses_1")),
        on("rt_anon2", None, Some("ses_1")),
        on("rt_user", Some("u1"), Some("ses_1")),
        on("rt_other", None, Some("ses_2")),
        on("rt_free", Some("u1"), None),
    ] {
        store.create_refresh_token(&t).await.unwrap();
    }
    assert_eq!(linked(&*store, "ses_1", now).await, ["rt_anon1", "rt_anon2", "rt_user"], "no user needed");
    assert_eq!(linked(&*store, "ses_2", now).await, ["rt_other"], "other sessions' tokens are not returned");
    assert_eq!(linked(&*store, "ses_none", now).await, Vec::<String>::new());
    assert_eq!(store.session_refresh_token_ids("ses_1", now, 2).await.unwrap().len(), 2, "limit is honoured");

    // Rotation: the successor keeps the session, the retired token is no longer returned.
    let later = now.plus(Duration::from_secs(60));
    let old = store.get_refresh_token("rt_anon1").await.unwrap().unwrap();
    let successor = old.record.successor("rt_anon1b".into(), later, Lifetimes::default(), Device::default());
    store.rotate_refresh_token("rt_anon1", old.version, later, &successor).await.unwrap();
    assert_eq!(linked(&*store, "ses_1", later).await, ["rt_anon1b", "rt_anon2", "rt_user"]);
    assert!(store.get_refresh_token("rt_anon1").await.unwrap().unwrap().record.is_retired());

    // An exchange (version-checked write) keeps the link; an ended token is gone.
    let mut used = store.get_refresh_token("rt_anon2").await.unwrap().unwrap();
    used.record.exchanged(later, Lifetimes::default());
    store.put_refresh_token(&used.record, used.version).await.unwrap();
    assert!(store.end_refresh_token("rt_user", later).await.unwrap());
    assert_eq!(linked(&*store, "ses_1", later).await, ["rt_anon1b", "rt_anon2"]);

    // A write that moves a token to another session (a cookie rotation relinks them) moves it in
    // the by-session index too.
    let mut moving = store.get_refresh_token("rt_other").await.unwrap().unwrap();
    moving.record.session_id = Some("ses_3".into());
    store.put_refresh_token(&moving.record, moving.version).await.unwrap();
    assert_eq!(linked(&*store, "ses_2", later).await, Vec::<String>::new());
    assert_eq!(linked(&*store, "ses_3", later).await, ["rt_other"]);

    // Expired tokens are not live; once the sweeper removed them they stay gone.
    let expired_at = now.plus(Duration::from_secs(31 * 24 * 3600));
    assert_eq!(linked(&*store, "ses_1", expired_at).await, Vec::<String>::new());
    assert_eq!(store.sweep_refresh_tokens(expired_at, 10).await.unwrap().len(), 5);
    assert_eq!(linked(&*store, "ses_1", later).await, Vec::<String>::new());
    assert_eq!(linked(&*store, "ses_2", later).await, Vec::<String>::new());
}

/// Many tasks merge into one session at once: every acknowledged write is in the final map.
async fn concurrent_merges_lose_nothing(store: Arc<dyn Store>) {
    const TASKS: usize = 24;
    const ROUNDS: usize = 5;
    let now = Timestamp::now();
    store.create_session(&session("ses_hot", None, now)).await.unwrap();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut acked = None;
            for round in 0..ROUNDS {
                let change = merge(&[(&format!("k{task:02}"), &round.to_string())]);
                store.update_session_metadata("ses_hot", &change, now).await.unwrap();
                acked = Some(round);
            }
            (task, acked)
        }));
    }
    let final_map = {
        let mut acked = Vec::new();
        for h in handles {
            acked.push(h.await.unwrap());
        }
        let record = store.get_session("ses_hot").await.unwrap().unwrap();
        assert_eq!(record.version, 1 + (TASKS * ROUNDS) as u64, "one version per acknowledged write");
        for (task, round) in acked {
            assert_eq!(
                record.record.session_metadata.get(&format!("k{task:02}")),
                round.map(|r| r.to_string()).as_deref()
            );
        }
        record.record.session_metadata
    };
    assert_eq!(final_map.len(), TASKS);
}

/// Writers that all read the same version race with compare-and-swap: exactly one wins, every
/// other gets the typed `Stale` error, and the stored record is the winner's.
async fn stale_writers_get_typed_errors(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    let now = Timestamp::now();
    store.create_session(&session("ses_race", None, now)).await.unwrap();
    let base = store.get_session("ses_race").await.unwrap().unwrap();
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        let mut next = base.record.clone();
        next.session_metadata = Metadata::from_pairs([("writer", w.to_string())]).unwrap();
        handles.push(tokio::spawn(async move { (w, store.put_session(&next, base.version).await) }));
    }
    let mut winners = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            (w, Ok(version)) => winners.push((w, version)),
            (_, Err(StoreError::Stale { expected })) => assert_eq!(expected, base.version),
            (_, Err(e)) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    let stored = store.get_session("ses_race").await.unwrap().unwrap();
    assert_eq!(stored.version, winners[0].1);
    assert_eq!(stored.record.session_metadata.get("writer"), Some(winners[0].0.to_string().as_str()));
}

/// Redis data from before the by-session index (no `P:ts:` sets, no `P:layout`): the next
/// connect indexes the stored tokens. A session's set expires with its latest token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_connect_indexes_tokens_stored_before_the_by_session_index() {
    let Some(fixture) = Fixture::open(Backend::Redis, "layout_upgrade").await else {
        return;
    };
    let (url, prefix) = fixture.redis.clone().unwrap();
    let now = Timestamp::now();
    let hour = Duration::from_secs(3600);
    for (id, session, at) in [("rt_1", "ses_1", now), ("rt_2", "ses_1", now.plus(hour)), ("rt_3", "ses_2", now)] {
        let mut t = token(id, None, at);
        t.session_id = Some(session.into());
        fixture.store.create_refresh_token(&t).await.unwrap();
    }
    let mut conn = raw_redis(&url).await;
    let pttl: i64 = ::redis::cmd("PTTL").arg(format!("{prefix}:ts:ses_1")).query_async(&mut conn).await.unwrap();
    let idle = Lifetimes::default().idle.as_millis() as i64;
    assert!(pttl > idle && pttl <= idle + 3_600_000, "expires with rt_2, the latest: {pttl} ms");

    assert_eq!(delete_keys(&url, &format!("{prefix}:ts:*")).await, 2);
    assert_eq!(delete_keys(&url, &format!("{prefix}:layout")).await, 1);
    assert_eq!(linked(&*fixture.store, "ses_1", now).await, Vec::<String>::new(), "the index is gone");
    let reconnected =
        RedisStore::connect(&url, &prefix, TOMBSTONE_TTL, StoreConfig::default().redis_timeout.0).await.unwrap();
    assert_eq!(linked(&reconnected, "ses_1", now).await, ["rt_1", "rt_2"]);
    assert_eq!(linked(&reconnected, "ses_2", now).await, ["rt_3"]);
    let layout: Option<u64> = ::redis::cmd("GET").arg(format!("{prefix}:layout")).query_async(&mut conn).await.unwrap();
    assert_eq!(layout, Some(2));
    fixture.cleanup().await;
}

macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() { super::run(super::Backend::Memory, stringify!($test), super::$test).await })+
        }
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() { super::run(super::Backend::Embedded, stringify!($test), super::$test).await })+
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() { super::run(super::Backend::Redis, stringify!($test), super::$test).await })+
        }
    };
}

conformance!(
    session_create_get_put,
    metadata_updates,
    end_session_tombstone_and_outbox,
    list_by_user_pages_in_order,
    sweep_ends_expired_sessions,
    refresh_token_rotation_and_end,
    tokens_of_a_session,
    concurrent_merges_lose_nothing,
    stale_writers_get_typed_errors,
);
