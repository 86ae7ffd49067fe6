//! The attack suite: helloguard's one promise, tried the way a thief and a new user would.
//! A session cookie or refresh token used from a client other than the one it was bound to is
//! challenged (or the request refused), the client it was bound to never is, and nothing a client
//! sends under helloguard's own header names reaches the upstream.
//!
//! Every test drives the real proxy over real sockets in front of [`Permissive`], a login service
//! that reads each request the way the framework furthest from helloguard would (last duplicate
//! wins, parameters from anywhere, quotes stripped, case-insensitive routes, gzip bodies) and
//! records what it read; the assertions are on that record. The credential tests run on the
//! memory, embedded and Redis stores.
//!
//! | file | the class of hole |
//! |---|---|
//! | [`cookies`] | a session cookie read differently (duplicates, split fields, quotes, spellings) |
//! | [`tokens`] | a token request read differently (media type, duplicates, query, encoding, size) |
//! | [`routes`] | a login, token or API path spelled differently |
//! | [`headers`] | helloguard's header names sent by a client, or leaking from a `101` |
//! | [`unknown`] | a fingerprint made unknown on purpose (oversized or stalled hello) |
//! | [`logout`] | a logout that must end its session whatever else changed |
//! | [`exhaustion`] | trickled bodies, idle HTTP/2 connections, oversized heads |
//! | [`api`] | the Management API over HTTP/2, malleable bearer tokens |

mod api;
mod cookies;
mod exhaustion;
mod headers;
mod logout;
mod routes;
mod tokens;
mod unknown;

use std::sync::Arc;
use std::time::Duration;

use crate::common;
use common::client::{request, Answer, Client, FORM};
use common::permissive::{Permissive, Seen};
use common::proxy::{start_with_store, Running};
use helloguard::config::Config;
use helloguard::session::embedded::EmbeddedStore;
use helloguard::session::memory::MemoryStore;
use helloguard::session::redis::RedisStore;
use helloguard::session::Store;

/// The thief's client: another TLS stack (one TLS 1.3 cipher suite), so another `ja4_stable`.
pub const THIEF: Client = Client::Aes128Only;
/// The owner's client.
pub const OWNER: Client = Client::Default;

/// Where the proxy keeps its records.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Memory,
    Embedded,
    Redis,
}

pub const BACKENDS: [Backend; 3] = [Backend::Memory, Backend::Embedded, Backend::Redis];

/// A proxy in front of the permissive service, with one bound session and one bound refresh token
/// of the owner's.
pub struct Scene {
    pub running: Running,
    pub upstream: Arc<Permissive>,
    /// The owner's session cookie value (what a thief steals).
    pub cookie: String,
    /// The owner's refresh token.
    pub token: String,
    _store_dir: tempfile::TempDir,
}

impl Scene {
    /// `None` (the test skips) when Redis is wanted and unreachable, unless Redis is required.
    pub async fn start(backend: Backend, edit: impl FnOnce(&mut Config)) -> Option<Self> {
        let store_dir = tempfile::tempdir().unwrap();
        let store = open(backend, &store_dir).await?;
        let (upstream, addr) = Permissive::start().await;
        let running = start_with_store(store, |config| {
            config.server.upstream = common::upstream::origin(addr);
            edit(config);
        })
        .await;
        let login = request(&running, OWNER, "POST", "/login", &[FORM], "username=alice").await;
        assert_eq!(login.status, 200, "{}", login.json);
        let cookie = set_cookie_value(&login);
        let issued =
            request(&running, OWNER, "POST", "/oauth/token", &[FORM], "grant_type=password&username=alice").await;
        let token = issued.json["refresh_token"].as_str().unwrap().to_owned();
        let scene = Self { running, upstream, cookie, token, _store_dir: store_dir };
        // Both are bound to the owner: the owner passes, the thief does not.
        let own = scene.login(OWNER, &[("cookie", &format!("session={}", scene.cookie))]).await;
        assert_eq!(own.header("helloguard-decision"), Some("allow"));
        assert_eq!(own.header("helloguard-decision-reason"), Some("fingerprint_match"));
        Some(scene)
    }

    /// The service's records from now on.
    pub fn mark(&self) -> usize {
        self.upstream.seen().len()
    }

    pub fn seen_since(&self, mark: usize) -> Vec<Seen> {
        self.upstream.seen().split_off(mark)
    }

    /// A login by `client` with these headers; what the service read.
    pub async fn login(&self, client: Client, headers: &[(&str, &str)]) -> Seen {
        let mark = self.mark();
        let mut all = vec![FORM];
        all.extend_from_slice(headers);
        request(&self.running, client, "POST", "/login", &all, "").await;
        let seen = self.seen_since(mark);
        assert_eq!(seen.len(), 1, "one request reached the service: {seen:?}");
        seen.into_iter().next().unwrap()
    }

    /// Every request since `mark` on which the service used the stolen session was challenged.
    pub fn assert_stolen_session_challenged(&self, mark: usize, case: &str) {
        for seen in self.seen_since(mark) {
            if seen.session_cookie.as_deref() == Some(self.cookie.as_str()) && seen.session_user.is_some() {
                assert_eq!(seen.header("helloguard-decision"), Some("challenge"), "{case}: {seen:?}");
            }
        }
    }

    /// The stolen refresh token was never exchanged, and the thief got no tokens.
    pub fn assert_token_not_exchanged(&self, answer: &Answer, case: &str) {
        assert!(!self.upstream.exchanged(&self.token), "{case}: the service exchanged the stolen token");
        assert!(answer.json.get("refresh_token").is_none(), "{case}: {}", answer.json);
        assert!(matches!(answer.status, 400 | 403 | 413), "{case}: {} {}", answer.status, answer.json);
    }
}

async fn open(backend: Backend, dir: &tempfile::TempDir) -> Option<Arc<dyn Store>> {
    let ttl = Duration::from_secs(3600);
    Some(match backend {
        Backend::Memory => Arc::new(MemoryStore::new(ttl)),
        Backend::Embedded => Arc::new(EmbeddedStore::open(dir.path(), ttl).unwrap()),
        Backend::Redis => {
            let url = std::env::var("HELLOGUARD_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let prefix = format!("hg-attack-{}-{}", std::process::id(), uuid::Uuid::new_v4());
            match RedisStore::connect(&url, &prefix, ttl, Duration::from_secs(2)).await {
                Ok(store) => Arc::new(store),
                Err(error) => {
                    common::skip_unless_required("HELLOGUARD_REQUIRE_REDIS", &format!("Redis at {url}: {error}"));
                    return None;
                }
            }
        }
    })
}

/// The session cookie's value in a login answer's `Set-Cookie`.
pub fn set_cookie_value(answer: &Answer) -> String {
    let line = answer.headers.get("set-cookie").unwrap().to_str().unwrap();
    line.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}
