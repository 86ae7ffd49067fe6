//! A Redis backend that dies or hangs mid-run: a private `redis-server` on a free port is killed
//! (or stopped with SIGSTOP) under the proxy, requests behave per `[store] on_error`, the failure
//! is logged and counted, and a restarted (or continued) Redis brings decisions back. Needs
//! `redis-server` (skips without it, fails with `HELLOGUARD_REQUIRE_REDIS=1`).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::common;

use common::client::{cookie_of, request, Client, FORM};
use common::proxy::{start_with_store, Running};
use helloguard::config::FailurePolicy;
use helloguard::session::redis::RedisStore;

/// A `redis-server` child on a fixed port, without persistence.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start(port: u16) -> Option<Self> {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                common::skip_unless_required("HELLOGUARD_REQUIRE_REDIS", &format!("cannot run redis-server: {error}"));
                return None;
            }
        };
        let redis = Self { port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the server: a stopped Redis keeps its socket open
    /// and never answers.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
        assert!(status.unwrap().success(), "kill -{signal}");
    }

    fn kill(mut self) -> u16 {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Everything the proxy logs, for the assertion that the failure was logged.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide log capture (installed once, shared by every test in the process: the
/// assertions look for lines these tests cause and for the absence of their own cookie values).
fn logs() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let writer = log.clone();
        tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).init();
        log
    })
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

async fn connect(redis: &Redis, name: &str, timeout: Duration) -> RedisStore {
    let prefix = format!("hg-store-failure-{}-{name}", std::process::id());
    RedisStore::connect(&redis.url(), &prefix, Duration::from_secs(3600), timeout).await.unwrap()
}

async fn login(running: &Running, cookie: Option<&str>) -> common::client::Answer {
    let mut headers = vec![FORM];
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    request(running, Client::Default, "POST", "/login", &headers, "username=alice").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_dies_mid_run_fails_open_or_closed_as_configured_and_recovers() {
    logs();
    for policy in [FailurePolicy::Open, FailurePolicy::Closed] {
        let Some(redis) = Redis::start(free_port()) else { return };
        let store = connect(&redis, &format!("{policy:?}"), Duration::from_secs(2)).await;
        let running = start_with_store(Arc::new(store), |c| c.store.on_error = policy).await;

        let first = login(&running, None).await;
        assert_eq!(first.json["helloguard"]["reason"], "no_session");
        let cookie = cookie_of(&first);
        let bound = login(&running, Some(&cookie)).await;
        assert_eq!(bound.json["helloguard"]["reason"], "fingerprint_match", "Redis works before it dies");
        let cookie = cookie_of(&bound);

        let port = redis.kill();
        let during = login(&running, Some(&cookie)).await;
        let token =
            request(&running, Client::Default, "POST", "/oauth/token", &[FORM], "grant_type=password&username=a");
        let other = request(&running, Client::Default, "GET", "/whoami", &[("cookie", &cookie)], "").await;
        let token = token.await;
        assert_eq!(other.status, 200, "routes without decisions always go on");
        match policy {
            FailurePolicy::Open => {
                assert_eq!(during.status, 200);
                let echo = &during.json["helloguard"];
                assert_eq!(echo["decision"], serde_json::Value::Null, "no decision without the store: {echo}");
                assert_eq!(echo["ja4_stable"], during.sent.ja4_stable.as_str(), "fingerprints still sent");
                assert_eq!(token.status, 200);
                assert!(token.json["refresh_token"].is_string());
            }
            FailurePolicy::Closed => {
                for answer in [&during, &token] {
                    assert_eq!(answer.status, 503);
                    assert_eq!(answer.json["error"], "store_unavailable");
                    assert_eq!(answer.headers["retry-after"], "5");
                }
                assert_eq!(running.metric("helloguard_store_refusals_total").await, 2.0);
            }
        }
        assert!(running.metric("helloguard_store_errors_total").await >= 2.0);
        let logged = logged();
        assert!(logged.contains("session store failed"), "{logged}");
        assert!(!logged.contains(cookie.split_once('=').unwrap().1), "the cookie value is never logged");

        // Redis comes back (empty: no persistence): decisions come back too.
        let _redis = Redis::start(port).unwrap();
        let mut recovered = None;
        for _ in 0..100 {
            let answer = login(&running, Some(&cookie)).await;
            if answer.status == 200 && answer.json["helloguard"]["reason"] == "no_session" {
                recovered = Some(answer);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let recovered = recovered.expect("requests are decided again once Redis is back");
        let cookie = cookie_of(&recovered);
        let again = login(&running, Some(&cookie)).await;
        assert_eq!(again.json["helloguard"]["reason"], "fingerprint_match", "new sessions bind again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_hangs_times_out_fails_open_and_recovers() {
    logs();
    let Some(redis) = Redis::start(free_port()) else { return };
    let store = connect(&redis, "hang", Duration::from_millis(500)).await;
    let running = start_with_store(Arc::new(store), |_| {}).await;
    let first = login(&running, None).await;
    let cookie = cookie_of(&first);
    let bound = login(&running, Some(&cookie)).await;
    assert_eq!(bound.json["helloguard"]["reason"], "fingerprint_match", "Redis works before it hangs");
    let cookie = cookie_of(&bound);
    let errors_before = running.metric("helloguard_store_errors_total").await;

    redis.signal("STOP");
    // The bound only keeps a broken build from hanging the suite; it says nothing about speed.
    let during = tokio::time::timeout(Duration::from_secs(30), login(&running, Some(&cookie)))
        .await
        .expect("a hung Redis must not hang the request");
    assert_eq!(during.status, 200, "fail-open forwards the login");
    assert_eq!(during.json["helloguard"]["decision"], serde_json::Value::Null, "no decision: {}", during.json);
    assert!(running.metric("helloguard_store_errors_total").await > errors_before);
    assert!(logged().contains("session store failed"));

    redis.signal("CONT");
    let mut recovered = false;
    for _ in 0..100 {
        let answer = login(&running, Some(&cookie)).await;
        if answer.json["helloguard"]["reason"] == "fingerprint_match" {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the session bound before the hang is matched again once Redis answers");
}
