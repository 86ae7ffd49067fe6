//! The proxy in process for tests: bound on 127.0.0.1:0, memory store (or one the test opens),
//! audit events kept, admin listener on a free port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helloguard::audit::{erased, AuditSink};
use helloguard::config::Config;
use helloguard::proxy::Proxy;
use helloguard::session::memory::MemoryStore;
use helloguard::session::Store;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio::sync::watch;

use super::client::Target;

/// Audit events, kept for assertions.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Value>>);

impl Events {
    /// Every event named `name` so far.
    pub fn named(&self, name: &str) -> Vec<Value> {
        self.0.lock().unwrap().iter().filter(|e| e["event"] == name).cloned().collect()
    }

    /// The `reason` of every decision event so far, in order.
    pub fn reasons(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().filter_map(|e| e["reason"].as_str().map(str::to_owned)).collect()
    }
}

impl AuditSink for Events {
    fn record(&self, event: &dyn erased::Event) {
        let line = event.to_json_line().unwrap();
        self.0.lock().unwrap().push(serde_json::from_str(&line).unwrap());
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The Management API's own listener, when `[api] listen` is set.
    pub api_addr: Option<SocketAddr>,
    pub root: CertificateDer<'static>,
    pub events: Arc<Events>,
    pub store: Arc<dyn Store>,
    pub shared: Arc<helloguard::proxy::state::Shared>,
    pub dir: tempfile::TempDir,
    _stop: watch::Sender<bool>,
}

impl Running {
    /// The proxy as a client target, trusting its self-signed certificate, SNI `localhost`.
    pub fn target(&self) -> Target<'_> {
        Target { addr: self.addr, roots: std::slice::from_ref(&self.root), server_name: "localhost" }
    }

    /// The value of one sample of `/metrics`, e.g. `helloguard_store_errors_total{mode="open"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = admin_get(self.admin, "/metrics").await;
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in /metrics:\n{text}"))
    }
}

/// A plain-HTTP GET to the admin listener; the body.
pub async fn admin_get(admin: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

/// Start with the memory store.
pub async fn start(edit: impl FnOnce(&mut Config)) -> Running {
    start_with_store(Arc::new(MemoryStore::new(Duration::from_secs(3600))), edit).await
}

pub async fn start_with_store(store: Arc<dyn Store>, edit: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".into();
    config.store.path = dir.path().to_owned();
    config.server.hello_timeout = helloguard::config::ConfigDuration(Duration::from_millis(500));
    edit(&mut config);
    let events = Arc::new(Events::default());
    let proxy = Proxy::bind(config, store.clone(), events.clone()).await.unwrap();
    let addr = proxy.local_addr().unwrap();
    let admin = proxy.admin_addr().unwrap();
    let shared = proxy.shared();
    let api_addr = proxy.api_addr();
    // With configured certificates there is no self-signed one; such tests build their own target.
    let root = std::fs::read(dir.path().join("tls/self-signed.crt")).map_or(CertificateDer::from(Vec::new()), |pem| {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(&pem).unwrap()
    });
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(proxy.run(stopped));
    Running { addr, admin, api_addr, root, events, store, shared, dir, _stop: stop }
}
