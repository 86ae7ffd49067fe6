//! Actions (CONTRACT §11) through the real proxy, in front of the permissive login service of the
//! attack suite (`common::permissive`), which records the helloguard headers it received.
//!
//! - The uses of session and refresh-token metadata, each with its example from
//!   `examples/actions/` as written: persistent claims three rotations later, one session id
//!   everywhere, a tenant id from the login's query on a plain call, the login's user agent cut to
//!   fit, and the reference's fingerprint comparison with its three factors.
//! - The error paths: a throw, a rejection, a loop (the worker serves other connections meanwhile),
//!   a memory bomb, `require`, an invalid write (refused, nothing written, upstream not reached),
//!   `deny`, `on_error`; a syntax error at start and on reload.
//! - Ambiguous parameters an Action could decide on are refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::common;
use common::client::{request, Answer, Client, FORM};
use common::permissive::{Permissive, Seen};
use common::proxy::{start, Running};
use helloguard::config::Config;

const OWNER: Client = Client::Default;
const THIEF: Client = Client::Aes128Only;

/// An example Action of `examples/actions/`, as shipped.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/actions").join(name)
}

struct Scene {
    running: Running,
    upstream: Arc<Permissive>,
    /// Where the test's own Action files are (kept until the scene ends).
    _dir: tempfile::TempDir,
}

impl Scene {
    /// The proxy with `files` as `[actions] post_login`, in front of the permissive service.
    async fn start(files: &[PathBuf], edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, files, edit).await
    }

    async fn start_in(dir: tempfile::TempDir, files: &[PathBuf], edit: impl FnOnce(&mut Config)) -> Self {
        let (upstream, addr) = Permissive::start().await;
        let running = start(|config| {
            config.server.upstream = common::upstream::origin(addr);
            config.actions.post_login = files.to_vec();
            edit(config);
        })
        .await;
        Self { running, upstream, _dir: dir }
    }

    /// A scene running one Action written here.
    async fn with_source(source: &str, edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("action.js");
        std::fs::write(&file, source).unwrap();
        Self::start_in(dir, &[file], edit).await
    }

    async fn send(
        &self,
        client: Client,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (Answer, Vec<Seen>) {
        let mark = self.upstream.seen().len();
        let answer = request(&self.running, client, method, path, headers, body).await;
        (answer, self.upstream.seen().split_off(mark))
    }

    /// A first login by `client` as alice: the answer and the session cookie.
    async fn log_in(&self, client: Client, path: &str) -> (Answer, String) {
        let (answer, _) = self.send(client, "POST", path, &[FORM], "username=alice").await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        let cookie = answer.headers.get("set-cookie").expect("a session cookie").to_str().unwrap();
        let value = cookie.split(';').next().unwrap().to_owned();
        (answer, value)
    }

    /// A refresh exchange of `token` by `client`: the answer and what the service read.
    async fn refresh(&self, client: Client, token: &str) -> (Answer, Seen) {
        let body = format!("grant_type=refresh_token&refresh_token={token}");
        let (answer, mut seen) = self.send(client, "POST", "/oauth/token", &[FORM], &body).await;
        assert_eq!(seen.len(), 1, "the exchange reached the service: {} {}", answer.status, answer.json);
        (answer, seen.remove(0))
    }

    fn action_errors(&self) -> Vec<Value> {
        self.running.events.named("action_error")
    }
}

/// A base64url (no padding) JSON header the service received, decoded.
fn decoded(seen: &Seen, name: &str) -> Option<Value> {
    let text = seen.header(name)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).expect("base64url without padding");
    Some(serde_json::from_slice(&bytes).expect("a JSON object"))
}

/// The last request-phase decision (the one the Actions took part in).
fn last_decision(running: &Running) -> Value {
    running.events.named("decision").into_iter().rev().find(|e| e.get("actions").is_some()).expect("a decision event")
}

/// The id of the session the last login created.
fn new_session_id(running: &Running) -> String {
    let events = running.events.named("decision");
    let created = events.iter().rev().find(|e| e["reason"] == "new_session").expect("a new session");
    created["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn persistent_claims_survive_three_rotations() {
    let scene = Scene::start(&[example("persistent_claims.js")], |_| {}).await;
    let (issued, seen) = scene.send(OWNER, "POST", "/oauth/token", &[FORM], "grant_type=password&username=alice").await;
    assert_eq!(issued.status, 200, "{}", issued.json);
    let first = decoded(&seen[0], "helloguard-claims").expect("claims on the first login");
    let first_login = first["id_token"]["https://example.com/first_login"].as_str().unwrap().to_owned();
    assert_eq!(first["access_token"]["https://example.com/plan"], "gold");
    let mut token = issued.json["refresh_token"].as_str().unwrap().to_owned();
    let mut claims = Value::Null;
    for _ in 0..3 {
        let (answer, seen) = scene.refresh(OWNER, &token).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        claims = decoded(&seen, "helloguard-claims").expect("claims on every exchange");
        token = answer.json["refresh_token"].as_str().unwrap().to_owned();
    }
    assert_eq!(claims["id_token"]["https://example.com/first_login"], first_login.as_str(), "{claims}");
    assert_eq!(claims["access_token"]["https://example.com/plan"], "gold");
    // The audit names the claims, never their values.
    let decision = last_decision(&scene.running);
    assert_eq!(
        decision["claims"],
        json!(["access_token.https://example.com/plan", "id_token.https://example.com/first_login"])
    );
    assert!(!decision.to_string().contains(&first_login), "{decision}");
    assert_eq!(decision["actions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn one_session_id_in_the_session_its_rotated_tokens_and_the_claims() {
    let scene = Scene::start(&[example("session_id.js")], |config| {
        config.headers.forward_session_metadata = vec!["sid".into()];
        config.headers.forward_refresh_token_metadata = vec!["sid".into()];
    })
    .await;
    let (login, cookie) = scene.log_in(OWNER, "/login").await;
    let _ = login;
    let login_seen = scene.upstream.seen().pop().unwrap();
    let sid = decoded(&login_seen, "helloguard-claims").unwrap()["id_token"]["https://example.com/sid"]
        .as_str()
        .expect("the session id in the login's claims")
        .to_owned();
    assert_eq!(uuid::Uuid::parse_str(&sid).map(|u| u.get_version_num()), Ok(4), "{sid}");
    let session_id = new_session_id(&scene.running);
    let session = scene.running.store.get_session(&session_id).await.unwrap().unwrap();
    assert_eq!(session.record.session_metadata.get("sid"), Some(sid.as_str()));

    // A plain call of the session carries it.
    let (_, seen) = scene.send(OWNER, "GET", "/profile", &[("cookie", &cookie)], "").await;
    assert_eq!(decoded(&seen[0], "helloguard-session-metadata"), Some(json!({ "sid": sid })));

    let (issued, seen) = scene
        .send(OWNER, "POST", "/oauth/token", &[FORM, ("cookie", &cookie)], "grant_type=password&username=alice")
        .await;
    assert_eq!(
        decoded(&seen[0], "helloguard-claims").unwrap()["access_token"]["https://example.com/sid"],
        sid.as_str()
    );
    let mut token = issued.json["refresh_token"].as_str().unwrap().to_owned();
    for rotation in 1..=3 {
        let (answer, seen) = scene.refresh(OWNER, &token).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        assert_eq!(
            decoded(&seen, "helloguard-refresh-token-metadata"),
            Some(json!({ "sid": sid })),
            "rotation {rotation}"
        );
        assert_eq!(decoded(&seen, "helloguard-claims").unwrap()["id_token"]["https://example.com/sid"], sid.as_str());
        token = answer.json["refresh_token"].as_str().unwrap().to_owned();
    }
    // The last rotated-in token's record.
    let tokens = scene.running.events.named("decision");
    let last = tokens.iter().rev().find_map(|e| e["refresh_token_id"].as_str()).unwrap();
    let record = scene.running.store.get_refresh_token(last).await.unwrap().unwrap();
    assert_eq!(record.record.refresh_token_metadata.get("sid"), Some(sid.as_str()));
}

#[tokio::test]
async fn a_tenant_from_the_login_query_reaches_every_call_of_the_session() {
    let scene = Scene::start(&[example("tenant.js")], |config| {
        config.headers.forward_session_metadata = vec!["tenant_id".into()];
    })
    .await;
    let (_, cookie) = scene.log_in(OWNER, "/login?ext-tenantId=acme").await;
    let (answer, seen) = scene.send(OWNER, "GET", "/api/orders", &[("cookie", &cookie)], "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(decoded(&seen[0], "helloguard-session-metadata"), Some(json!({"tenant_id": "acme"})));
    // Another session without a tenant: no header (none of the listed keys is present).
    let (_, other) = scene.log_in(OWNER, "/login").await;
    let (_, seen) = scene.send(OWNER, "GET", "/api/orders", &[("cookie", &other)], "").await;
    assert_eq!(seen[0].header("helloguard-session-metadata"), None);
    // A client cannot send the header itself.
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"tenant_id":"globex"}"#);
    let (_, seen) = scene
        .send(OWNER, "GET", "/api/orders", &[("cookie", &other), ("helloguard-session-metadata", &forged)], "")
        .await;
    assert_eq!(seen[0].header("helloguard-session-metadata"), None);
    // Parameters an Action reads have one reading: a repeated or folded name is refused.
    for path in ["/login?ext-tenantId=acme&ext-tenantId=globex", "/login?ext-tenantId=acme&EXT-TENANTID=globex"] {
        let (answer, seen) = scene.send(OWNER, "POST", path, &[FORM], "username=alice").await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.json);
        assert!(seen.is_empty(), "{path}");
    }
    let (answer, seen) = scene.send(OWNER, "POST", "/login", &[FORM], "username=alice&username=mallory").await;
    assert_eq!((answer.status, seen.len()), (400, 0), "{}", answer.json);
}

#[tokio::test]
async fn the_login_user_agent_is_kept_cut_to_fit() {
    let scene = Scene::start(&[example("device.js")], |_| {}).await;
    let agent = format!("Mozilla/5.0 {}", "x".repeat(300));
    let (answer, _) = scene
        .send(
            OWNER,
            "POST",
            "/login",
            &[FORM, ("user-agent", &agent), ("accept-language", "fr-CH, fr;q=0.9")],
            "username=alice",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let session_id = new_session_id(&scene.running);
    let session = scene.running.store.get_session(&session_id).await.unwrap().unwrap();
    let metadata = &session.record.session_metadata;
    assert_eq!(metadata.get("login_user_agent"), Some(&agent[..255]));
    assert_eq!(metadata.get("login_ip"), Some("127.0.0.1"));
    assert_eq!(metadata.get("login_language"), Some("fr-CH"));
    assert_eq!(metadata.get("assurance"), Some("password"), "a first login: nothing bound yet");
}

#[tokio::test]
async fn the_reference_comparison_challenges_another_client_with_three_factors() {
    // Actions alone decide: the built-in binding is off.
    let scene = Scene::start(&[example("adaptive.js")], |config| config.policy.builtin = false).await;
    let (_, cookie) = scene.log_in(OWNER, "/login").await;
    let headers = [FORM, ("cookie", cookie.as_str())];
    let (own, seen) = scene.send(OWNER, "POST", "/login", &headers, "").await;
    assert_eq!(own.status, 200);
    assert_eq!(seen[0].header("helloguard-decision"), Some("allow"));
    let (_, seen) = scene.send(THIEF, "POST", "/login", &headers, "").await;
    assert_eq!(seen[0].header("helloguard-decision"), Some("challenge"));
    assert_eq!(seen[0].header("helloguard-decision-reason"), Some("action_challenge"));
    let decision = last_decision(&scene.running);
    assert_eq!(decision["challenge"], json!({"type": "otp"}));
    assert_eq!(decision["additional_factors"], json!([{"type": "push-notification"}, {"type": "phone"}]));
}

/// One failing Action: what the request was decided, the audit line, and the metric.
async fn failing(source: &str, edit: impl FnOnce(&mut Config)) -> (Scene, Answer, Vec<Seen>) {
    let scene = Scene::with_source(source, edit).await;
    let (answer, seen) = scene.send(OWNER, "POST", "/login", &[FORM], "username=alice").await;
    (scene, answer, seen)
}

#[tokio::test]
async fn a_failing_action_challenges_by_default_and_is_audited() {
    let cases = [
        ("throw", "exports.onExecutePostLogin = async () => { throw new Error('boom'); };", "Error: boom"),
        ("reject", "exports.onExecutePostLogin = () => Promise.reject(new TypeError('nope'));", "TypeError: nope"),
        ("require", "exports.onExecutePostLogin = async () => { require('fs').readFileSync('/etc/passwd'); };", "'fs'"),
        ("loop", "exports.onExecutePostLogin = async () => { for (;;) {} };", "ran out of time"),
        (
            "memory",
            "exports.onExecutePostLogin = async () => { const a = []; for (;;) a.push(new Array(100000).fill(a.length)); };",
            "out of memory",
        ),
        ("no handler", "exports.somethingElse = 1;", "onExecutePostLogin"),
    ];
    for (case, source, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("{}.js", case.replace(' ', "_")));
        std::fs::write(&file, source).unwrap();
        if case == "no handler" {
            // Not a function at all: refused at start, like a syntax error.
            let error = helloguard::actions::Actions::load(&helloguard::actions::ActionsConfig {
                post_login: vec![file.clone()],
                ..Default::default()
            })
            .err()
            .expect("refused");
            assert!(error.to_string().contains(message), "{error}");
            continue;
        }
        let scene = Scene::start_in(dir, &[file], |config| {
            config.actions.timeout = helloguard::config::ConfigDuration(Duration::from_millis(50))
        })
        .await;
        let (answer, seen) = scene.send(OWNER, "POST", "/login", &[FORM], "username=alice").await;
        assert_eq!(answer.status, 200, "{case}: forwarded with the decision (no challenge_url)");
        assert_eq!(seen[0].header("helloguard-decision"), Some("challenge"), "{case}");
        assert_eq!(seen[0].header("helloguard-decision-reason"), Some("action_error"), "{case}");
        let errors = scene.action_errors();
        assert_eq!(errors.len(), 1, "{case}: {errors:?}");
        assert!(errors[0]["message"].as_str().unwrap().contains(message), "{case}: {}", errors[0]);
        assert_eq!(errors[0]["decision"], "challenge", "{case}");
        assert!(errors[0]["file"].as_str().unwrap().ends_with(".js"), "{case}");
        assert_eq!(scene.running.metric("helloguard_action_errors_total").await, 1.0, "{case}");
    }
}

#[tokio::test]
async fn on_error_deny_refuses_and_allow_lets_through() {
    let throwing = "exports.onExecutePostLogin = async () => { throw new Error('boom'); };";
    let (scene, answer, seen) = failing(throwing, |c| c.actions.on_error = helloguard::actions::OnError::Deny).await;
    assert_eq!(answer.status, 403, "{}", answer.json);
    assert_eq!(answer.json["error"], "access_denied");
    assert!(seen.is_empty(), "the service is not reached");
    assert_eq!(scene.action_errors()[0]["decision"], "deny");
    let (_, answer, seen) = failing(throwing, |c| c.actions.on_error = helloguard::actions::OnError::Allow).await;
    assert_eq!(answer.status, 200);
    assert_ne!(seen[0].header("helloguard-decision"), Some("challenge"));
}

#[tokio::test]
async fn deny_answers_access_denied_with_the_reason() {
    let (scene, answer, seen) = failing(
        "exports.onExecutePostLogin = async (event, api) => { api.access.deny('Logins from here are closed'); };",
        |_| {},
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json, json!({"error": "access_denied", "error_description": "Logins from here are closed"}));
    assert!(seen.is_empty());
    assert_eq!(last_decision(&scene.running)["decision"], "deny");
}

#[tokio::test]
async fn an_invalid_write_refuses_the_request_and_writes_nothing() {
    let source = "exports.onExecutePostLogin = async (event, api) => {\n\
                  api.session.setMetadata('ok', 'fine');\n\
                  api.session.setMetadata('agent', event.request.user_agent ?? 'none');\n};";
    let scene = Scene::with_source(source, |_| {}).await;
    // A first login: both writes are held for the session the login would create.
    let long = "a".repeat(300);
    let (answer, seen) = scene.send(OWNER, "POST", "/login", &[FORM, ("user-agent", &long)], "username=alice").await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.json,
        json!({"error": "access_denied",
               "error_description": "Failed to set session metadata: Invalid metadata: All metadata values must be at most 255 characters long"})
    );
    assert!(seen.is_empty(), "the service is not reached, so no session is created");
    // A live session: nothing of the request's writes lands on it.
    let (_, cookie) = scene.log_in(OWNER, "/login").await;
    let session_id = new_session_id(&scene.running);
    let before = scene.running.store.get_session(&session_id).await.unwrap().unwrap();
    let (answer, seen) =
        scene.send(OWNER, "POST", "/login", &[FORM, ("cookie", &cookie), ("user-agent", &long)], "").await;
    assert_eq!(answer.status, 403);
    assert!(seen.is_empty());
    let after = scene.running.store.get_session(&session_id).await.unwrap().unwrap();
    assert_eq!(after.record.session_metadata, before.record.session_metadata);
    assert_eq!(after.record.session_metadata.get("ok"), Some("fine"), "from the valid login");
}

#[tokio::test]
async fn a_looping_action_never_stalls_other_connections() {
    let scene = Arc::new(
        Scene::with_source("exports.onExecutePostLogin = async () => { for (;;) {} };", |config| {
            config.actions.timeout = helloguard::config::ConfigDuration(Duration::from_secs(3));
        })
        .await,
    );
    let looping = {
        let scene = scene.clone();
        tokio::spawn(async move { scene.send(OWNER, "POST", "/login", &[FORM], "username=alice").await })
    };
    // Wait until the Action is running (the login is not answered for its whole time limit).
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        let (answer, _) = scene.send(OWNER, "GET", "/elsewhere", &[], "").await;
        assert_eq!(answer.status, 200);
    }
    assert!(!looping.is_finished(), "other requests were served while the Action ran");
    let (answer, seen) = looping.await.unwrap();
    assert_eq!(answer.status, 200);
    let login = seen.iter().find(|s| s.route == "login").expect("the login reached the service");
    assert_eq!(login.header("helloguard-decision-reason"), Some("action_error"));
}

#[tokio::test]
async fn a_syntax_error_stops_the_start_and_a_reload_keeps_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tag.js");
    std::fs::write(
        &file,
        "exports.onExecutePostLogin = async (event, api) => {\n  api.session.setMetadata('v', '1');\n};\n",
    )
    .unwrap();
    let bad = "exports.onExecutePostLogin = async (event, api) => {\n  api.session.setMetadata('v', '2'\n};\n";
    // At start: refused, naming the place.
    let broken = dir.path().join("broken.js");
    std::fs::write(&broken, bad).unwrap();
    let config = helloguard::actions::ActionsConfig { post_login: vec![broken.clone()], ..Default::default() };
    let error = helloguard::actions::Actions::load(&config).err().expect("a syntax error is refused").to_string();
    assert!(error.starts_with(&format!("{}:3:1", broken.display())), "{error}");

    let scene = Scene::start_in(dir, std::slice::from_ref(&file), |config| {
        config.tls.reload_interval = helloguard::config::ConfigDuration(Duration::from_millis(100));
    })
    .await;
    let version = |scene: &Scene| {
        let id = new_session_id(&scene.running);
        let store = scene.running.store.clone();
        async move { store.get_session(&id).await.unwrap().unwrap().record.session_metadata.get("v").map(str::to_owned) }
    };
    scene.log_in(OWNER, "/login").await;
    assert_eq!(version(&scene).await.as_deref(), Some("1"));
    // A broken edit: logged, counted, the previous version stays in service.
    std::fs::write(&file, bad).unwrap();
    wait_for(&scene.running, "helloguard_action_reload_failures_total", 1.0).await;
    scene.log_in(OWNER, "/login").await;
    assert_eq!(version(&scene).await.as_deref(), Some("1"));
    // A good edit is picked up.
    std::fs::write(&file, "exports.onExecutePostLogin = async (event, api) => { api.session.setMetadata('v', '3'); };")
        .unwrap();
    wait_for(&scene.running, "helloguard_action_reloads_total", 1.0).await;
    scene.log_in(OWNER, "/login").await;
    assert_eq!(version(&scene).await.as_deref(), Some("3"));
}

/// Waits (bounded) until a metric reaches `value`.
async fn wait_for(running: &Running, sample: &str, value: f64) {
    for _ in 0..100 {
        if running.metric(sample).await >= value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{sample} never reached {value}");
}

#[tokio::test]
async fn the_demo_shows_the_tenant_and_the_claims_it_received() {
    let config = Config::load(&example("helloguard.toml")).unwrap();
    let running = start(|c| {
        c.actions = config.actions.clone();
        c.headers.forward_session_metadata = config.headers.forward_session_metadata.clone();
    })
    .await;
    let login = request(&running, OWNER, "POST", "/login?ext-tenantId=acme", &[FORM], "username=alice").await;
    assert_eq!(login.status, 200, "{}", login.json);
    let sid = login.json["helloguard"]["claims"]["id_token"]["https://example.com/sid"]
        .as_str()
        .expect("claims echoed")
        .to_owned();
    let cookie = common::client::cookie_of(&login);
    let whoami = request(&running, OWNER, "GET", "/whoami", &[("cookie", &cookie)], "").await;
    assert_eq!(whoami.json["session_metadata"], json!({"tenant_id": "acme", "sid": sid}), "{}", whoami.json);
}

#[tokio::test]
async fn geoip_places_the_client_for_the_action() {
    // A database that places loopback in New Zealand, and an Action that claims the country.
    let dir = tempfile::tempdir().unwrap();
    let mut database = maxminddb_writer::Database::default();
    database.metadata.database_type = "GeoLite2-City".into();
    let record = database.insert_value(json!({"country": {"iso_code": "NZ"}})).unwrap();
    database.insert_node("127.0.0.0/8".parse::<maxminddb_writer::paths::IpAddrWithMask>().unwrap(), record);
    let path = dir.path().join("city.mmdb");
    std::fs::write(&path, database.write_to(Vec::new()).unwrap()).unwrap();
    let source = "exports.onExecutePostLogin = async (event, api) => {\n  \
                  api.idToken.setCustomClaim('country', event.request.geoip?.countryCode ?? 'unknown');\n};\n";
    let scene = Scene::with_source(source, |config| config.actions.geoip_database = Some(path.clone())).await;
    let (answer, seen) = scene.send(OWNER, "POST", "/login", &[FORM], "username=alice").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(decoded(&seen[0], "helloguard-claims").unwrap()["id_token"], json!({"country": "NZ"}));

    // Without a database the field is undefined, never invented.
    let scene = Scene::with_source(source, |_| {}).await;
    let (_, seen) = scene.send(OWNER, "POST", "/login", &[FORM], "username=alice").await;
    assert_eq!(decoded(&seen[0], "helloguard-claims").unwrap()["id_token"], json!({"country": "unknown"}));

    // A file that is not a database stops the start, naming the key.
    std::fs::write(&path, b"not a database").unwrap();
    let mut config = Config::default();
    config.actions.post_login = vec![example("tenant.js")];
    config.actions.geoip_database = Some(path.clone());
    let error = helloguard::actions::Actions::load(&config.actions).err().expect("refused");
    assert!(error.to_string().starts_with("actions.geoip_database "), "{error}");
}
