//! Login and Management API paths spelled the way frameworks route them: `/LOGIN`, `/login/`,
//! `/%6Cogin`. helloguard matches routes on the same normal form, so each is the login route (and
//! the stolen cookie is challenged), and `/API/V2/…` is never forwarded with its bearer token.

use super::{Scene, THIEF};
use crate::common::client::{request, FORM};

#[tokio::test]
async fn every_spelling_of_the_login_route_is_decided() {
    let Some(scene) = Scene::start(super::Backend::Memory, |_| {}).await else { return };
    let cookie = format!("session={}", scene.cookie);
    for path in ["/login/", "/LOGIN", "/%6Cogin", "//login", "/x/../login", "/Login//"] {
        let mark = scene.mark();
        request(&scene.running, THIEF, "POST", path, &[FORM, ("cookie", &cookie)], "").await;
        let seen = scene.seen_since(mark);
        assert_eq!(seen.len(), 1, "{path}");
        assert_eq!(seen[0].route, "login", "{path}: the service routes it to its login");
        scene.assert_stolen_session_challenged(mark, path);
    }
}

#[tokio::test]
async fn management_api_paths_in_any_spelling_are_never_forwarded() {
    let Some(scene) = Scene::start(super::Backend::Memory, |_| {}).await else { return };
    for path in
        ["/API/V2/sessions/ses_x", "/api//v2/sessions/ses_x", "/api/v2/../v2/sessions/ses_x", "/%61pi/v2/sessions"]
    {
        let mark = scene.mark();
        let answer =
            request(&scene.running, THIEF, "GET", path, &[("authorization", "Bearer secret-for-the-api")], "").await;
        assert!(scene.seen_since(mark).is_empty(), "{path} reached the service");
        assert!(matches!(answer.status, 401 | 404), "{path}: {}", answer.status);
    }
    let mark = scene.mark();
    request(&scene.running, THIEF, "GET", "/.WELL-KNOWN/jwks.json/", &[], "").await;
    assert!(scene.seen_since(mark).is_empty(), "the JWKS path is helloguard's in any spelling");
}
