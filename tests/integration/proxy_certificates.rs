//! Certificates per SNI name from PEM files, reloaded without a restart: by polling the files
//! (in process) and on SIGHUP (the real binary). A broken replacement keeps the old certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common;

use common::binary::Served;
use common::client::{connect, Client, Target};
use common::proxy::start;
use helloguard::config::{CertificateConfig, ConfigDuration};
use rustls::pki_types::CertificateDer;

/// A bound for a hung test, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(20);

/// A self-signed certificate for `names`, written as `<stem>.pem` / `<stem>.key` in `dir` (via a
/// rename, as an operator replaces files). Returns its DER.
fn write_pair(dir: &Path, stem: &str, names: &[&str]) -> CertificateDer<'static> {
    let generated =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    replace(&dir.join(format!("{stem}.key")), generated.signing_key.serialize_pem().as_bytes());
    replace(&dir.join(format!("{stem}.pem")), generated.cert.pem().as_bytes());
    generated.cert.der().clone()
}

fn replace(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn paths(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")))
}

/// The leaf certificate the server presents for `server_name`.
async fn served(
    addr: std::net::SocketAddr,
    roots: &[CertificateDer<'static>],
    server_name: &str,
) -> CertificateDer<'static> {
    let target = Target { addr, roots, server_name };
    let connected = connect(&target, Client::Default, None).await.unwrap();
    connected.tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

async fn until_served(
    addr: std::net::SocketAddr,
    roots: &[CertificateDer<'static>],
    name: &str,
    want: &CertificateDer<'static>,
) {
    tokio::time::timeout(LIMIT, async {
        while served(addr, roots, name).await != *want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never served the replaced certificate"));
}

#[tokio::test]
async fn each_name_gets_its_certificate_and_changed_files_are_reloaded() {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    let default = write_pair(dir, "default", &["default.example", "127.0.0.1"]);
    let a = write_pair(dir, "a", &["a.example"]);
    let b = write_pair(dir, "b", &["b.example", "api.b.example"]);
    let running = start(|c| {
        let (cert, key) = paths(dir, "default");
        (c.tls.cert, c.tls.key) = (Some(cert), Some(key));
        let pair = |stem: &str, names: &[&str]| {
            let (cert, key) = paths(dir, stem);
            CertificateConfig { server_names: names.iter().map(|n| n.to_string()).collect(), cert, key }
        };
        c.tls.certificates = vec![pair("a", &["a.example"]), pair("b", &["*.b.example", "b.example"])];
        c.tls.reload_interval = ConfigDuration(Duration::from_millis(100));
    })
    .await;
    let mut roots = vec![default.clone(), a.clone(), b.clone()];
    assert_eq!(served(running.addr, &roots, "a.example").await, a);
    assert_eq!(served(running.addr, &roots, "B.example").await, b, "names match case-insensitively");
    assert_eq!(served(running.addr, &roots, "api.b.example").await, b, "a wildcard matches one label");
    assert_eq!(served(running.addr, &roots, "127.0.0.1").await, default, "no SNI: the default");

    let replaced = write_pair(dir, "a", &["a.example"]);
    roots.push(replaced.clone());
    until_served(running.addr, &roots, "a.example", &replaced).await;
    assert!(running.metric("helloguard_certificate_reloads_total").await >= 1.0);

    // A broken replacement: logged and counted, the previous certificate stays in service.
    replace(&dir.join("a.pem"), b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    tokio::time::timeout(LIMIT, async {
        while running.metric("helloguard_certificate_reload_failures_total").await < 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the broken file was noticed");
    assert_eq!(served(running.addr, &roots, "a.example").await, replaced);
    // A key that does not match the certificate is refused too.
    let other = rcgen::generate_simple_self_signed(vec!["a.example".to_owned()]).unwrap();
    replace(&dir.join("a.key"), other.signing_key.serialize_pem().as_bytes());
    replace(&dir.join("a.pem"), &std::fs::read(dir.join("b.pem")).unwrap());
    tokio::time::timeout(LIMIT, async {
        while running.metric("helloguard_certificate_reload_failures_total").await < 2.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the mismatched pair was noticed");
    assert_eq!(served(running.addr, &roots, "a.example").await, replaced);
    assert_eq!(served(running.addr, &roots, "b.example").await, b);
}

#[tokio::test]
async fn sighup_reloads_the_real_process() {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    let first = write_pair(dir, "site", &["localhost"]);
    let (cert, key) = paths(dir, "site");
    let config = format!("[tls]\ncert = {:?}\nkey = {:?}\nreload_interval = \"1h\"\n", cert, key);
    let served_process = Served::start(&config);
    let mut roots = vec![first.clone()];
    assert_eq!(served(served_process.addr, &roots, "localhost").await, first);
    let second = write_pair(dir, "site", &["localhost"]);
    roots.push(second.clone());
    let status = std::process::Command::new("kill").args(["-HUP", &served_process.child.id().to_string()]).status();
    assert!(status.unwrap().success());
    until_served(served_process.addr, &roots, "localhost", &second).await;
}
