//! A stolen session cookie written so that helloguard and the service might read it differently.
//! helloguard decides on the first session cookie and forwards only that one, unquoted, in one
//! `Cookie` header; a cookie hidden behind a comma is refused.

use super::{Scene, BACKENDS, OWNER, THIEF};
use crate::common::client::{build, connect_h2, request};
use http_body_util::BodyExt;

#[tokio::test]
async fn a_stolen_cookie_in_any_spelling_is_challenged() {
    for backend in BACKENDS {
        let Some(scene) = Scene::start(backend, |_| {}).await else { continue };
        let stolen = scene.cookie.clone();
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("duplicate, last wins upstream", vec![format!("session=junk; session={stolen}")]),
            ("split over two fields", vec!["session=junk".into(), format!("session={stolen}")]),
            ("quoted", vec![format!("session=\"{stolen}\"")]),
            ("space before =", vec![format!("session ={stolen}")]),
            ("other case", vec![format!("Session={stolen}")]),
            ("percent-encoded name", vec![format!("sess%69on={stolen}; session=junk")]),
            ("plain", vec![format!("session={stolen}")]),
        ];
        for (case, fields) in cases {
            let mark = scene.mark();
            let headers: Vec<(&str, &str)> = fields.iter().map(|f| ("cookie", f.as_str())).collect();
            let seen = scene.login(THIEF, &headers).await;
            scene.assert_stolen_session_challenged(mark, &format!("{backend:?} {case}"));
            // The service got one reading: one Cookie value, the one helloguard decided on.
            assert!(seen.session_cookie.is_some(), "{backend:?} {case}: {seen:?}");
        }
        // The owner, with the same spellings, is never challenged.
        let seen = scene.login(OWNER, &[("cookie", &format!("session=\"{stolen}\""))]).await;
        assert_eq!(seen.header("helloguard-decision"), Some("allow"), "{backend:?}");
    }
}

#[tokio::test]
async fn a_session_cookie_behind_a_comma_is_refused() {
    let Some(scene) = Scene::start(super::Backend::Memory, |_| {}).await else { return };
    for field in [format!("a=1,session={}", scene.cookie), format!("session=junk, session={}", scene.cookie)] {
        let mark = scene.mark();
        let answer = request(&scene.running, THIEF, "POST", "/login", &[("cookie", &field)], "").await;
        assert_eq!(answer.status, 400, "{field}: {}", answer.json);
        assert_eq!(answer.json["error"], "invalid_request");
        assert!(scene.seen_since(mark).is_empty(), "{field}: the service was reached");
    }
}

#[tokio::test]
async fn http2_split_cookie_fields_are_read_and_joined() {
    let Some(scene) = Scene::start(super::Backend::Memory, |_| {}).await else { return };
    let mut sender = connect_h2(&scene.running.target(), THIEF).await.unwrap();
    let mark = scene.mark();
    let mut request = build("POST", "https://localhost/login", &[("cookie", "session=junk")], "");
    request.headers_mut().append("cookie", format!("session={}", scene.cookie).parse().unwrap());
    request.headers_mut().append("cookie", "theme=dark".parse().unwrap());
    request.headers_mut().remove("host");
    let response = sender.send_request(request).await.unwrap();
    let _ = response.into_body().collect().await;
    scene.assert_stolen_session_challenged(mark, "h2 split fields");
    let seen = scene.seen_since(mark);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].session_cookie.as_deref(), Some("junk"), "decided on the first, forwarded only that");
}

#[tokio::test]
async fn a_deleted_sessions_cookie_never_reaches_the_service_in_a_duplicate() {
    for backend in BACKENDS {
        let Some(scene) = Scene::start(backend, |_| {}).await else { continue };
        let id = helloguard::session::session_id(&scene.cookie);
        scene
            .running
            .shared
            .sessions
            .end_current(&id, helloguard::logout::Initiator::SessionRevoked, helloguard::session::Timestamp::now())
            .await
            .unwrap();
        for field in
            [format!("session=junk; session={}", scene.cookie), format!("session={}; session=junk", scene.cookie)]
        {
            let mark = scene.mark();
            request(&scene.running, OWNER, "GET", "/account", &[("cookie", &field)], "").await;
            for seen in scene.seen_since(mark) {
                assert_ne!(
                    seen.session_cookie.as_deref(),
                    Some(scene.cookie.as_str()),
                    "{backend:?} {field}: {seen:?}"
                );
            }
        }
    }
}
