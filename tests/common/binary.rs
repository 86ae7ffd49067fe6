//! The real `helloguard` binary: one-shot commands (`helloguard fingerprint`) with their stdin and
//! output, and the `serve` process for tests that need a separate process (its memory, its
//! signals), started with a config file in a temporary data directory, stopped on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};

use rustls::pki_types::CertificateDer;

/// The binary Cargo built for this test (examples, which have none, fall back to `PATH`).
fn program() -> &'static str {
    option_env!("CARGO_BIN_EXE_helloguard").unwrap_or("helloguard")
}

/// Run `helloguard <args>` to completion with `stdin` as its input.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// `helloguard fingerprint` of raw ClientHello records (its stdin form): the printed JSON object.
pub fn fingerprint(records: &[u8]) -> serde_json::Value {
    let output = run(&["fingerprint"], records);
    assert!(output.status.success(), "helloguard fingerprint: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

pub struct Served {
    pub child: Child,
    /// The process's standard output, when it was kept as a pipe nobody reads.
    _unread_stdout: Option<std::process::ChildStdout>,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Start with `config` (TOML; unset: a free listener, a free admin port, the memory store, an
    /// audit file); returns once it prints where it listens.
    pub fn start(config: &str) -> Self {
        Self::start_with(config, false)
    }

    /// Like [`Served::start`], but audit lines go to standard output, a pipe that nobody reads
    /// (it fills after 64 KiB), as when helloguard's output is piped into a stalled consumer.
    pub fn start_with_unread_stdout(config: &str) -> Self {
        Self::start_with(config, true)
    }

    fn start_with(config: &str, unread_stdout: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("helloguard.toml");
        let audit = (!unread_stdout).then(|| dir.path().join("audit.jsonl"));
        std::fs::write(&file, with_defaults(config, audit.as_deref())).unwrap();
        let mut child = Command::new(program())
            .args(["serve", "--config", file.to_str().unwrap(), "--data-dir", dir.path().to_str().unwrap()])
            .stdout(if unread_stdout { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let unread = child.stdout.take();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut address = |prefix: &str| -> SocketAddr {
            for line in lines.by_ref() {
                let line = line.unwrap();
                if let Some(rest) = line.split_once(prefix).map(|(_, rest)| rest) {
                    return rest.split([' ', '/']).next().unwrap().parse().unwrap();
                }
            }
            panic!("helloguard serve exited before printing {prefix:?}");
        };
        let addr = address("listening on https://");
        let admin = address("admin on http://");
        // Keep draining stderr so the process never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, _unread_stdout: unread, addr, admin, dir }
    }

    /// The self-signed certificate the process generated.
    pub fn root(&self) -> CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_file(self.dir.path().join("tls/self-signed.crt")).unwrap()
    }

    /// Resident memory of the process, in KiB (`VmRSS` in `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `extra` (TOML) with the test defaults filled in where it sets nothing; no audit file: standard
/// output.
fn with_defaults(extra: &str, audit: Option<&std::path::Path>) -> String {
    let mut table: toml::Table = extra.parse().unwrap();
    let mut defaults =
        vec![("server", "listen", "127.0.0.1:0"), ("admin", "listen", "127.0.0.1:0"), ("store", "backend", "memory")];
    if let Some(audit) = audit {
        defaults.push(("audit", "path", audit.to_str().unwrap()));
    }
    for (section, key, value) in defaults {
        let section = table.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(section) = section {
            section.entry(key).or_insert_with(|| toml::Value::String(value.to_owned()));
        }
    }
    table.to_string()
}
