//! Headless Chromium through the proxy (issue 5). Chromium sends GREASE, permutes its extensions
//! on every connection and sends a post-quantum ClientHello of ~1.8 KB; the proxy must see one
//! `ja4_stable` in all of that and never challenge a logged-in browser for it.
//!
//! Design. Each run is a separate `chromium --headless --dump-dom` process, so each makes new TLS
//! connections. Chromium connects to a forwarder in the test (`common::forwarder`), which passes
//! the bytes to the in-process proxy and records each connection's ClientHello records; the demo
//! upstream echoes the fingerprint headers the proxy sent it as JSON, which Chromium shows as the
//! page. A run's echo must equal `helloguard fingerprint` (the CLI) of the hello of the connection
//! that carried the request: Chromium may open more than one connection per run (preconnects), so
//! that connection is the one whose CLI `ja3` the echo shows, and its `ja4` and `ja4_stable` must
//! then match too.
//!
//! - Fresh profiles: three runs of `GET /whoami`; one `ja4_stable` for every connection and one
//!   `ja4` for every connection that resumes nothing, while the `ja3`s (extension order) differ.
//!   A run's later connection may resume its first one's session when the first finished its
//!   handshake in time (seen on a loaded machine): its `ja4` counts the `pre_shared_key`.
//! - One profile, logged in: run 1 opens a local HTML file whose inline script submits the demo's
//!   login form (`POST /login`) through the forwarder; the proxy binds the new session to that
//!   connection's fingerprints and the demo's cookie, persistent, stays in the profile. Runs 2..4
//!   are new Chromium processes on the same profile that load `GET /authorize`, configured here as
//!   a login route (an OIDC silent re-authentication), so each gets a decision: the cookie is sent,
//!   the session is the same, the decision is `allow`/`fingerprint_match` although every `ja3`
//!   differs, and no audit event is a challenge. Chromium keeps no TLS session across processes, so
//!   these connections are full handshakes, not resumptions (then `ja4` equals `ja4_stable`).
use crate::common;

use std::path::Path;

use common::chromium;
use common::forwarder::Forwarder;
use common::proxy::start;
use helloguard::config::{RouteConfig, RouteKind};
use serde_json::Value;

/// Chromium runs per test (separate processes).
const RUNS: usize = 3;

/// A ClientHello carrying an X25519MLKEM768 key share (1216 bytes of it) is larger than this.
const POST_QUANTUM_HELLO: usize = 1400;

/// One ClientHello Chromium sent: its size, and what `helloguard fingerprint` prints for it.
#[derive(Clone)]
struct Hello {
    size: usize,
    cli: Value,
}

fn url(forwarder: &Forwarder, path: &str) -> String {
    format!("https://localhost:{}{path}", forwarder.addr.port())
}

/// One Chromium process on `profile` loads `url`: the JSON the page shows, and every hello it sent.
fn browse(forwarder: &Forwarder, profile: &Path, url: &str) -> (Value, Vec<Hello>) {
    tokio::task::block_in_place(|| {
        let before = forwarder.hello_count();
        let shown = chromium::shown_json(&chromium::dump_dom(profile, url));
        let hellos = forwarder
            .hellos_since(before)
            .iter()
            .map(|records| Hello { size: records.len(), cli: common::binary::fingerprint(records) })
            .collect();
        (shown, hellos)
    })
}

/// The hello of the connection that carried the request `echo` answers (the one with its `ja3`),
/// after checking that the proxy's other fingerprints of it equal the CLI's too, and that it is the
/// large post-quantum hello this test is about.
fn carrier(echo: &Value, hellos: &[Hello]) -> Hello {
    let hello = hellos.iter().find(|h| h.cli["ja3"] == echo["ja3"]);
    let shown: Vec<&Value> = hellos.iter().map(|h| &h.cli["ja3"]).collect();
    let hello = hello.unwrap_or_else(|| panic!("the echo {echo} matches none of the recorded hellos {shown:?}"));
    for key in ["ja4", "ja4_stable"] {
        assert_eq!(echo[key], hello.cli[key], "{key} of the carrying connection");
    }
    assert!(hello.size > POST_QUANTUM_HELLO, "a post-quantum hello is ~1.8 KB, this one {} bytes", hello.size);
    hello.clone()
}

/// The figures of one run, for the test's output (`-- --nocapture`).
fn print_run(label: &str, hello: &Hello, connections: usize) {
    let cli = &hello.cli;
    println!(
        "{label}: hello {} bytes, {connections} connection(s); ja3 {} ja4 {} ja4_stable {}\n    ja3_full {}",
        hello.size, cli["ja3"], cli["ja4"], cli["ja4_stable"], cli["ja3_full"]
    );
}

/// Every hello has one `ja4_stable`; the requests' hellos do not all have one `ja3`.
fn assert_stable_but_permuted(carriers: &[Hello], all: &[Hello]) {
    let stable = &all[0].cli["ja4_stable"];
    assert!(all.iter().all(|h| &h.cli["ja4_stable"] == stable), "one ja4_stable for every connection");
    let first = &carriers[0].cli["ja3_full"];
    assert!(
        carriers.iter().any(|h| &h.cli["ja3_full"] != first),
        "Chromium permutes its extensions per connection, so the ja3 strings differ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_chromium_profiles_permute_extensions_but_keep_one_ja4() {
    if !chromium::available() {
        return;
    }
    let running = start(|_| {}).await;
    let forwarder = Forwarder::start(running.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    let mut carriers = Vec::new();
    for run in 0..RUNS {
        let profile = dir.path().join(format!("profile-{run}"));
        let (echo, hellos) = browse(&forwarder, &profile, &url(&forwarder, "/whoami"));
        let hello = carrier(&echo, &hellos);
        print_run(&format!("fresh profile, run {run}"), &hello, hellos.len());
        carriers.push(hello);
        all.extend(hellos);
    }
    assert_stable_but_permuted(&carriers, &all);
    // A profile's later connection may resume its first one's session (a `pre_shared_key`, which
    // `ja4` counts and `ja4_stable` leaves out); every hello that resumes nothing has one `ja4`.
    let fresh: Vec<&Hello> = all.iter().filter(|h| !offers_resumption(h)).collect();
    assert!(fresh.len() >= RUNS, "each fresh profile's first connection resumes nothing");
    let ja4 = &fresh[0].cli["ja4"];
    let shown: Vec<String> = all.iter().map(|h| format!("{} {}", h.cli["ja4"], h.cli["ja3_full"])).collect();
    assert!(fresh.iter().all(|h| &h.cli["ja4"] == ja4), "one ja4 without resumption, in {shown:#?}");
}

/// Whether a hello offers a session to resume: its extensions (the third field of `ja3_full`)
/// include `pre_shared_key` (41).
fn offers_resumption(hello: &Hello) -> bool {
    let ja3_full = hello.cli["ja3_full"].as_str().expect("ja3_full");
    ja3_full.split(',').nth(2).expect("extensions").split('-').any(|extension| extension == "41")
}

/// A local page that submits the demo's login form to `action` while it loads (see
/// `common::chromium` for why not from `onload`).
fn login_page(action: &str) -> String {
    format!(
        "<!doctype html><title>log in</title>\
         <form method=\"post\" action=\"{action}\"><input name=\"username\" value=\"alice\"></form>\
         <script>document.forms[0].submit()</script>"
    )
}

/// `GET /authorize` as a login route: the browser's later visits, which carry the session cookie.
fn authorize_route() -> RouteConfig {
    RouteConfig {
        kind: RouteKind::Login,
        path: "/authorize".to_owned(),
        methods: vec!["GET".to_owned()],
        client_id: Some("demo".to_owned()),
        case_sensitive: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logged_in_chromium_is_not_challenged_on_new_connections() {
    if !chromium::available() {
        return;
    }
    let running = start(|config| config.routes.push(authorize_route())).await;
    let forwarder = Forwarder::start(running.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let page = dir.path().join("login.html");
    std::fs::write(&page, login_page(&url(&forwarder, "/login"))).unwrap();

    let (shown, hellos) = browse(&forwarder, &profile, &format!("file://{}", page.display()));
    assert_eq!(shown["logged_in"], "alice", "{shown}");
    let login = carrier(&shown["helloguard"], &hellos);
    print_run("log in", &login, hellos.len());
    let logins: Vec<Value> =
        running.events.named("decision").into_iter().filter(|e| e["reason"] == "new_session").collect();
    assert_eq!(logins.len(), 1, "one login, one new session: {logins:?}");
    let bound = &logins[0];
    for key in ["ja3", "ja4", "ja4_stable"] {
        assert_eq!(bound["observed"][key], login.cli[key], "the session is bound to the login's {key}");
    }
    let session = &bound["session_id"];
    let mut all = hellos;
    let mut carriers = vec![login];

    for run in 1..=RUNS {
        let (echo, hellos) = browse(&forwarder, &profile, &url(&forwarder, "/authorize"));
        let hello = carrier(&echo, &hellos);
        print_run(&format!("same profile, run {run}"), &hello, hellos.len());
        assert_eq!(&echo["session_id"], session, "the cookie from the login was sent: {echo}");
        assert_eq!((&echo["decision"], &echo["reason"]), (&"allow".into(), &"fingerprint_match".into()), "{echo}");
        carriers.push(hello);
        all.extend(hellos);
    }
    assert_stable_but_permuted(&carriers, &all);
    let decisions = running.events.named("decision");
    assert!(decisions.iter().all(|e| e["decision"] != "challenge"), "{decisions:?}");
    assert_eq!(running.events.reasons().iter().filter(|r| *r == "fingerprint_match").count(), RUNS);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_comparing_ja3_challenges_chromium_and_one_comparing_ja4_stable_does_not() {
    if !chromium::available() {
        return;
    }
    for compare in ["ja3", "ja4_stable"] {
        let dir = tempfile::tempdir().unwrap();
        let action = common::adaptive_action(dir.path(), compare);
        let running = start(|config| {
            config.actions.post_login = vec![action];
            config.routes.push(authorize_route())
        })
        .await;
        let forwarder = Forwarder::start(running.addr).await;
        let profile = dir.path().join("profile");
        let page = dir.path().join("login.html");
        std::fs::write(&page, login_page(&url(&forwarder, "/login"))).unwrap();
        let (shown, hellos) = browse(&forwarder, &profile, &format!("file://{}", page.display()));
        assert_eq!(shown["logged_in"], "alice", "{shown}");
        let login = carrier(&shown["helloguard"], &hellos);
        let mut carriers = vec![login.clone()];
        for run in 1..=RUNS {
            let (echo, hellos) = browse(&forwarder, &profile, &url(&forwarder, "/authorize"));
            let hello = carrier(&echo, &hellos);
            print_run(&format!("Action comparing {compare}, run {run}"), &hello, hellos.len());
            let changed = hello.cli[compare] != login.cli[compare];
            let expected = if changed { ("challenge", "action_challenge") } else { ("allow", "fingerprint_match") };
            assert_eq!(
                (echo["decision"].as_str(), echo["reason"].as_str()),
                (Some(expected.0), Some(expected.1)),
                "{compare}: {echo}"
            );
            if compare == "ja4_stable" {
                assert!(!changed, "one ja4_stable for Chromium");
            }
            carriers.push(hello);
        }
        if compare == "ja3" {
            let challenged = carriers[1..].iter().filter(|h| h.cli["ja3"] != login.cli["ja3"]).count();
            assert!(challenged > 0, "Chromium permutes its extensions, so comparing ja3 challenges it");
        }
    }
}
