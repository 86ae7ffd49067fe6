//! User ids as upstreams report them (CONTRACT §1): UTF-8 in the header as it is, or
//! percent-encoded with `[session] user_id_encoding = "percent"`; either way the session's
//! `user_id` is the text, and `/users/{user_id}/sessions` finds it.

use crate::common;
use common::api::{call, Keys, Target};
use common::client::{request, Client, FORM};
use common::proxy::start;
use common::upstream::{full, origin, serve};
use helloguard::session::UserIdEncoding;

#[tokio::test]
async fn a_utf8_user_id_is_stored_and_listed() {
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    let login = request(&running, Client::Default, "POST", "/login", &[FORM], "username=%C3%A9lodie").await;
    assert_eq!(login.status, 200);
    let token = keys.token("read:sessions");
    let answer =
        call(&Target::proxy(&running), "GET", "/api/v2/users/demo%7C%C3%A9lodie/sessions", Some(&token), &[], "").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let sessions = answer.json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["user_id"], "demo|élodie");
}

#[tokio::test]
async fn a_percent_encoded_user_id_is_decoded_when_configured() {
    let upstream = serve(|_request| async {
        let mut response = hyper::Response::new(full("{}"));
        let headers = response.headers_mut();
        headers.insert("set-cookie", "session=pct-cookie; Path=/".parse().unwrap());
        headers.insert("helloguard-user-id", "idp%7C%C3%A9%20x".parse().unwrap());
        response
    })
    .await;
    let keys = Keys::generate();
    let running = start(|c| {
        keys.configure(c);
        c.server.upstream = origin(upstream);
        c.session.user_id_encoding = UserIdEncoding::Percent;
    })
    .await;
    let login = request(&running, Client::Default, "POST", "/login", &[FORM], "").await;
    assert_eq!(login.status, 200);
    assert!(login.headers.get("helloguard-user-id").is_none(), "consumed");
    let id = helloguard::session::session_id("pct-cookie");
    let session = running.store.get_session(&id).await.unwrap().unwrap();
    assert_eq!(session.record.user_id.as_deref(), Some("idp|é x"));
    let token = keys.token("read:sessions");
    let answer =
        call(&Target::proxy(&running), "GET", "/api/v2/users/idp%7C%C3%A9%20x/sessions", Some(&token), &[], "").await;
    assert_eq!(answer.json["sessions"][0]["id"], id.as_str());
}
