//! Deliveries survive a crash (CONTRACT §8 "Durable outbox"): the real `helloguard serve` binary
//! with the embedded store ends sessions while the RP fails (503), is killed with SIGKILL with
//! deliveries pending, and is restarted against a now healthy RP. Every session's logout token
//! must then be accepted exactly once (counted by `sid`, every `jti` distinct), the signing key
//! must be the same one (same JWKS), and the outbox must end up empty.

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::client::request_at;
use common::logout::{login_at, logout_at, ISSUER};
use common::rp::{Answer, RelyingParty};
use helloguard::session::embedded::EmbeddedStore;
use helloguard::session::{Store, Timestamp};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const SESSIONS: usize = 4;

/// `helloguard serve` running on a config file, and the address it printed.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_helloguard"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines, listening) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[helloguard] {line}");
                let _ = lines.send(line);
            }
        });
        let addr = loop {
            let line = listening.recv_timeout(Duration::from_secs(30)).expect("helloguard did not start");
            if let Some(rest) = line.strip_prefix("helloguard listening on https://") {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        Self { child, addr }
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for the drain to finish.
    fn stop(mut self) {
        let status = Command::new("sh").arg("-c").arg(format!("kill -TERM {}", self.child.id())).status().unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_sigkill_and_are_delivered_once() {
    let rp = RelyingParty::start(ISSUER).await;
    rp.answer(&[], Some(Answer::Status(503)));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("helloguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [store]
            path = "{data}"
            [server]
            listen = "127.0.0.1:0"
            [admin]
            listen = "off"
            [audit]
            path = "{data}/audit.jsonl"
            [logout]
            issuer = "{ISSUER}"
            ca_file = "{ca}"
            timeout = "3s"
            retry_base = "100ms"
            max_attempts = 1000
            [[clients]]
            client_id = "demo"
            [clients.oidc_logout]
            backchannel_logout_urls = ["{url}"]
            backchannel_logout_initiators = {{ mode = "all" }}
            "#,
            data = dir.path().display(),
            ca = rp.ca_file.display(),
            url = rp.url("demo"),
        ),
    )
    .unwrap();

    let first = Serve::start(&config);
    let pem = std::fs::read(dir.path().join("tls/self-signed.crt")).unwrap();
    let root = CertificateDer::from_pem_slice(&pem).unwrap();
    let jwks = request_at(first.addr, &root, "GET", "/.well-known/jwks.json", &[], "").await;
    rp.trust(&jwks.body);
    let mut sids = Vec::new();
    for i in 0..SESSIONS {
        let (cookie, sid) = login_at(first.addr, &root, &format!("user{i}")).await;
        logout_at(first.addr, &root, &cookie).await;
        sids.push(sid);
    }
    // Each session's delivery has been tried (and refused) at least once: all are pending.
    rp.wait_for(Duration::from_secs(20), |received| {
        sids.iter().all(|sid| received.iter().any(|d| d.sid() == Some(sid.as_str()) && d.answered == 503))
    })
    .await;
    first.kill();
    assert!(rp.received().iter().all(|d| !d.accepted()), "nothing was accepted before the crash");

    rp.answer(&[], None);
    let second = Serve::start(&config);
    let jwks_again = request_at(second.addr, &root, "GET", "/.well-known/jwks.json", &[], "").await;
    assert_eq!(jwks_again.body, jwks.body, "the generated key is reused after a restart");
    rp.wait_for(Duration::from_secs(30), |received| {
        sids.iter().all(|sid| received.iter().any(|d| d.accepted() && d.sid() == Some(sid.as_str())))
    })
    .await;
    second.stop();

    let received = rp.received();
    for sid in &sids {
        let accepted = received.iter().filter(|d| d.accepted() && d.sid() == Some(sid.as_str())).count();
        assert_eq!(accepted, 1, "{sid} accepted {accepted} times");
    }
    assert!(received.iter().all(|d| d.claims.is_ok()), "every token validated");
    let jtis: std::collections::HashSet<&str> =
        received.iter().map(|d| d.claims.as_ref().unwrap()["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), received.len(), "a fresh jti for every attempt");

    let store = EmbeddedStore::open(dir.path(), Duration::from_secs(60)).unwrap();
    let far_future = Timestamp(i64::MAX / 2);
    assert!(store.lease_outbox(far_future, Duration::from_secs(1), 100).await.unwrap().is_empty(), "outbox drained");
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let succeeded = audit.lines().filter(|l| l.contains("\"oidc_backchannel_logout_succeeded\"")).count();
    assert_eq!(succeeded, SESSIONS);
}
