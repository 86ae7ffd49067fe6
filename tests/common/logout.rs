//! Back-channel logout test setup: a relying party, the proxy configured to deliver to it, and
//! the user's side of a session (log in, find the session id, log out) through the proxy.

use std::net::SocketAddr;
use std::time::Duration;

use helloguard::config::{Config, ConfigDuration};
use helloguard::logout::config::{
    ClientConfig, InitiatorMode, InitiatorName, InitiatorsConfig, OidcLogout, SessionMetadataConfig,
};

use rustls::pki_types::CertificateDer;

use super::client::{cookie_of, request_at};
use super::proxy::{start, Running};
use super::rp::RelyingParty;

pub const ISSUER: &str = "https://login.example/";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// A client with back-channel logout to `urls`; `selected` = `None` means `mode = "all"`.
pub fn client(client_id: &str, urls: &[String], selected: Option<&[&str]>, include_metadata: bool) -> ClientConfig {
    let initiators = match selected {
        None => InitiatorsConfig { mode: InitiatorMode::All, selected_initiators: None },
        Some(names) => InitiatorsConfig {
            mode: InitiatorMode::Custom,
            selected_initiators: Some(names.iter().map(|n| InitiatorName((*n).to_owned())).collect()),
        },
    };
    ClientConfig {
        client_id: client_id.to_owned(),
        logout_token_typ: Default::default(),
        oidc_logout: Some(OidcLogout {
            backchannel_logout_urls: urls.to_vec(),
            backchannel_logout_initiators: initiators,
            backchannel_logout_session_metadata: SessionMetadataConfig { include: include_metadata },
        }),
        oidc_backchannel_logout: None,
    }
}

/// `[logout]` for tests: the RP's certificate trusted, retries in milliseconds.
pub fn configure(config: &mut Config, rp: &RelyingParty) {
    config.logout.issuer = Some(ISSUER.to_owned());
    config.logout.ca_file = Some(rp.ca_file.clone());
    config.logout.retry_base = ConfigDuration(Duration::from_millis(20));
}

/// The RP, then the proxy (demo upstream, client `demo` delivering to the RP with every initiator
/// and the metadata snapshot, unless `edit` changes it); the RP trusts the JWKS the proxy serves.
pub async fn start_with_rp(edit: impl FnOnce(&mut Config, &RelyingParty)) -> (Running, RelyingParty) {
    let rp = RelyingParty::start(ISSUER).await;
    let mut jwks_path = String::new();
    let running = start(|config| {
        configure(config, &rp);
        config.clients = vec![client("demo", &[rp.url("demo")], None, true)];
        edit(config, &rp);
        jwks_path = config.logout.jwks_path.clone();
    })
    .await;
    let jwks = request_at(running.addr, &running.root, "GET", &jwks_path, &[], "").await;
    assert_eq!(jwks.status, 200);
    rp.trust(&jwks.body);
    (running, rp)
}

/// Logs `user` in through the proxy: the session cookie (`name=value`) and the session id the
/// upstream then sees on that cookie.
pub async fn login(running: &Running, user: &str) -> (String, String) {
    login_at(running.addr, &running.root, user).await
}

/// [`login`] through a proxy at `addr` whose certificate is `root`.
pub async fn login_at(addr: SocketAddr, root: &CertificateDer<'static>, user: &str) -> (String, String) {
    let answer = request_at(addr, root, "POST", "/login", &[FORM], &format!("username={user}")).await;
    assert_eq!(answer.status, 200);
    let cookie = cookie_of(&answer);
    let whoami = request_at(addr, root, "GET", "/whoami", &[("cookie", &cookie)], "").await;
    let session_id = whoami.json["session_id"].as_str().expect("a live session").to_owned();
    (cookie, session_id)
}

/// `POST /logout` with the cookie (the demo answers 200 and expires it).
pub async fn logout(running: &Running, cookie: &str) {
    logout_at(running.addr, &running.root, cookie).await
}

/// [`logout`] through a proxy at `addr` whose certificate is `root`.
pub async fn logout_at(addr: SocketAddr, root: &CertificateDer<'static>, cookie: &str) {
    let answer = request_at(addr, root, "POST", "/logout", &[("cookie", cookie)], "").await;
    assert_eq!(answer.status, 200);
}

/// Waits until the audit has a `session_ended` event for `session_id`; returns it.
pub async fn ended(running: &Running, session_id: &str) -> serde_json::Value {
    for _ in 0..500 {
        if let Some(event) = running.events.named("session_ended").into_iter().find(|e| e["session_id"] == session_id) {
            return event;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no session_ended event for {session_id}");
}

/// The audit events of the delivery attempts for `session_id`, in order, once there are at least
/// `count` of them.
pub async fn attempts(running: &Running, session_id: &str, count: usize) -> Vec<serde_json::Value> {
    let found = || -> Vec<serde_json::Value> {
        let events = running.events.0.lock().unwrap();
        events
            .iter()
            .filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("oidc_backchannel_logout_")))
            .filter(|e| e["session_id"] == session_id)
            .cloned()
            .collect()
    };
    for _ in 0..750 {
        let events = found();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {count} attempt events for {session_id}: {:?}", found());
}
