//! `[api] listen`: the API on its own listener (plain HTTP on loopback, or TLS with the proxy's
//! certificate), and `/api/v2/` on the proxy listener then forwarded upstream like any path.
use crate::common;

use common::api::{call, Keys, Target};
use common::proxy::start;

#[tokio::test]
async fn separate_plain_listener_and_proxy_path_goes_upstream() {
    let keys = Keys::generate();
    let running = start(|c| {
        keys.configure(c);
        c.api.listen = Some("127.0.0.1:0".into());
        c.api.plain_http = true;
    })
    .await;
    let api = Target::Plain { addr: running.api_addr.expect("the API listener is bound") };
    let token = keys.token("read:sessions");
    let answer = call(&api, "GET", "/api/v2/sessions/ses_x", Some(&token), &[], "").await;
    assert_eq!(answer.error(404, "inexistent_session"), "The session does not exist.");
    let answer = call(&api, "GET", "/api/v2/openapi.json", None, &[], "").await;
    assert_eq!(answer.json["openapi"], "3.1.0");
    let answer = call(&api, "GET", "/whoami", None, &[], "").await;
    assert_eq!(answer.error(404, "not_found"), "Not Found", "only the API lives here");

    // On the proxy listener the same path is now upstream traffic: the demo's JSON echo.
    let proxied = call(&Target::proxy(&running), "GET", "/api/v2/sessions/ses_x", Some(&token), &[], "").await;
    assert_eq!(proxied.status, 200);
    assert!(proxied.json.get("ja4_stable").is_some(), "the demo upstream answered: {}", proxied.json);
}

#[tokio::test]
async fn separate_tls_listener_uses_the_proxy_certificate() {
    let keys = Keys::generate();
    let running = start(|c| {
        keys.configure(c);
        c.api.listen = Some("127.0.0.1:0".into());
    })
    .await;
    let api = Target::Tls { addr: running.api_addr.unwrap(), root: running.root.clone() };
    let answer = call(&api, "GET", "/api/v2/users/u/sessions", Some(&keys.token("read:sessions")), &[], "").await;
    assert_eq!((answer.status, answer.json["sessions"].as_array().map(Vec::len)), (200, Some(0)));
    let answer = call(&api, "GET", "/api/v2/users/u/sessions", None, &[], "").await;
    assert_eq!(answer.error(401, "missing_authentication"), "Missing authentication");
}
