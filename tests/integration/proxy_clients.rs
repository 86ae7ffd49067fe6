//! The proxy driven by real, non-Rust clients installed on the machine (`.ci/run` installs them):
//! curl over HTTP/1.1 and HTTP/2, `openssl s_client` with a resumed TLS 1.3 session, and Python's
//! `ssl`. Assertions are on the fingerprints the demo upstream echoes and on the decisions.
use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::proxy::{start, Running};
use serde_json::Value;

fn url(running: &Running, path: &str) -> String {
    format!("https://localhost:{}{path}", running.addr.port())
}

/// Run curl against the proxy (the self-signed certificate is trusted by pinning the file).
fn curl(running: &Running, args: &[&str]) -> (Value, String) {
    let ca = ca_file(running);
    let resolve = format!("localhost:{}:127.0.0.1", running.addr.port());
    let output = Command::new("curl")
        .args(["-s", "-D", "-", "--cacert", ca.to_str().unwrap(), "--resolve", &resolve])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (serde_json::from_str(body).unwrap_or(Value::Null), head.to_owned())
}

fn pem_of(running: &Running) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(running.root.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// The `name=value` of the first Set-Cookie in a response head.
fn set_cookie(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// One HTTP/1.1 request through `openssl s_client`; `session` is written (first) or read (resume).
fn openssl_request(running: &Running, request: &str, session: &std::path::Path, resume: bool) -> (String, bool) {
    let connect = format!("127.0.0.1:{}", running.addr.port());
    let session = session.to_str().unwrap();
    let mut command = Command::new("openssl");
    command.args(["s_client", "-connect", &connect, "-servername", "localhost", "-tls1_3", "-ign_eof"]);
    command.args(if resume { ["-sess_in", session] } else { ["-sess_out", session] });
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed");
    child.stdin.take().unwrap().write_all(request.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let reused = text.contains("Reused, TLSv1.3");
    (text, reused)
}

fn echo_in(text: &str) -> Value {
    let start = text.find("{\"helloguard\"").or_else(|| text.find("{\"challenge\"")).expect("a JSON echo");
    serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>().next().unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_http1_and_http2_see_their_own_fingerprint_and_forged_headers_are_dropped() {
    let running = start(|_| {}).await;
    for version in ["--http1.1", "--http2"] {
        let (echo, head) = tokio::task::block_in_place(|| {
            curl(
                &running,
                &[
                    version,
                    "-H",
                    "helloguard-ja4: forged",
                    "-H",
                    "CloudFront-Viewer-JA4-Fingerprint: forged",
                    &url(&running, "/whoami"),
                ],
            )
        });
        let expected_version = if version == "--http2" { "HTTP/2" } else { "HTTP/1.1" };
        assert!(head.starts_with(expected_version), "{head}");
        let ja4 = echo["ja4"].as_str().unwrap();
        assert!(ja4.starts_with("t13d") && ja4 != "forged", "{echo}");
        assert_eq!(ja4.len(), 36);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_resumption_keeps_ja4_stable_and_is_not_challenged() {
    let running = start(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let session_file = dir.path().join("session.pem");
    let login = "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: 13\r\nConnection: close\r\n\r\nusername=dave";
    let (first, reused) = tokio::task::block_in_place(|| openssl_request(&running, login, &session_file, false));
    assert!(!reused);
    let cookie = set_cookie(&first);
    let fresh = echo_in(&first)["helloguard"].clone();

    let again = login.replace("Connection: close", &format!("Cookie: {cookie}\r\nConnection: close"));
    let (resumed_text, reused) = tokio::task::block_in_place(|| openssl_request(&running, &again, &session_file, true));
    assert!(reused, "the second connection resumed the TLS 1.3 session");
    let resumed = echo_in(&resumed_text)["helloguard"].clone();
    assert_ne!(resumed["ja4"], fresh["ja4"], "pre_shared_key changes the public JA4");
    assert_ne!(resumed["ja3"], fresh["ja3"]);
    assert_eq!(resumed["ja4_stable"], fresh["ja4_stable"], "the binding key does not change");
    assert_eq!(resumed["decision"], "allow", "{resumed}");
    assert_eq!(resumed["reason"], "fingerprint_match");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cookie_from_python_used_by_curl_is_challenged() {
    let running = start(|_| {}).await;
    let script = r#"
import http.client, ssl, sys, json
ctx = ssl.create_default_context(cafile=sys.argv[2])
c = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx)
c.request("POST", "/login", body="username=erin", headers={"Content-Type": "application/x-www-form-urlencoded"})
r = c.getresponse()
print(json.dumps({"cookie": r.getheader("Set-Cookie").split(";")[0], "echo": json.loads(r.read())}))
"#;
    let ca = ca_file(&running);
    let output = tokio::task::block_in_place(|| {
        Command::new("python3")
            .args(["-c", script, &running.addr.port().to_string(), ca.to_str().unwrap()])
            .output()
            .expect("python3 is installed")
    });
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let python: Value = serde_json::from_slice(&output.stdout).unwrap();
    let cookie = python["cookie"].as_str().unwrap().to_owned();
    let (_, head) = tokio::task::block_in_place(|| {
        curl(
            &running,
            &["-X", "POST", "-d", "username=erin", "-H", &format!("Cookie: {cookie}"), &url(&running, "/login")],
        )
    });
    // The demo answers a challenged login with its one-time-password page.
    assert!(head.starts_with("HTTP/2 401"), "{head}");
    let decisions = running.events.named("decision");
    let challenge = decisions.iter().find(|e| e["decision"] == "challenge").expect("a challenge");
    assert_ne!(challenge["observed"]["ja4_stable"], python["echo"]["helloguard"]["ja4_stable"]);
    assert_eq!(challenge["reason"], "fingerprint_mismatch");
    assert_eq!(challenge["challenge"]["type"], "otp");
    assert_eq!(challenge["additional_factors"], serde_json::json!([{"type": "push-notification"}, {"type": "phone"}]));
}

/// The proxy's self-signed certificate as a PEM file the clients trust.
fn ca_file(running: &Running) -> std::path::PathBuf {
    let ca = std::env::temp_dir().join(format!("helloguard-ca-{}.pem", running.addr.port()));
    std::fs::write(&ca, pem_of(running)).unwrap();
    ca
}
