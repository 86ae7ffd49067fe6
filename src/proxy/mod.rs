//! The TLS-terminating reverse proxy (`helloguard serve`).
//!
//! | file | owns |
//! |---|---|
//! | [`listener`] | accept loop, limits, capture → TLS handshake → HTTP, graceful drain |
//! | [`proxy_protocol`] | the PROXY protocol v1/v2 header from trusted load balancers |
//! | [`capture`] | reading the ClientHello before rustls and replaying it byte-exact |
//! | [`tls`], [`certificates`] | PEM files or a self-signed certificate; per-SNI choice and reload |
//! | [`state`] | what requests share, and what is known about a connection |
//! | [`request`] | the request phases in order: reserved → hygiene → classify → look up → bind/decide → enforce → forward |
//! | [`forward`] | the headers the upstream gets besides the client's |
//! | [`response`] | the response phase: what the upstream's answer creates, handed to the binding layer |
//! | [`action_facts`] | what Actions read of a login or token request |
//! | [`answers`] | what helloguard answers itself: challenges, refusals, store and upstream failures, the JWKS |
//! | [`headers`], [`routes`] | header names and hygiene; route classification |
//! | [`upstream`], [`demo`] | the pooled HTTP client, and the built-in demo login service |
//! | [`upgrade`] | WebSocket (and other `Upgrade:`) connections passed through |
//! | [`admin`], [`metrics`] | `/metrics`, `/healthz`, `/readyz` |
//! | [`api_listener`] | the Management API's own listener, when `[api] listen` is set |
//! | [`upkeep`] | the allocator's collection run on each worker, so freed memory goes back |
//!
//! The proxy holds no decision logic and writes no record: that is [`crate::binding`].

pub mod action_facts;
pub mod admin;
pub mod answers;
pub mod api_listener;
pub mod capture;
pub mod certificates;
mod deadlines;
pub mod demo;
pub mod forward;
mod header_timeout;
pub mod headers;
pub mod listener;
pub mod metrics;
mod pool;
pub mod proxy_protocol;
pub mod request;
pub mod response;
pub mod routes;
pub mod state;
pub mod tls;
pub mod upgrade;
pub mod upkeep;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::audit::AuditSink;
use crate::binding::Binder;
use crate::config::Config;
use crate::logout::delivery::Deliveries;
use crate::logout::plan::ClientPlanner;
use crate::logout::signer::LogoutSigner;
use crate::logout::SessionEnder;
use crate::session::Store;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Api(#[from] crate::api::StartError),
    #[error("cannot listen on {address}: {error}")]
    Listen { address: SocketAddr, error: std::io::Error },
    #[error(transparent)]
    LogoutKey(#[from] crate::logout::signer::KeyError),
    #[error("server.upstream: {0}")]
    Upstream(String),
    #[error(transparent)]
    Actions(crate::actions::LoadError),
}

/// A bound, ready proxy: the caller learns its addresses before it runs.
pub struct Proxy {
    listener: TcpListener,
    admin: Option<TcpListener>,
    api: Option<TcpListener>,
    acceptor: TlsAcceptor,
    certificates: Arc<certificates::Certificates>,
    shared: Arc<state::Shared>,
    /// Back-channel logout workers, when an issuer is configured.
    deliveries: Option<Arc<Deliveries>>,
    /// SHA-256 of the served certificate (hex).
    pub certificate_sha256: String,
}

impl Proxy {
    /// Bind the listeners and load TLS material. The store is opened by the caller (it may be
    /// shared with other parts of the process).
    pub async fn bind(config: Config, store: Arc<dyn Store>, audit: Arc<dyn AuditSink>) -> Result<Self, StartError> {
        let policy = config.policy.policy()?;
        let metrics: Arc<metrics::Metrics> = Arc::default();
        let default = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => tls::self_signed_files(&config.store.path)?,
        };
        let named = config.tls.certificates.iter().map(|pair| certificates::NamedPair {
            server_names: pair.server_names.clone(),
            cert: pair.cert.clone(),
            key: pair.key.clone(),
        });
        let certificates = Arc::new(certificates::Certificates::load(default, named.collect(), metrics.clone())?);
        let acceptor = TlsAcceptor::from(tls::server_config(certificates.clone())?);
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address).await.map_err(|error| StartError::Listen { address, error })
        };
        let listener = bind(config.server.listen).await?;
        let admin = match config.admin.address()? {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let signer = Arc::new(LogoutSigner::load(&config.logout, &config.store.path)?);
        let deliveries = Deliveries::new(
            (&config.logout, &config.clients),
            store.clone(),
            audit.clone(),
            metrics.logout_deliveries.clone(),
            signer.clone(),
        )?
        .map(Arc::new);
        let planner = Arc::new(ClientPlanner::new(&config.clients));
        let api = match config.api.address()? {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let names = headers::HeaderNames::new(&config);
        let demo = Arc::new(demo::Demo::new(names.clone(), &config.session));
        let sessions = Arc::new(SessionEnder::new(store.clone(), audit.clone(), planner));
        let lifetimes = (config.session.lifetimes(), config.refresh_tokens.lifetimes());
        let actions = crate::actions::Actions::load(&config.actions).map_err(StartError::Actions)?.map(Arc::new);
        let binder =
            Binder::new(store.clone(), policy, audit.clone(), sessions.clone(), metrics.binding.clone(), lifetimes)
                .with_actions(actions);
        let shared = Arc::new(state::Shared {
            upstream: upstream::Upstream::new(&config.server, demo).map_err(StartError::Upstream)?,
            routes: routes::Routes::new(&config.routes, &config.logout.jwks_path),
            names,
            binder,
            sessions,
            signer,
            api: crate::api::Api::new(&config.api, &config.store.path)?,
            store,
            audit,
            metrics,
            config,
        });
        let certificate_sha256 = certificates.default_sha256();
        Ok(Self { listener, admin, api, acceptor, certificates, shared, deliveries, certificate_sha256 })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What every request shares (the store, the session ender): for callers that end sessions
    /// outside a request, and for tests.
    pub fn shared(&self) -> Arc<state::Shared> {
        self.shared.clone()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|a| a.local_addr().ok())
    }

    /// The Management API's own listener, when `[api] listen` is set.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().and_then(|a| a.local_addr().ok())
    }

    /// Serve until `shutdown` turns true, then drain (connections, then logout attempts in
    /// flight).
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        if let Some(admin) = self.admin {
            tokio::spawn(admin::run(admin, self.shared.clone(), shutdown.clone()));
        }
        if let Some(api) = self.api {
            let tls = (!self.shared.config.api.plain_http).then(|| self.acceptor.clone());
            tokio::spawn(api_listener::run(api, tls, self.shared.clone(), shutdown.clone()));
        }
        tokio::spawn(sweep(self.shared.clone(), shutdown.clone()));
        tokio::spawn(reload_files(
            self.certificates,
            self.shared.clone(),
            self.shared.config.tls.reload_interval.0,
            shutdown.clone(),
        ));
        let deliveries =
            self.deliveries.map(|d| tokio::spawn(d.run(self.shared.sessions.enqueued(), shutdown.clone())));
        let served = listener::run(self.listener, self.acceptor, self.shared, shutdown).await;
        if let Some(deliveries) = deliveries {
            let _ = deliveries.await;
        }
        served
    }
}

/// Every `session.sweep_interval`, the binding layer ends expired sessions and drops expired
/// records (see [`Binder::sweep`]); failures are logged and retried at the next tick.
async fn sweep(shared: Arc<state::Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.config.session.sweep_interval.0);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        shared.binder.sweep(crate::session::Timestamp::now()).await;
    }
}

/// Run the proxy as `helloguard serve` does: open the store, bind, print where it listens, serve
/// until SIGTERM or Ctrl-C, then drain.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.store.path)
        .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", config.store.path.display()))?;
    let store = crate::session::open_store(&config.store).await?;
    // Audit lines are written by a thread of their own: a slow reader never stalls a request.
    let writer = match &config.audit.path {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open audit file {}: {e}", path.display()))?;
            crate::audit::Writer::spawn(file, config.audit.queue)
        }
        None => crate::audit::Writer::spawn(std::io::stdout(), config.audit.queue),
    };
    let writer = Arc::new(writer.map_err(|e| anyhow::anyhow!("cannot start the audit writer: {e}"))?);
    let audit: Arc<dyn AuditSink> = writer.clone();
    let upstream = match &config.server.upstream {
        crate::config::Upstream::Demo => "builtin:demo".to_owned(),
        crate::config::Upstream::Http(origin) => origin.clone(),
    };
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let proxy = Proxy::bind(config, store, audit).await?;
    eprintln!("helloguard listening on https://{} (upstream {upstream})", proxy.local_addr()?);
    eprintln!("certificate SHA-256 {}", proxy.certificate_sha256);
    if let Some(admin) = proxy.admin_addr() {
        eprintln!("admin on http://{admin} (/metrics, /healthz, /readyz)");
    }
    if let Some(api) = proxy.api_addr() {
        let scheme = if proxy.shared.config.api.plain_http { "http" } else { "https" };
        eprintln!("management API on {scheme}://{api}/api/v2/");
    }
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("helloguard: shutting down, draining connections");
        let _ = stop.send(true);
    });
    proxy.run(stopped).await?;
    // What was audited before the stop reaches its file (bounded: a reader that stopped reading
    // cannot hold the exit).
    if !writer.flush(std::time::Duration::from_secs(5)) {
        tracing::warn!("audit lines still queued at exit were not all written");
    }
    Ok(())
}

/// Reload changed certificate and Action files every `interval`, and all of them on SIGHUP.
async fn reload_files(
    certificates: Arc<certificates::Certificates>,
    shared: Arc<state::Shared>,
    interval: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hangup_received = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup_received = std::future::pending::<Option<()>>();
        let force = tokio::select! {
            _ = tick.tick() => false,
            _ = hangup_received => true,
            _ = shutdown.changed() => return,
        };
        certificates.reload(force);
        if let Some(actions) = shared.binder.actions() {
            match actions.reload(force) {
                Ok(false) => {}
                Ok(true) => {
                    shared.metrics.action_reloads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(_) => {
                    shared.metrics.action_reload_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => return,
                _ = tokio::signal::ctrl_c() => return,
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
