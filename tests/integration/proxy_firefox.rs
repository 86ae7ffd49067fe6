//! Headless Firefox ESR (NSS) through the proxy, driven over Marionette (`common::firefox`).
//! NSS drops `session_ticket` (0x0023) from a hello that offers a TLS 1.3 ticket, so a logged-in
//! Firefox comes back with another `ja4` on every resumed connection; `ja4_stable` leaves 0x0023
//! out and must not challenge it (FINGERPRINTS.md §5). A binding stored under the earlier rule,
//! which kept 0x0023, is recognised on the resumed hello and upgraded (CONTRACT §3).
//!
//! Requests are `fetch()` calls from a page of the proxy's own origin, so they carry the demo's
//! `SameSite=Lax` cookie. The proxy's idle timeout (Firefox speaks HTTP/2 to it) and header read
//! timeout are one second: Firefox's idle connection is closed by then, and its next request opens
//! a new connection that offers the ticket the first one received.

use std::time::Duration;

use crate::common;
use common::firefox::{self, Firefox};
use common::proxy::{start, Running};
use helloguard::config::ConfigDuration;
use helloguard::session::{MetadataChange, Timestamp};
use serde_json::Value;

/// `fetch` from the page, the answer's JSON.
fn post(browser: &mut Firefox, path: &str, form: &str) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         fetch('{path}', {{method: 'POST', body: new URLSearchParams('{form}')}})
           .then(r => r.json().then(j => done({{status: r.status, json: j}})))
           .catch(e => done({{error: String(e)}}));"
    );
    let answer = browser.execute_async(&script);
    assert!(answer.get("error").is_none(), "fetch {path}: {answer}");
    answer
}

/// Lets the proxy close Firefox's idle connection, so the next request needs a new one.
fn new_connection_next() {
    std::thread::sleep(Duration::from_millis(2500));
}

async fn proxy() -> Running {
    start(|config| {
        config.server.header_read_timeout = ConfigDuration(Duration::from_secs(1));
        config.server.idle_timeout = ConfigDuration(Duration::from_secs(1));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_in_firefox_is_not_challenged_on_resumed_connections() {
    if !firefox::available() {
        return;
    }
    let running = proxy().await;
    tokio::task::block_in_place(|| {
        let mut browser = Firefox::start();
        browser.navigate(&format!("https://localhost:{}/", running.addr.port()));
        let login = post(&mut browser, "/login", "username=alice");
        let fresh = login["json"]["helloguard"].clone();
        assert_eq!(fresh["reason"], "no_session", "{login}");
        let issued = post(&mut browser, "/oauth/token", "grant_type=password&username=alice");
        let mut token = issued["json"]["refresh_token"].as_str().unwrap().to_owned();

        for round in 0..3 {
            new_connection_next();
            let again = post(&mut browser, "/login", "username=alice");
            let echo = &again["json"]["helloguard"];
            assert_ne!(echo["ja4"], fresh["ja4"], "round {round}: a resumed hello (pre_shared_key, no session_ticket)");
            assert_eq!(echo["ja4_stable"], fresh["ja4_stable"], "round {round}");
            assert_eq!(
                (echo["decision"].as_str(), echo["reason"].as_str()),
                (Some("allow"), Some("fingerprint_match"))
            );

            new_connection_next();
            let refreshed =
                post(&mut browser, "/oauth/token", &format!("grant_type=refresh_token&refresh_token={token}"));
            assert_eq!(refreshed["status"], 200, "round {round}: {refreshed}");
            token = refreshed["json"]["refresh_token"].as_str().unwrap().to_owned();
        }
    });
    let challenges: Vec<Value> =
        running.events.named("decision").into_iter().filter(|e| e["decision"] == "challenge").collect();
    assert!(challenges.is_empty(), "{challenges:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_of_the_earlier_rule_is_upgraded_on_a_resumed_firefox() {
    if !firefox::available() {
        return;
    }
    let running = proxy().await;
    let (browser, fresh) = tokio::task::block_in_place(|| {
        let mut browser = Firefox::start();
        browser.navigate(&format!("https://localhost:{}/", running.addr.port()));
        let login = post(&mut browser, "/login", "username=alice");
        (browser, login["json"]["helloguard"].clone())
    });
    // As the previous release stored it: its rule kept session_ticket, and a fresh NSS hello has
    // no padding, pre_shared_key or early_data, so its ja4_stable was the hello's JA4.
    let session_id = running
        .events
        .named("decision")
        .iter()
        .rev()
        .find_map(|e| e["session_id"].as_str().map(str::to_owned))
        .unwrap();
    let earlier = fresh["ja4"].as_str().unwrap().to_owned();
    assert_ne!(earlier, fresh["ja4_stable"].as_str().unwrap());
    let change = MetadataChange::Merge(vec![("ja4_stable".into(), earlier.clone())]);
    running.store.update_session_metadata(&session_id, &change, Timestamp::now()).await.unwrap();

    let mut browser = browser;
    let again = tokio::task::block_in_place(|| {
        new_connection_next();
        post(&mut browser, "/login", "username=alice")
    });
    let echo = &again["json"]["helloguard"];
    assert_ne!(echo["ja4"], fresh["ja4"], "the hello was resumed");
    assert_eq!(
        (echo["decision"].as_str(), echo["reason"].as_str()),
        (Some("bind"), Some("binding_upgraded")),
        "{echo}"
    );
    let upgrade = running.events.named("decision").into_iter().find(|e| e["reason"] == "binding_upgraded").unwrap();
    assert_eq!(upgrade["stored"]["ja4_stable"], earlier.as_str(), "the audit line carries the old value");
    assert_eq!(upgrade["observed"]["ja4_stable"], fresh["ja4_stable"], "and the new one");
    assert_eq!(upgrade["outcome"], "forwarded");

    let after = tokio::task::block_in_place(|| {
        new_connection_next();
        post(&mut browser, "/login", "username=alice")
    });
    assert_eq!(after["json"]["helloguard"]["reason"], "fingerprint_match", "the upgraded binding is the new rule's");
    drop(browser);
}
