//! Actions from the command line, as a user runs them: `helloguard actions test` on an event
//! file, `check-config` naming a syntax error's file:line:column, and `serve` refusing to start
//! on one (exit status 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn helloguard(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_helloguard")).args(args).current_dir(dir).output().unwrap()
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/actions").join(name).display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout_json(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text} / {}", String::from_utf8_lossy(&output.stderr)))
}

/// A refresh exchange's event, in the shape the proxy builds.
fn refresh_event(stored: Value, observed: &str) -> Value {
    json!({
        "request": {"ip": "203.0.113.7", "method": "POST", "query": {}, "body": {"grant_type": "refresh_token"}},
        "security_context": {"ja3": "0cce74b0d9b7f8528fb2181588d23793", "ja4": observed, "ja4_stable": observed},
        "refresh_token": {"id": "rt_1", "metadata": stored, "session_id": "ses_1", "client_id": "web"},
        "user": {"user_id": "auth0|alice"},
        "client": {"client_id": "web"},
        "transaction": {"requested_scopes": ["openid"], "protocol": "oauth2-refresh-token"},
        "secrets": {}
    })
}

#[test]
fn actions_test_prints_the_decision_the_writes_and_the_claims() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    // The adaptive example on a refresh whose fingerprint changed: a challenge with its factors.
    let changed = write(
        path,
        "changed.json",
        &refresh_event(json!({"aa_ja4_stable": "t13d1516h2_old"}), "t13d1516h2_new").to_string(),
    );
    let output = helloguard(&["actions", "test", &example("adaptive.js"), "--event", changed.to_str().unwrap()], path);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = stdout_json(&output);
    assert_eq!(report["decision"], "challenge");
    assert_eq!(report["reason"], "action_challenge");
    assert_eq!(report["challenge"], json!({"type": "otp"}));
    assert_eq!(report["additional_factors"], json!([{"type": "push-notification"}, {"type": "phone"}]));
    assert_eq!(report["error"], Value::Null);

    // The first refresh of a chain: the persistent claims example writes and claims.
    let first = write(path, "first.json", &refresh_event(json!({}), "t13d1516h2_new").to_string());
    let output =
        helloguard(&["actions", "test", &example("persistent_claims.js"), "--event", first.to_str().unwrap()], path);
    let report = stdout_json(&output);
    assert_eq!(report["decision"], "allow");
    let written = &report["refresh_token_metadata"];
    assert_eq!(written["plan"], "basic", "{report}");
    assert_eq!(report["claims"]["id_token"]["https://example.com/first_login"], written["first_login"]);
    assert!(report.get("session_metadata").is_none(), "no session writes: {report}");

    // A throwing Action: `error` names the file, the decision is on_error's, exit status 1.
    let throws = write(
        path,
        "throws.js",
        "exports.onExecutePostLogin = async (event) => { console.log('seen', event.user.user_id); null.x; };",
    );
    let output = helloguard(&["actions", "test", throws.to_str().unwrap(), "--event", first.to_str().unwrap()], path);
    assert_eq!(output.status.code(), Some(1));
    let report = stdout_json(&output);
    assert_eq!((report["decision"].as_str(), report["reason"].as_str()), (Some("challenge"), Some("action_error")));
    assert!(report["error"].as_str().unwrap().starts_with(throws.to_str().unwrap()), "{report}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("console.info: seen auth0|alice"), "{stderr}");

    // An invalid write: the reference's message.
    let invalid = write(
        path,
        "invalid.js",
        "exports.onExecutePostLogin = async (e, api) => { api.refreshToken.setMetadata('n', 7); };",
    );
    let output = helloguard(&["actions", "test", invalid.to_str().unwrap(), "--event", first.to_str().unwrap()], path);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout_json(&output)["error"],
        "Failed to set refresh token metadata: Invalid metadata: Metadata value must be a string"
    );
}

#[test]
fn a_syntax_error_is_named_by_check_config_and_stops_serve() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    write(path, "broken.js", "exports.onExecutePostLogin = async (event, api) => {\n  if (event.user {\n  }\n};\n");
    let config = write(
        path,
        "helloguard.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"off\"\n[actions]\npost_login = [\"broken.js\"]\n",
    );
    // Paths are relative to the config file's directory, not the working directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let checked = helloguard(&["check-config", config.to_str().unwrap()], elsewhere.path());
    assert_eq!(checked.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&checked.stderr);
    let place = format!("{}:2:", path.join("broken.js").display());
    assert!(stderr.contains(&place), "{stderr}");
    assert!(stderr.contains("SyntaxError"), "{stderr}");

    let data = path.join("data");
    let served = helloguard(
        &["serve", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()],
        elsewhere.path(),
    );
    assert_eq!(served.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&served.stderr).contains(&place), "{}", String::from_utf8_lossy(&served.stderr));

    // Fixed: check-config passes.
    write(path, "broken.js", "exports.onExecutePostLogin = async (event, api) => {};\n");
    let checked = helloguard(&["check-config", config.to_str().unwrap()], elsewhere.path());
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
}
