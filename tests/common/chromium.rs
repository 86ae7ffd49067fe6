//! Headless Chromium (Debian's `chromium`, installed by `.ci/run`) as a test client: one browser
//! process per call, which loads one URL and prints the page it ended on (`--dump-dom`).
//!
//! Every process opens new TLS connections, so each call is a fresh ClientHello. The flags keep
//! Chromium from calling home (this network refuses it) and let it run as root without a GPU.
//!
//! Chromium prints the DOM once the page has loaded and no navigation is pending. A page that
//! navigates on its own (an auto-submitted form) must start that navigation from an inline script,
//! while it is still loading. Submitted from `onload`, the form page itself was printed; with
//! `--virtual-time-budget` as well, an empty DOM (exit 0) once the answer took 2 s, as it can on a
//! loaded CI machine. Submitted inline, the answer was printed after delays of 3 to 12 s, with or
//! without the budget, which is therefore not used.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROGRAM: &str = "chromium";

/// A hung browser fails the test after this long instead of hanging it (a bound, not a measurement).
const LIMIT: Duration = Duration::from_secs(60);

/// Whether Chromium can run here; otherwise the test skips, or fails under
/// `HELLOGUARD_REQUIRE_CHROMIUM=1` (set by `.ci/run`).
pub fn available() -> bool {
    let found = Command::new(PROGRAM).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        super::skip_unless_required(
            "HELLOGUARD_REQUIRE_CHROMIUM",
            "chromium is not installed (apt-get install chromium)",
        );
    }
    found
}

/// Run one Chromium process with its profile in `profile` (a fresh directory: no cookies, no TLS
/// session to resume; the same one again: the cookies it kept) and return the DOM of the page
/// `url` led to. The server's certificate is not checked.
pub fn dump_dom(profile: &Path, url: &str) -> String {
    std::fs::create_dir_all(profile).unwrap();
    // Beside Chromium's own files, under names it does not use.
    let stdout = profile.join("helloguard-test-dom.html");
    let stderr = profile.join("helloguard-test-stderr.txt");
    let mut child = Command::new(PROGRAM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        // Files, not pipes: nothing to drain while waiting.
        .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium still running after {LIMIT:?} on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = std::fs::read_to_string(&stdout).unwrap();
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        status.success() && !dom.is_empty(),
        "chromium on {url}: {status}, {} bytes of DOM; stderr:\n{log}",
        dom.len()
    );
    dom
}

/// The JSON document a page shows: Chromium renders a JSON response as text in one `<pre>`.
pub fn shown_json(dom: &str) -> serde_json::Value {
    let text = dom.split_once("<pre>").and_then(|(_, rest)| rest.split_once("</pre>")).map(|(text, _)| text);
    let text = text.unwrap_or_else(|| panic!("no <pre> in the page:\n{dom}"));
    // Text in serialised HTML escapes exactly these.
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e} in the page's JSON:\n{dom}"))
}
