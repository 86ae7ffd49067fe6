//! A stolen refresh token in a token request written so that the service might read it
//! differently from helloguard. Each is either decided on (and challenged: `403 mfa_required`) or
//! refused (`400`/`413`) before the service sees it; the service never exchanges the stolen token,
//! and the owner still can.

use std::io::Write;

use super::{Scene, BACKENDS, OWNER, THIEF};
use crate::common::client::{build_bytes, connect, send, Answer, Client, FORM};

const JSON: (&str, &str) = ("content-type", "application/json");

/// A case's name, path, extra headers and body.
type Attempt = (&'static str, String, Vec<(&'static str, String)>, Vec<u8>);
/// Headers, body, and the status and `error_description` expected.
type Refused = (&'static [(&'static str, &'static str)], String, u16, &'static str);

async fn post(scene: &Scene, client: Client, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let connected = connect(&scene.running.target(), client, None).await.unwrap();
    send(connected, build_bytes("POST", path, headers, body)).await
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn a_stolen_refresh_token_in_any_form_is_never_exchanged() {
    for backend in BACKENDS {
        let Some(scene) = Scene::start(backend, |_| {}).await else { continue };
        let t = scene.token.clone();
        let form = format!("grant_type=refresh_token&refresh_token={t}");
        let boundary = "XyZ";
        let multipart = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"refresh_token\"\r\n\r\n{t}\r\n--{boundary}--\r\n"
        );
        let multipart_type = format!("multipart/form-data; boundary={boundary}");
        let padding = "p".repeat(70 * 1024);
        let cases: Vec<Attempt> = vec![
            ("plain", "/oauth/token".into(), vec![], form.clone().into_bytes()),
            (
                "charset=json",
                "/oauth/token".into(),
                vec![("content-type", "application/x-www-form-urlencoded; charset=json".into())],
                form.clone().into_bytes(),
            ),
            (
                "duplicate token",
                "/oauth/token".into(),
                vec![],
                format!("grant_type=refresh_token&refresh_token=junk&refresh_token={t}").into_bytes(),
            ),
            (
                "duplicate grant",
                "/oauth/token".into(),
                vec![],
                format!("grant_type=password&grant_type=refresh_token&refresh_token={t}").into_bytes(),
            ),
            (
                "other case",
                "/oauth/token".into(),
                vec![],
                format!("grant_type=refresh_token&Refresh_Token={t}").into_bytes(),
            ),
            (
                "brackets",
                "/oauth/token".into(),
                vec![],
                format!("grant_type=refresh_token&refresh_token[]={t}").into_bytes(),
            ),
            (
                "in the query",
                format!("/oauth/token?refresh_token={t}"),
                vec![],
                b"grant_type=refresh_token&refresh_token=junk".to_vec(),
            ),
            ("over 64 KiB", "/oauth/token".into(), vec![], format!("{form}&padding={padding}").into_bytes()),
            ("multipart", "/oauth/token".into(), vec![("content-type", multipart_type)], multipart.into_bytes()),
            ("gzip", "/oauth/token".into(), vec![("content-encoding", "gzip".into())], gzip(&form)),
            (
                "json with a BOM",
                "/oauth/token".into(),
                vec![("content-type", JSON.1.into())],
                [
                    b"\xEF\xBB\xBF".as_slice(),
                    format!(r#"{{"grant_type":"refresh_token","refresh_token":"{t}"}}"#).as_bytes(),
                ]
                .concat(),
            ),
            (
                "json duplicate",
                "/oauth/token".into(),
                vec![("content-type", JSON.1.into())],
                format!(r#"{{"grant_type":"refresh_token","refresh_token":"junk","refresh_token":"{t}"}}"#)
                    .into_bytes(),
            ),
            (
                "json array",
                "/oauth/token".into(),
                vec![("content-type", JSON.1.into())],
                format!(r#"{{"grant_type":"refresh_token","refresh_token":["{t}"]}}"#).into_bytes(),
            ),
            ("route with trailing slash", "/oauth/token/".into(), vec![], form.clone().into_bytes()),
            ("route in capitals", "/OAUTH/TOKEN".into(), vec![], form.clone().into_bytes()),
            ("route escaped", "/oauth/%74oken".into(), vec![], form.clone().into_bytes()),
        ];
        for (case, path, extra, body) in cases {
            let mut headers: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            if !headers.iter().any(|(n, _)| *n == "content-type") {
                headers.push(FORM);
            }
            let answer = post(&scene, THIEF, &path, &headers, body).await;
            scene.assert_token_not_exchanged(&answer, &format!("{backend:?} {case}"));
        }
        // The owner's own exchange still works, and the rotated token keeps the binding.
        let own = post(&scene, OWNER, "/oauth/token", &[FORM], form.into_bytes()).await;
        assert_eq!(own.status, 200, "{backend:?}: {}", own.json);
        assert!(scene.upstream.exchanged(&t));
    }
}

#[tokio::test]
async fn refusals_are_the_contracts_answers() {
    let Some(scene) = Scene::start(super::Backend::Memory, |_| {}).await else { return };
    let t = &scene.token;
    let cases: [Refused; 4] = [
        (
            &[("content-type", "text/plain")],
            format!("grant_type=refresh_token&refresh_token={t}"),
            400,
            "Unsupported content type.",
        ),
        (&[FORM, ("content-encoding", "gzip")], "x".into(), 400, "Unsupported content encoding."),
        (
            &[FORM],
            format!("grant_type=refresh_token&refresh_token={t}&refresh_token=x"),
            400,
            "Ambiguous token request.",
        ),
        (&[FORM], "a".repeat(64 * 1024 + 1), 413, "Request body too large."),
    ];
    for (headers, body, status, description) in cases {
        let mark = scene.mark();
        let answer = post(&scene, OWNER, "/oauth/token", headers, body.into_bytes()).await;
        assert_eq!(answer.status, status, "{description}");
        assert_eq!(answer.json, serde_json::json!({"error": "invalid_request", "error_description": description}));
        assert!(scene.seen_since(mark).is_empty(), "{description}: the service was reached");
    }
}

#[tokio::test]
async fn a_revoked_token_in_an_oversized_body_is_refused() {
    let Some(scene) = Scene::start(super::Backend::Memory, |_| {}).await else { return };
    let id = helloguard::session::refresh_token_id(&scene.token);
    let now = helloguard::session::Timestamp::now();
    assert!(scene.running.store.end_refresh_token(&id, now).await.unwrap());
    let body = format!("grant_type=refresh_token&refresh_token={}&padding={}", scene.token, "p".repeat(70 * 1024));
    let answer = post(&scene, OWNER, "/oauth/token", &[FORM], body.into_bytes()).await;
    assert_eq!(answer.status, 413);
    assert!(!scene.upstream.exchanged(&scene.token));
}
