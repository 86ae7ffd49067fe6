//! Headless Firefox ESR (Debian's `firefox-esr`) as a test client, driven over Marionette, the
//! remote protocol built into Firefox, so no geckodriver is needed.
//!
//! Unlike Chromium's `--dump-dom`, one browser process serves a whole test: it keeps its cookies
//! and its TLS 1.3 session tickets, which Firefox (NSS) keeps per host and port. A new connection
//! to an origin that gave it a ticket offers that ticket: its ClientHello carries `pre_shared_key`
//! (0x0029) and no `session_ticket` (0x0023). Firefox reuses an idle keep-alive connection instead,
//! so a server that wants a second hello must close the first connection (`Connection: close`).
//! A cross-origin `fetch` without credentials uses separate anonymous connections with their own
//! ticket cache.
//!
//! Protocol: each message is `<decimal length>:<json>`; the server greets with
//! `{"applicationType": "gecko", "marionetteProtocol": 3}`; a command is `[0, id, name, params]`,
//! its answer `[1, id, error, result]`. `WebDriver:NewSession` takes the capabilities themselves
//! as params: the W3C form `{"capabilities": {"alwaysMatch": ...}}` is accepted and ignored.
//! `acceptInsecureCerts` does not change the ClientHello.
//!
//! With `marionette.port` 0 Firefox listens on a free port and writes it to
//! `<profile>/MarionetteActivePort` once it accepts connections: no port to pick and release
//! before the browser binds it, and the file doubles as the readiness signal.
//!
//! A fresh profile calls home in its first seconds (updates, remote settings, safe browsing, media
//! plugin updates, telemetry, connectivity checks): the prefs below turn that off, and
//! `MOZ_DISABLE_NONLOCAL_CONNECTIONS=1` makes Firefox refuse any other non-loopback connection (a
//! release build also honours the `services.settings.server` override only with it). Marionette
//! applies similar prefs itself, but only once it listens, too late for the start-up requests.
//! Firefox runs as root as is, and writes to `$HOME` even with `--profile`, so `HOME` is a
//! directory of the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

const PROGRAM: &str = "firefox-esr";

/// A hung browser fails the test after this long instead of hanging it (a bound, not a
/// measurement: starting takes about 3 s here).
const LIMIT: Duration = Duration::from_secs(60);

/// Firefox's own limits for a page load and an async script, below `LIMIT` so that a slow page
/// fails with Firefox's error message rather than a read timeout.
const PAGE_LIMIT_MS: u64 = 30_000;

/// Prefs written to `user.js`, values as JavaScript literals.
const PREFS: &[(&str, &str)] = &[
    ("marionette.port", "0"),
    ("app.normandy.enabled", "false"),
    ("app.update.disabledForTesting", "true"),
    ("browser.newtabpage.enabled", "false"),
    ("browser.region.network.url", "\"\""),
    ("browser.safebrowsing.blockedURIs.enabled", "false"),
    ("browser.safebrowsing.downloads.enabled", "false"),
    ("browser.safebrowsing.malware.enabled", "false"),
    ("browser.safebrowsing.phishing.enabled", "false"),
    ("browser.shell.checkDefaultBrowser", "false"),
    ("browser.startup.homepage", "\"about:blank\""),
    ("browser.startup.homepage_override.mstone", "\"ignore\""),
    ("browser.startup.page", "0"),
    ("datareporting.policy.dataSubmissionEnabled", "false"),
    ("extensions.update.enabled", "false"),
    ("media.gmp-manager.updateEnabled", "false"),
    ("network.captive-portal-service.enabled", "false"),
    ("network.connectivity-service.enabled", "false"),
    ("network.dns.disablePrefetch", "true"),
    // No speculative connections: every connection the test sees carries a request.
    ("network.http.speculative-parallel-limit", "0"),
    ("services.settings.server", "\"data:,#remote-settings-dummy/v1\""),
    ("startup.homepage_welcome_url", "\"about:blank\""),
    ("toolkit.telemetry.enabled", "false"),
];

/// Whether Firefox can run here; otherwise the test skips, or fails under
/// `HELLOGUARD_REQUIRE_FIREFOX=1`.
pub fn available() -> bool {
    let found = Command::new(PROGRAM).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        super::skip_unless_required(
            "HELLOGUARD_REQUIRE_FIREFOX",
            "firefox-esr is not installed (apt-get install firefox-esr)",
        );
    }
    found
}

/// One headless Firefox process with a fresh profile and a Marionette session that accepts any
/// server certificate. Dropping it quits the browser (killing it if it does not exit) and deletes
/// the profile. Every call blocks: from an async test, use `tokio::task::block_in_place`.
pub struct Firefox {
    child: Child,
    /// `None` until the browser listens.
    marionette: Option<Marionette>,
    /// Profile, `HOME` and log; declared last so it is deleted after the process has exited.
    dir: TempDir,
}

struct Marionette {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    last_id: u64,
}

impl Firefox {
    pub fn start() -> Firefox {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        let home = dir.path().join("home");
        std::fs::create_dir(&profile).unwrap();
        std::fs::create_dir(&home).unwrap();
        let user_js: String = PREFS.iter().map(|(name, value)| format!("user_pref(\"{name}\", {value});\n")).collect();
        std::fs::write(profile.join("user.js"), user_js).unwrap();
        // A file, not a pipe: nothing to drain while the browser runs.
        let log = std::fs::File::create(dir.path().join("firefox.log")).unwrap();
        let child = Command::new(PROGRAM)
            .args(["--headless", "--marionette", "--no-remote", "--profile"])
            .arg(&profile)
            .env("HOME", &home)
            .env("MOZ_DISABLE_NONLOCAL_CONNECTIONS", "1")
            // No crash helper process, and no crash pings.
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        // From here a panic drops `firefox`, which kills the process.
        let mut firefox = Firefox { child, marionette: None, dir };
        let started = Instant::now();
        let stream = loop {
            if let Some(status) = firefox.child.try_wait().unwrap() {
                panic!("{PROGRAM} exited ({status}) before Marionette listened; log:\n{}", firefox.log());
            }
            if let Some(stream) = connect(&profile) {
                break stream;
            }
            if started.elapsed() > LIMIT {
                panic!("{PROGRAM}: no Marionette after {LIMIT:?}; log:\n{}", firefox.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut marionette =
            Marionette { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream, last_id: 0 };
        let greeting = marionette.read().unwrap();
        assert_eq!(greeting["marionetteProtocol"], 3, "unexpected Marionette greeting {greeting}");
        firefox.marionette = Some(marionette);
        firefox.command(
            "WebDriver:NewSession",
            json!({
                "acceptInsecureCerts": true,
                "timeouts": {"pageLoad": PAGE_LIMIT_MS, "script": PAGE_LIMIT_MS},
            }),
        );
        firefox
    }

    /// Load `url` and wait until it has loaded; an error page (refused, bad certificate) panics.
    pub fn navigate(&mut self, url: &str) {
        self.command("WebDriver:Navigate", json!({ "url": url }));
    }

    /// Run `script` as the body of a function in the current page and return what it passes to its
    /// last argument, the callback: `arguments[arguments.length - 1](value)`.
    pub fn execute_async(&mut self, script: &str) -> Value {
        self.command("WebDriver:ExecuteAsyncScript", json!({ "script": script, "args": [] }))["value"].take()
    }

    /// The current page, serialised.
    pub fn page_source(&mut self) -> String {
        match self.command("WebDriver:GetPageSource", json!({}))["value"].take() {
            Value::String(source) => source,
            other => panic!("WebDriver:GetPageSource answered {other}"),
        }
    }

    fn command(&mut self, name: &str, params: Value) -> Value {
        let marionette = self.marionette.as_mut().expect("Marionette is connected");
        marionette.command(name, params).unwrap_or_else(|e| panic!("{e}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("firefox.log")).unwrap_or_default()
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        if let Some(marionette) = self.marionette.as_mut() {
            // Quit needs the session and ends it. An error means the browser is gone or hung; the
            // kill below handles both. Shorter than `LIMIT`, as this may run while a test unwinds
            // (the writer shares the reader's socket, so this sets the reader's timeout).
            let _ = marionette.writer.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = marionette.command("Marionette:Quit", json!({}));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The content processes exit on their own once the main process is gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection to the port Firefox wrote to its profile, once it has.
fn connect(profile: &Path) -> Option<TcpStream> {
    let port: u16 = std::fs::read_to_string(profile.join("MarionetteActivePort")).ok()?.trim().parse().ok()?;
    TcpStream::connect(("127.0.0.1", port)).ok()
}

impl Marionette {
    /// Send one command and return its result, skipping any message that is not its answer.
    fn command(&mut self, name: &str, params: Value) -> Result<Value, String> {
        self.last_id += 1;
        let body = json!([0, self.last_id, name, params]).to_string();
        self.writer.write_all(format!("{}:{body}", body.len()).as_bytes()).map_err(|e| format!("{name}: {e}"))?;
        loop {
            let mut reply = self.read().map_err(|e| format!("{name}: {e}"))?;
            if reply[0] == 1 && reply[1] == self.last_id {
                return match reply[2].take() {
                    Value::Null => Ok(reply[3].take()),
                    error => Err(format!(
                        "{name}: {}: {}",
                        error["error"].as_str().unwrap_or_default(),
                        error["message"].as_str().unwrap_or_default()
                    )),
                };
            }
        }
    }

    fn read(&mut self) -> std::io::Result<Value> {
        let mut length = Vec::new();
        self.reader.read_until(b':', &mut length)?;
        if length.pop() != Some(b':') {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let length: usize = std::str::from_utf8(&length)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad Marionette frame length {length:?}")))?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(serde_json::from_slice(&body)?)
    }
}
