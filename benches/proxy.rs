//! Proxy-level figures on loopback, side by side in one run (the README's performance table):
//!
//! 1. **CPU per new connection**: one `POST /login` per new TLS 1.3 connection (full handshake,
//!    no resumption) on a live session, through two `helloguard serve` processes that differ only
//!    in `server.fingerprinting` (capture + fingerprint + decision on, or off), loaded at the same
//!    time so that the machine's drift (this one is a shared VM) weighs on both alike (two
//!    identical proxies measured this way agree within 1%). Each proxy's own CPU time (utime +
//!    stime from `/proc/<pid>/stat`) divided by its requests; the figure is the ratio off/on. On 2
//!    cores the load generator saturates before the proxy, so CPU per request is compared, not
//!    requests/s.
//! 2. **Keep-alive requests/s**: `h2load --h1` through three proxies terminating TLS with the same
//!    certificate to the same origin: helloguard, Debian's nginx, and a bare tokio-rustls + hyper
//!    proxy (`support/bare_proxy.rs`, helloguard's stack without helloguard's work: the floor).
//!    Ratios helloguard/nginx and helloguard/bare, of requests/s and of each proxy's CPU time per
//!    request (nginx: master and worker), whose ratio does not depend on whether a proxy or the
//!    load generator saturates first. Run in three layouts:
//!    - through the bench's in-process hyper upstream, then through an nginx origin, both on
//!      core 0 with h2load (core 0 saturates first there, see below);
//!    - through an nginx origin on core 1 with the proxies, h2load alone on core 0: the
//!      proxy-bound layout, where the load generator has spare CPU and requests/s is set by the
//!      CPU that the proxy and the origin (the same for every proxy) spend per request.
//!
//!    nginx is configured fairly: one worker, `access_log off`, upstream `keepalive 64` with
//!    `proxy_http_version 1.1` and an empty `Connection` header, `keepalive_requests` raised on
//!    both sides so no connection is recycled mid-run, and the forwarding headers helloguard sets
//!    on every request set too (`Host`, `X-Forwarded-For`, `X-Forwarded-Proto`,
//!    `X-Forwarded-Host`), as a production reverse-proxy config does.
//!
//! The proxies are pinned to core 1 (so helloguard runs one worker, its default on one core) and
//! h2load to core 0 with `taskset`; this process (the upstream and the connection load generator)
//! runs on core 0 too. Rounds alternate the order of the contenders; medians are printed. In the
//! first two layouts core 0 saturates first, so requests/s there also depends on how the kernel
//! schedules h2load against the origin: everything on core 0 is started by this process, in one
//! session. An origin daemonized into a session of its own (its own scheduler autogroup, with
//! `kernel.sched_autogroup_enabled=1`) was measured by hand to lower the tokio-based proxies'
//! requests/s by about 15% and not nginx's (the origin's context switches doubled); with autogroups off,
//! the gap closed.
//! Part 2 is skipped with a note when `h2load` or `nginx` is missing (`apt-get install
//! nghttp2-client nginx`).
//!
//! Run: `cargo bench --bench proxy`. Environment: `HELLOGUARD_BENCH_ROUNDS` (default 5),
//! `HELLOGUARD_BENCH_CONNECTIONS` (new connections per round and proxy, default 10000),
//! `HELLOGUARD_BENCH_REQUESTS` (keep-alive requests per round and proxy, default 100000).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/bare_proxy.rs"]
mod bare_proxy;

const SESSION_COOKIE: &str = "session=bench-session";
/// Marks the re-executed, pinned process.
const PINNED: &str = "HELLOGUARD_BENCH_PINNED";
/// Runs this binary as the bare proxy: `LISTEN UPSTREAM CERT KEY`.
const BARE_PROXY: &str = "HELLOGUARD_BENCH_BARE_PROXY";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    (utime + stime) / ticks_per_second
}

/// A process's CPU time and its children's (nginx's master and its worker), in seconds.
fn cpu_seconds_with_children(pid: u32, ticks_per_second: f64) -> f64 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let children = children.split_whitespace().filter_map(|c| c.parse().ok());
    cpu_seconds(pid, ticks_per_second) + children.map(|child| cpu_seconds(child, ticks_per_second)).sum::<f64>()
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("CLK_TCK")
}

/// The upstream login service: every answer is a small 200; `/login` also (re)sets the session
/// cookie, so the first login creates the session and later ones are decisions on it.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("upstream bind");
    let addr = listener.local_addr().expect("upstream addr");
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let mut response = Response::builder().header("content-type", "application/json");
                    if request.uri().path() == "/login" {
                        response = response.header("set-cookie", format!("{SESSION_COOKIE}; Path=/; HttpOnly"));
                    }
                    response.body(Full::new(Bytes::from_static(b"{\"ok\":true}")))
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
            });
        }
    });
    addr
}

/// A `helloguard serve` process pinned to core 1.
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    fn start(dir: &Path, upstream: SocketAddr, fingerprinting: bool) -> Self {
        std::fs::create_dir_all(dir).expect("data dir");
        let config = dir.join("helloguard.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://{upstream}\"\nfingerprinting = {fingerprinting}\n\
                 [admin]\nlisten = \"off\"\n[audit]\npath = \"{}\"\n[store]\npath = \"{}\"\n",
                dir.join("audit.jsonl").display(),
                dir.display()
            ),
        )
        .expect("config");
        let mut child = Command::new("taskset")
            .args(["-c", "1", env!("CARGO_BIN_EXE_helloguard"), "serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start helloguard");
        let addr = listening_address(&mut child);
        Self { child, addr }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `helloguard listening on https://ADDR …` from the child's stderr.
fn listening_address(child: &mut Child) -> SocketAddr {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        if let Some(rest) = line.strip_prefix("helloguard listening on https://") {
            let addr = rest.split_whitespace().next().expect("address").parse().expect("socket address");
            // Keep draining stderr so the child never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return addr;
        }
    }
    panic!("helloguard exited before listening");
}

/// The connection load generator: `connections` new TLS connections, `concurrency` at a time,
/// one login request each.
async fn new_connections(addr: SocketAddr, connector: &tokio_rustls::TlsConnector, connections: usize) {
    const CONCURRENCY: usize = 16;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, connector) = (next.clone(), connector.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < connections {
                login_once(addr, &connector).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
}

async fn login_once(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let mut tls = connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await.expect("handshake");
    let request = format!(
        "POST /login HTTP/1.1\r\nhost: localhost\r\ncookie: {SESSION_COOKIE}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::with_capacity(1024);
    let _ = tls.read_to_end(&mut answer).await; // the proxy closes without close_notify at times
    assert!(answer.starts_with(b"HTTP/1.1 200"), "unexpected answer: {}", String::from_utf8_lossy(&answer));
}

fn client_connector(root: &Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_file(root).expect("certificate")).expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn cpu_per_request(rt: &tokio::runtime::Runtime, work: &Path, upstream: SocketAddr, rounds: usize) {
    let connections = setting("HELLOGUARD_BENCH_CONNECTIONS", 10_000);
    let ticks = clock_ticks();
    let on = Proxy::start(&work.join("on"), upstream, true);
    let off = Proxy::start(&work.join("off"), upstream, false);
    let connector = client_connector(&work.join("on/tls/self-signed.crt"));
    let connector_off = client_connector(&work.join("off/tls/self-signed.crt"));
    // Warm-up: creates the session, fills the upstream pool and the allocator.
    for (proxy, connector) in [(&on, &connector), (&off, &connector_off)] {
        rt.block_on(new_connections(proxy.addr, connector, 500));
    }
    println!(
        "\n== CPU per new connection ({connections} connections per proxy x {rounds} rounds, on and off loaded \
         at once, 16 concurrent each, TLS 1.3 full handshakes)"
    );
    let (mut per_request, mut ratios) = ([Vec::new(), Vec::new()], Vec::new());
    for round in 0..rounds {
        let pids = [on.child.id(), off.child.id()];
        let before = pids.map(|pid| cpu_seconds(pid, ticks));
        let started = Instant::now();
        rt.block_on(async {
            tokio::join!(
                new_connections(on.addr, &connector, connections),
                new_connections(off.addr, &connector_off, connections)
            )
        });
        let elapsed = started.elapsed();
        let micros: [f64; 2] =
            std::array::from_fn(|i| (cpu_seconds(pids[i], ticks) - before[i]) * 1e6 / connections as f64);
        for (index, name) in ["on", "off"].into_iter().enumerate() {
            per_request[index].push(micros[index]);
            print!("round {round} {name} {:6.1} µs CPU/request  ", micros[index]);
        }
        ratios.push(micros[1] / micros[0]);
        println!(
            "off/on {:.3}  ({:.0} connections/s in all)",
            micros[1] / micros[0],
            2.0 * connections as f64 / elapsed.as_secs_f64()
        );
    }
    let on_median = median(&mut per_request[0]);
    let off_median = median(&mut per_request[1]);
    let (lowest, highest) =
        (ratios.iter().copied().fold(f64::MAX, f64::min), ratios.iter().copied().fold(0.0, f64::max));
    println!(
        "median: on {on_median:.1} µs, off {off_median:.1} µs; ratio off/on = {:.3} (per round: median {:.3}, {lowest:.3}-{highest:.3})",
        off_median / on_median,
        median(&mut ratios)
    );
}

/// A Debian nginx (one worker, no access log) pinned to a core: the TLS-terminating proxy
/// contender, or a keep-alive origin.
struct Nginx {
    child: Child,
    addr: SocketAddr,
}

impl Nginx {
    /// The contender, configured fairly (see the module doc).
    fn proxy(dir: &Path, cert: &Path, key: &Path, upstream: SocketAddr) -> Self {
        Self::start(dir, "1", |port| {
            format!(
                "upstream backend {{ server {upstream}; keepalive 64; keepalive_requests 1000000; }}\n\
                 server {{\n  listen 127.0.0.1:{port} ssl;\n  ssl_certificate {};\n  ssl_certificate_key {};\n\
                   ssl_protocols TLSv1.2 TLSv1.3;\n\
                   location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
                     proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                     proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $host; }}\n}}\n",
                cert.display(),
                key.display()
            )
        })
    }

    /// An origin on `core` answering every request as the in-process upstream does.
    fn origin(dir: &Path, core: &str) -> Self {
        Self::start(dir, core, |port| {
            format!(
                "server {{ listen 127.0.0.1:{port}; location / {{ default_type application/json; \
                 return 200 '{{\"ok\":true}}'; }} }}\n"
            )
        })
    }

    /// `http` is the `http { … }` block's own part: its servers and upstreams.
    fn start(dir: &Path, core: &str, http: impl FnOnce(u16) -> String) -> Self {
        std::fs::create_dir_all(dir).expect("nginx dir");
        let port = free_port();
        let conf = dir.join("nginx.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
                   fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                   keepalive_requests 1000000;\n{}}}\n",
                http(port)
            ),
        )
        .expect("nginx.conf");
        let child = Command::new("taskset")
            .args(["-c", core, "nginx", "-p"])
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start nginx");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("nginx address");
        wait_for_listener(addr, &format!("nginx did not start; see {d}/error.log"));
        Self { child, addr }
    }
}

impl Drop for Nginx {
    /// SIGTERM, not SIGKILL: the master then stops its worker too (a killed master leaves it).
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The bare tokio-rustls + hyper proxy (`support/bare_proxy.rs`): this bench binary run again in
/// that role, pinned to core 1.
struct BareProxy {
    child: Child,
    addr: SocketAddr,
}

impl BareProxy {
    fn start(cert: &Path, key: &Path, upstream: SocketAddr) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("bare proxy address");
        let child = Command::new("taskset")
            .args(["-c", "1"])
            .arg(std::env::current_exe().expect("current exe"))
            .env(BARE_PROXY, format!("{addr} {upstream} {} {}", cert.display(), key.display()))
            .spawn()
            .expect("start the bare proxy");
        wait_for_listener(addr, "the bare proxy did not start");
        Self { child, addr }
    }
}

impl Drop for BareProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_listener(addr: SocketAddr, failure: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{failure}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Requests/s that h2load reports for `requests` keep-alive HTTP/1.1 requests on 16 connections.
fn h2load(addr: SocketAddr, requests: usize) -> f64 {
    let out = Command::new("taskset")
        .args(["-c", "0", "h2load", "--h1", "-c", "16", "-t", "1", "-n", &requests.to_string()])
        .arg(format!("https://{addr}/hello"))
        .output()
        .expect("h2load");
    let text = String::from_utf8_lossy(&out.stdout);
    let done = format!("{requests} succeeded, 0 failed");
    assert!(text.contains(&done), "h2load did not complete every request:\n{text}");
    let line = text.lines().find(|l| l.starts_with("finished in")).expect("h2load summary");
    // "finished in 3.21s, 31152.10 req/s, 2.46MB/s"
    line.split(", ").nth(1).and_then(|f| f.strip_suffix(" req/s")).and_then(|f| f.parse().ok()).expect("req/s")
}

/// Part 2 in each layout in turn (see the module doc).
fn keep_alive(work: &Path, upstream: SocketAddr, rounds: usize) {
    if !have("h2load") || !have("nginx") {
        println!("\n== keep-alive requests/s: skipped (needs h2load and nginx: apt-get install nghttp2-client nginx)");
        return;
    }
    keep_alive_through(work, "the in-process hyper upstream", upstream, rounds);
    for (core, name) in
        [("0", "an nginx origin"), ("1", "an nginx origin on the proxies' core (h2load alone on core 0)")]
    {
        let origin = Nginx::origin(&work.join(format!("nginx-origin-core-{core}")), core);
        keep_alive_through(work, name, origin.addr, rounds);
    }
}

/// helloguard, nginx and the bare proxy in alternating order, each round, on one origin.
fn keep_alive_through(work: &Path, origin_name: &str, origin: SocketAddr, rounds: usize) {
    let requests = setting("HELLOGUARD_BENCH_REQUESTS", 100_000);
    let ticks = clock_ticks();
    let dir = work.join(format!("keepalive-{}", origin.port()));
    let proxy = Proxy::start(&dir.join("helloguard"), origin, true);
    let (cert, key) = (dir.join("helloguard/tls/self-signed.crt"), dir.join("helloguard/tls/self-signed.key"));
    let nginx = Nginx::proxy(&dir.join("nginx"), &cert, &key, origin);
    let bare = BareProxy::start(&cert, &key, origin);
    let contenders = [
        ("helloguard", proxy.addr, proxy.child.id()),
        ("nginx", nginx.addr, nginx.child.id()),
        ("bare", bare.addr, bare.child.id()),
    ];
    for (_, addr, _) in contenders {
        h2load(addr, requests / 10);
    }
    println!(
        "\n== keep-alive requests/s through {origin_name} ({requests} requests x {rounds} rounds, h2load --h1 -c 16 -t 1)"
    );
    let (mut rates, mut cpu) = (contenders.map(|_| Vec::new()), contenders.map(|_| Vec::new()));
    for round in 0..rounds {
        for i in 0..contenders.len() {
            let index = (i + round) % contenders.len();
            let (name, addr, pid) = contenders[index];
            let before = cpu_seconds_with_children(pid, ticks);
            let rate = h2load(addr, requests);
            let micros = (cpu_seconds_with_children(pid, ticks) - before) * 1e6 / requests as f64;
            rates[index].push(rate);
            cpu[index].push(micros);
            println!("round {round} {name:<10} {rate:9.0} req/s {micros:6.1} µs CPU/request");
        }
    }
    let [ours, theirs, bare_rate] = rates.map(|mut r| median(&mut r));
    let [our_cpu, their_cpu, bare_cpu] = cpu.map(|mut c| median(&mut c));
    println!(
        "median: helloguard {ours:.0} req/s, nginx {theirs:.0} req/s, bare {bare_rate:.0} req/s; \
         ratio helloguard/nginx = {:.3}, helloguard/bare = {:.3}",
        ours / theirs,
        ours / bare_rate
    );
    println!(
        "median CPU/request: helloguard {our_cpu:.1} µs, nginx {their_cpu:.1} µs, bare {bare_cpu:.1} µs; \
         ratio nginx/helloguard = {:.3}, bare/helloguard = {:.3}",
        their_cpu / our_cpu,
        bare_cpu / our_cpu
    );
}

fn main() {
    if let Ok(role) = std::env::var(BARE_PROXY) {
        let [listen, upstream, cert, key]: [&str; 4] =
            role.split(' ').collect::<Vec<_>>().try_into().expect("listen upstream cert key");
        let address = |a: &str| a.parse().expect("socket address");
        bare_proxy::run(address(listen), address(upstream), Path::new(cert), Path::new(key));
        return;
    }
    // `cargo bench` passes `--bench`; this harness takes no filters.
    if std::env::var_os(PINNED).is_none() {
        if !have("taskset") {
            eprintln!("proxy bench: needs taskset (util-linux); skipped");
            return;
        }
        if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
            eprintln!("proxy bench: needs 2 cores (the proxy on one, the load on the other); skipped");
            return;
        }
        let me = std::env::current_exe().expect("current exe");
        let status = Command::new("taskset")
            .args(["-c", "0"])
            .arg(me)
            .args(std::env::args_os().skip(1))
            .env(PINNED, "1")
            .status()
            .expect("re-run pinned");
        std::process::exit(status.code().unwrap_or(1));
    }
    let rounds = setting("HELLOGUARD_BENCH_ROUNDS", 5);
    // Workers share core 0 (taskset); the upstream keeps answering while h2load runs.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let work: PathBuf = tempfile::tempdir().expect("temp dir").keep();
    let upstream = rt.block_on(upstream());
    cpu_per_request(&rt, &work, upstream, rounds);
    keep_alive(&work, upstream, rounds);
    let _ = std::fs::remove_dir_all(&work);
}
