//! The Management API conforms to its own OpenAPI document: schemathesis (installed by `.ci/run`
//! into a virtualenv on PATH) runs against the in-process proxy over real TLS, with a token
//! holding every scope and the records the document's examples name, for a bounded number of
//! examples per operation. Any failed check fails this test.
//!
//! Without the `schemathesis` command the test is skipped with a note, unless
//! `HELLOGUARD_REQUIRE_SCHEMATHESIS=1` (set by `.ci/run`), which makes it fail instead.
//!
//! The stateful phase follows the document's links from each listing to GET, PATCH and DELETE of
//! the first record listed.
//!
//! Excluded checks: `unsupported_method` expects `405` for a method a path does not define, but
//! the contract answers every unmatched route `404 not_found` (CONTRACT §6.1).
//!
//! One worker: schemathesis's workers are threads, and CPython 3.11's `ast` module keeps its
//! recursion-depth counter per interpreter, so two threads parsing at once can fail with
//! "AST constructor recursion depth mismatch" inside schemathesis itself (seen in CI).
//!
//! The `from` query parameter is an opaque cursor that no JSON Schema can describe exactly (the
//! base64url of `<created_at>:<id>`), so an arbitrary string is not a valid one; schemathesis
//! gets a real cursor for it (`MDo`, the encoding of `0:`, which lists from the start) instead of
//! inventing strings that the document itself says are answered 400.
use crate::common;

use std::process::Command;

use common::api::{seed_session, seed_token, Keys, ALL_SCOPES};
use common::proxy::start;

fn schemathesis_available() -> bool {
    let found = Command::new("schemathesis").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        common::skip_unless_required(
            "HELLOGUARD_REQUIRE_SCHEMATHESIS",
            "schemathesis is not on PATH (pip install schemathesis)",
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_conforms_to_its_openapi_document() {
    if !schemathesis_available() {
        return;
    }
    let keys = Keys::generate();
    let running = start(|c| {
        keys.configure(c);
        c.api.rate_limit_burst = 1_000_000;
    })
    .await;
    // The records the document's examples name, and a few more of the same user.
    let store = &running.store;
    seed_session(store, "ses_qHUAEMOrTA5p-g48PO5RlC8zkr8X2gwc", Some("auth0|5f7c8ec7c33c6c004bbafe82"), 0).await;
    seed_token(store, "rt_aueGY1vPE3Zghkqr8XYhqwCGa82wUAuR", Some("auth0|5f7c8ec7c33c6c004bbafe82"), None, 0).await;
    for i in 0..3 {
        seed_session(store, &format!("ses_more{i}"), Some("auth0|5f7c8ec7c33c6c004bbafe82"), i * 10).await;
        seed_token(store, &format!("rt_more{i}"), Some("auth0|5f7c8ec7c33c6c004bbafe82"), None, i * 10).await;
    }
    let url = format!("https://127.0.0.1:{}/api/v2/openapi.json", running.addr.port());
    let authorization = format!("Authorization: Bearer {}", keys.token(ALL_SCOPES));
    let report = tempfile::tempdir().unwrap();
    let config = report.path().join("schemathesis.toml");
    std::fs::write(&config, "[parameters]\n\"query.from\" = \"MDo\"\n").unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("schemathesis")
            .args(["--config-file", config.to_str().unwrap()])
            .args(["run", &url, "--tls-verify", "false", "-H", &authorization])
            .args(["--checks", "all", "--exclude-checks", "unsupported_method"])
            .args(["--max-examples", "20", "--seed", "20250115", "--phases", "examples,coverage,fuzzing,stateful"])
            .args(["--workers", "1", "--request-timeout", "10", "--no-color"])
            .current_dir(report.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "schemathesis failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
}

/// The document's PATCH map schema says what the server does: for each map, the document's
/// verdict (`jsonschema_rs`, the validator schemathesis itself uses, against `MetadataPatch`) equals the
/// server's (200 or 400). `null` entries are dropped before the rules apply, under any key.
/// (The 25-entry limit on non-null values is prose in the document: JSON Schema cannot count only
/// non-null members, so no case here has more than 25.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patch_schema_agrees_with_the_server() {
    if !schemathesis_available() {
        return;
    }
    let python = which_python_of_schemathesis();
    let keys = Keys::generate();
    let running = start(|c| keys.configure(c)).await;
    seed_session(&running.store, "ses_patch_schema", None, 0).await;
    let nulls: serde_json::Map<String, serde_json::Value> =
        (0..30).map(|i| (format!("gone key {i}"), serde_json::Value::Null)).collect();
    let mut many_nulls = nulls.clone();
    many_nulls.insert("kept".into(), "v".into());
    let cases = [
        serde_json::json!({"bad key": null}),
        serde_json::json!({"ok_key": "v", "bad key": null, "é": null}),
        serde_json::Value::Object(many_nulls),
        serde_json::json!({}),
        serde_json::json!({"bad key": "v"}),
        serde_json::json!({"k": 1}),
        serde_json::json!({"k": "x".repeat(256)}),
        serde_json::json!({"k": "a\u{0}b"}),
    ];
    let schema = {
        let document: serde_json::Value = serde_json::from_str(helloguard::api::OPENAPI_JSON).unwrap();
        document["components"]["schemas"]["MetadataPatch"].clone()
    };
    let script = "import json, sys, jsonschema_rs\n\
                  schema, cases = json.loads(sys.argv[1]), json.loads(sys.argv[2])\n\
                  validator = jsonschema_rs.Draft202012Validator(schema)\n\
                  print(json.dumps([validator.is_valid(c) for c in cases]))\n";
    let output = Command::new(&python)
        .args(["-c", script, &schema.to_string(), &serde_json::Value::Array(cases.to_vec()).to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let verdicts: Vec<bool> = serde_json::from_slice(&output.stdout).unwrap();
    let target = common::api::Target::proxy(&running);
    let token = keys.token(ALL_SCOPES);
    for (case, valid) in cases.iter().zip(verdicts) {
        let body = serde_json::json!({ "session_metadata": case }).to_string();
        let answer =
            common::api::call(&target, "PATCH", "/api/v2/sessions/ses_patch_schema", Some(&token), &[], &body).await;
        assert_eq!(
            answer.status,
            if valid { 200 } else { 400 },
            "document says valid={valid} for {case}: {}",
            answer.json
        );
    }
}

/// The Python interpreter of the virtualenv `schemathesis` runs from (it has `jsonschema_rs`).
fn which_python_of_schemathesis() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let bin =
        std::env::split_paths(&path).find(|dir| dir.join("schemathesis").is_file()).expect("schemathesis on PATH");
    bin.join("python3")
}
