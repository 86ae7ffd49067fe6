//! A thief who makes its own fingerprint unknown (a hello larger than `max_hello_size`, or one
//! paused past `hello_timeout`) is challenged on a bound record (CONTRACT §3), with the default
//! `capture_failure = "open"`; a record with nothing bound is still allowed and stays unbound.

use std::time::Duration;

use super::{Scene, BACKENDS};
use crate::common::client::{build, connect, send, Answer, Client, Pace, FORM};

/// How the thief's connection loses its fingerprint.
#[derive(Debug, Clone, Copy)]
enum Unknown {
    /// A hello over the proxy's `max_hello_size` (ALPN padded to about 1.8 KB; limit 1 KiB).
    Oversized,
    /// The hello sent in pieces with pauses longer than `hello_timeout` (500 ms in these tests).
    Stalled,
}

impl Unknown {
    fn client(self) -> (Client, Option<Pace>) {
        match self {
            Unknown::Oversized => (Client::Large, None),
            Unknown::Stalled => (Client::Aes128Only, Some(Pace { piece: 160, pause: Duration::from_millis(700) })),
        }
    }
}

async fn send_as(scene: &Scene, how: Unknown, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let (client, pace) = how.client();
    let connected = connect(&scene.running.target(), client, pace).await.unwrap();
    send(connected, build("POST", path, headers, body)).await
}

#[tokio::test]
async fn an_unknown_fingerprint_never_passes_a_binding() {
    for backend in BACKENDS {
        let Some(scene) = Scene::start(backend, |c| c.server.max_hello_size = 1024).await else { continue };
        for how in [Unknown::Oversized, Unknown::Stalled] {
            let case = format!("{backend:?} {how:?}");
            let mark = scene.mark();
            let cookie = format!("session={}", scene.cookie);
            let login = send_as(&scene, how, "/login", &[FORM, ("cookie", &cookie)], "").await;
            assert_eq!(login.status, 200, "{case}");
            scene.assert_stolen_session_challenged(mark, &case);
            let seen = scene.seen_since(mark);
            assert_eq!(seen[0].header("helloguard-decision-reason"), Some("fingerprint_unknown"), "{case}");
            assert_eq!(seen[0].header("helloguard-ja4-stable"), None, "{case}: no fingerprint was captured");

            let body = format!("grant_type=refresh_token&refresh_token={}", scene.token);
            let refresh = send_as(&scene, how, "/oauth/token", &[FORM], &body).await;
            assert_eq!(refresh.status, 403, "{case}: {}", refresh.json);
            assert_eq!(refresh.json["error"], "mfa_required");
            scene.assert_token_not_exchanged(&refresh, &case);
        }
        let reasons = scene.running.events.reasons();
        assert!(reasons.iter().filter(|r| *r == "fingerprint_unknown").count() >= 4, "{backend:?} {reasons:?}");
    }
}

#[tokio::test]
async fn an_unbound_record_met_without_a_fingerprint_is_allowed_and_stays_unbound() {
    let Some(scene) = Scene::start(super::Backend::Memory, |c| c.server.max_hello_size = 1024).await else { return };
    // A token issued on a connection without a fingerprint is recorded unbound.
    let issued = send_as(&scene, Unknown::Oversized, "/oauth/token", &[FORM], "grant_type=password&username=bob").await;
    let token = issued.json["refresh_token"].as_str().unwrap().to_owned();
    let body = format!("grant_type=refresh_token&refresh_token={token}");
    let again = send_as(&scene, Unknown::Oversized, "/oauth/token", &[FORM], &body).await;
    assert_eq!(again.status, 200, "{}", again.json);
    let decisions = scene.running.events.named("decision");
    let last = decisions.iter().rev().find(|e| e["route"] == "refresh" && e["reason"] != "rotation").unwrap();
    assert_eq!((last["decision"].as_str(), last["reason"].as_str()), (Some("allow"), Some("fingerprint_unknown")));
}
