//! `helloguard check-config` on back-channel logout settings, as a user runs it: errors name the
//! key path and exit 2; the deprecated `oidc_backchannel_logout` is accepted with a warning; the
//! key file is checked against `[logout] alg`.

use std::path::Path;
use std::process::{Command, Output};

use rsa::pkcs8::{EncodePrivateKey, LineEnding};

fn check(dir: &Path, toml: &str) -> Output {
    let file = dir.join("helloguard.toml");
    std::fs::write(&file, toml).unwrap();
    Command::new(env!("CARGO_BIN_EXE_helloguard")).arg("check-config").arg(&file).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const CLIENT: &str = r#"
[[clients]]
client_id = "web"
[clients.SECTION]
backchannel_logout_urls = ["https://rp.example/bcl"]
"#;

#[test]
fn the_deprecated_alias_passes_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[logout]\nissuer = \"https://idp.example/\"\n{}",
        CLIENT.replace("SECTION", "oidc_backchannel_logout")
    );
    let output = check(dir.path(), &toml);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "warning: clients[0].oidc_backchannel_logout is deprecated; rename it to clients[0].oidc_logout\n"
    );
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(": ok\n"));
    let current = check(dir.path(), &toml.replace("oidc_backchannel_logout", "oidc_logout"));
    assert!(current.status.success());
    assert_eq!(stderr(&current), "", "no warning for oidc_logout");
}

#[test]
fn a_missing_issuer_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = check(dir.path(), &CLIENT.replace("SECTION", "oidc_logout"));
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "helloguard: logout.issuer: required when a client has oidc_logout (clients[0].oidc_logout)\n"
    );
}

#[test]
fn rs256_keys_below_2048_bits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write_key = |bits: usize| {
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap();
        let path = dir.path().join(format!("rsa{bits}.pem"));
        std::fs::write(&path, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        path
    };
    let small = write_key(1024);
    let output = check(dir.path(), &format!("[logout]\nalg = \"RS256\"\nkey_file = \"{}\"\n", small.display()));
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "helloguard: logout.key_file: {}: the RSA key has 1024 bits; RS256 needs at least 2048\n",
            small.display()
        )
    );
    let large = write_key(2048);
    let output = check(dir.path(), &format!("[logout]\nalg = \"RS256\"\nkey_file = \"{}\"\n", large.display()));
    assert!(output.status.success(), "{}", stderr(&output));
    // An RSA key where ES256 is configured is named as such.
    let output = check(dir.path(), &format!("[logout]\nkey_file = \"{}\"\n", large.display()));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not a P-256 private key"), "{}", stderr(&output));
}

#[test]
fn an_unreadable_ca_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let output = check(dir.path(), &format!("[logout]\nca_file = \"{}\"\n", empty.display()));
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!("helloguard: logout.ca_file: {}: no certificate found in the PEM file\n", empty.display())
    );
}
