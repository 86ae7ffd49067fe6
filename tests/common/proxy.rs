//! The proxy in process for tests: bound on 127.0.0.1:0, memory store, audit events kept.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helloguard::config::Config;
use helloguard::engine::audit::{erased, AuditSink};
use helloguard::proxy::Proxy;
use helloguard::session::memory::MemoryStore;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio::sync::watch;

/// Audit events, kept for assertions.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Value>>);

impl Events {
    /// Every event named `name`, in order.
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
    /// The Management API's own listener, when `[api] listen` is set.
    pub api_addr: Option<SocketAddr>,
    pub root: CertificateDer<'static>,
    pub events: Arc<Events>,
    pub store: Arc<MemoryStore>,
    _stop: watch::Sender<bool>,
    dir: tempfile::TempDir,
}

pub async fn start(edit: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "off".into();
    config.store.path = dir.path().to_owned();
    config.server.hello_timeout = helloguard::config::ConfigDuration(Duration::from_millis(500));
    edit(&mut config);
    let events = Arc::new(Events::default());
    let store = Arc::new(MemoryStore::new(Duration::from_secs(3600)));
    let proxy = Proxy::bind(config, store.clone(), events.clone()).await.unwrap();
    let addr = proxy.local_addr().unwrap();
    let api_addr = proxy.api_addr();
    let pem = std::fs::read(dir.path().join("tls/self-signed.crt")).unwrap();
    use rustls::pki_types::pem::PemObject;
    let root = CertificateDer::from_pem_slice(&pem).unwrap();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(proxy.run(stopped));
    Running { addr, api_addr, root, events, store, _stop: stop, dir }
}

impl Running {
    /// The data directory (generated certificate, management key).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
