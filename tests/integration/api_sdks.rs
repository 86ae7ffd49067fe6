//! The official Auth0 SDKs, unchanged, against `helloguard serve`: `tests/sdk/run.sh` drives every
//! sessions and refresh-token call of auth0-python (sync and async clients) and of the npm `auth0`
//! package (its ManagementClient and its legacy client), asserting results and typed errors.
//!
//! The SDKs come from outside the crate: `HELLOGUARD_SDK_PYTHON` (a python with auth0-python) and
//! `HELLOGUARD_SDK_NODE_MODULES` (a folder with `auth0`), which `.ci/run` installs and sets.
//! Without them the test is skipped with a note, unless `HELLOGUARD_REQUIRE_SDKS=1`.

use std::process::Command;

use crate::common;

#[test]
fn every_sdk_call_works_against_serve() {
    let vars = ["HELLOGUARD_SDK_PYTHON", "HELLOGUARD_SDK_NODE_MODULES"];
    if vars.iter().any(|v| std::env::var_os(v).is_none()) {
        return common::skip_unless_required(
            "HELLOGUARD_REQUIRE_SDKS",
            "the Auth0 SDKs are not installed (see .ci/run)",
        );
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/run.sh");
    let output =
        Command::new("bash").arg(script).env("HELLOGUARD_BIN", env!("CARGO_BIN_EXE_helloguard")).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(!stdout.contains("FAIL"), "{stdout}");
}
