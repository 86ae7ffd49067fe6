//! SIGTERM on a real `helloguard serve` process: it stops accepting at once, lets the requests in
//! flight (HTTP/1.1 and HTTP/2, from curl) finish, and exits cleanly; a request still in flight
//! when the drain deadline passes is cut and the process exits anyway.

use crate::common;

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::binary::Served;
use common::upstream::{full, serve};
use hyper::Response;

/// An upstream that answers `slow done` after `delay`, counting the requests that reached it.
async fn slow_upstream(delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let arrived = Arc::new(AtomicUsize::new(0));
    let counter = arrived.clone();
    let addr = serve(move |_request| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Response::new(full("slow done"))
        }
    })
    .await;
    (addr, arrived)
}

/// `curl` for `/slow` through the proxy, in the background; prints the body, then the status and
/// the HTTP version.
fn curl(served: &Served, version: &str) -> Child {
    let resolve = format!("localhost:{}:127.0.0.1", served.addr.port());
    let ca = served.dir.path().join("tls/self-signed.crt");
    Command::new("curl")
        .args(["-s", "--max-time", "60", version, "--resolve", &resolve, "--cacert"])
        .arg(&ca)
        .args(["-w", " %{http_code} %{http_version}"])
        .arg(format!("https://localhost:{}/slow", served.addr.port()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl is installed")
}

fn sigterm(served: &Served) {
    let status = Command::new("kill").args(["-TERM", &served.child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stdout_of(child: Child) -> (Output, String) {
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_and_lets_http1_and_http2_requests_in_flight_finish() {
    let (upstream, arrived) = slow_upstream(Duration::from_secs(3)).await;
    let mut served = Served::start(&format!("[server]\nupstream = \"http://{upstream}\"\n"));
    let http1 = curl(&served, "--http1.1");
    let http2 = curl(&served, "--http2");
    wait_for("both requests at the upstream", || arrived.load(Ordering::SeqCst) == 2).await;

    sigterm(&served);
    let addr = served.addr;
    wait_for("the listener to close", || std::net::TcpStream::connect(addr).is_err()).await;
    assert_eq!(arrived.load(Ordering::SeqCst), 2, "no request reached the upstream after SIGTERM");

    let (output, text) = stdout_of(http1);
    assert!(output.status.success(), "curl --http1.1 failed: {output:?}");
    assert_eq!(text, "slow done 200 1.1");
    let (output, text) = stdout_of(http2);
    assert!(output.status.success(), "curl --http2 failed: {output:?}");
    assert_eq!(text, "slow done 200 2");
    // Both requests were still at the upstream when the listener closed: their answers came after.
    let status = served.child.wait().unwrap();
    assert!(status.success(), "helloguard serve exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outlasting_the_drain_deadline_is_cut_and_the_process_exits() {
    let (upstream, arrived) = slow_upstream(Duration::from_secs(120)).await;
    let mut served = Served::start(&format!("[server]\nupstream = \"http://{upstream}\"\ndrain_timeout = \"1s\"\n"));
    let request = curl(&served, "--http1.1");
    wait_for("the request at the upstream", || arrived.load(Ordering::SeqCst) == 1).await;

    sigterm(&served);
    let mut exited = None;
    wait_for("helloguard serve to exit after the drain deadline", || {
        exited = served.child.try_wait().unwrap();
        exited.is_some()
    })
    .await;
    assert!(exited.unwrap().success(), "helloguard serve exited with {exited:?}");
    let (output, text) = stdout_of(request);
    assert!(!output.status.success(), "the cut request must fail, got {text:?}");
    assert!(!text.contains("slow done"), "{text:?}");
}
