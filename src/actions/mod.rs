//! Actions (CONTRACT §11): post-login Action code, JavaScript written for the public reference,
//! run by helloguard on logins, refresh exchanges and other token requests, after the built-in
//! binding. The runtime does no I/O of its own: the binding layer builds `event`, runs the files
//! here, and applies what their `api` calls asked for.
//!
//! | file | owns |
//! |---|---|
//! | [`js`] | the engine: one QuickJS runtime per worker on its own thread, the sandbox, time and memory limits |
//! | [`requests`] | what an Action asked for through `api`, read back, and the decision it makes |
//! | [`offline`] | `helloguard actions test`: Actions run on one `event` without a proxy |
//! | [`geoip`] | `event.request.geoip` from a MaxMind DB file |
//! | [`options`] | `[actions]` and `[actions.secrets]` |
//!
//! Files are compiled at start (one that does not compile stops `serve`, naming file:line:column),
//! reloaded when they change and on SIGHUP; a file that does not compile then keeps the previous
//! version in service. The GeoIP database is read with them, and reloaded the same way.

pub mod geoip;
pub mod js;
pub mod offline;
pub mod options;
pub mod requests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

pub use js::{Limits, Ran, Source, SyntaxError};
pub use options::{ActionsConfig, OnError};
pub use requests::{ActionDecision, ActionVerdict, Edit, Requests};

/// The configured Action files, at the versions in service.
pub struct Actions {
    files: Vec<PathBuf>,
    geoip_database: Option<PathBuf>,
    current: RwLock<Loaded>,
    limits: Limits,
    on_error: OnError,
    secrets: serde_json::Map<String, serde_json::Value>,
    versions: AtomicU64,
}

/// The sources and the GeoIP database in service, and the files' modification times when they
/// were read.
#[derive(Clone, Default)]
struct Loaded {
    sources: Arc<Vec<Arc<Source>>>,
    geoip: Option<Arc<geoip::GeoIp>>,
    modified: Vec<Option<SystemTime>>,
}

/// Why the Actions cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Syntax(#[from] SyntaxError),
    #[error("cannot read Action {path}: {message}")]
    Read { path: String, message: String },
    #[error("actions.secrets.{name}: {message}")]
    Secret { name: String, message: String },
    #[error("actions.geoip_database {path}: {message}")]
    GeoIp { path: String, message: String },
}

impl Actions {
    /// Reads and compiles every file of `config`; `None` when none is configured.
    pub fn load(config: &ActionsConfig) -> Result<Option<Self>, LoadError> {
        if config.post_login.is_empty() {
            return Ok(None);
        }
        let files: Vec<PathBuf> = config.post_login.iter().map(|p| config.resolve(p)).collect();
        let limits = Limits { timeout: config.timeout.0, memory: config.memory_limit.0 };
        let actions = Self {
            files,
            geoip_database: config.geoip_database.as_deref().map(|p| config.resolve(p)),
            current: RwLock::default(),
            limits,
            on_error: config.on_error,
            secrets: config.secret_values().map_err(|(name, message)| LoadError::Secret { name, message })?,
            versions: AtomicU64::new(1),
        };
        let loaded = actions.read_all()?;
        *actions.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(Some(actions))
    }

    /// Compiles every configured file without starting anything (`check-config`).
    pub fn check(config: &ActionsConfig) -> Result<(), LoadError> {
        Self::load(config).map(drop)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// `[actions.secrets]`, resolved: `event.secrets`.
    pub fn secrets(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.secrets
    }

    /// The sources in service.
    pub fn sources(&self) -> Arc<Vec<Arc<Source>>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).sources.clone()
    }

    /// `event.request.geoip` for the client address `ip`, when a database is configured and
    /// places it.
    pub fn geoip(&self, ip: &str) -> Option<serde_json::Value> {
        let geoip = self.current.read().unwrap_or_else(|p| p.into_inner()).geoip.clone()?;
        geoip.lookup(ip)
    }

    /// The Action files and the GeoIP database: what a change reloads.
    fn watched(&self) -> impl Iterator<Item = &PathBuf> {
        self.files.iter().chain(&self.geoip_database)
    }

    /// Reads the files again if any changed (or all of them when `force`): `Ok(true)` when a new
    /// set is in service. A set in which a file cannot be read or does not compile leaves the
    /// previous one in service (logged; the error is returned for the caller to count).
    pub fn reload(&self, force: bool) -> Result<bool, LoadError> {
        let before = self.current.read().unwrap_or_else(|p| p.into_inner()).modified.clone();
        if !force && self.watched().map(|f| modified(f)).eq(before.iter().copied()) {
            return Ok(false);
        }
        match self.read_all() {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
                tracing::info!(files = self.files.len(), "Actions reloaded");
                Ok(true)
            }
            Err(error) => {
                // Not tried again until a file changes again (or SIGHUP): one error per change.
                let stamps = self.watched().map(|f| modified(f)).collect();
                self.current.write().unwrap_or_else(|p| p.into_inner()).modified = stamps;
                tracing::error!(%error, "Actions not reloaded; the previous version stays in service");
                Err(error)
            }
        }
    }

    fn read_all(&self) -> Result<Loaded, LoadError> {
        let version = self.versions.fetch_add(1, Relaxed);
        let mut sources = Vec::with_capacity(self.files.len());
        let mut stamps = Vec::with_capacity(self.files.len());
        for file in &self.files {
            let name = file.display().to_string();
            stamps.push(modified(file));
            let text = std::fs::read_to_string(file)
                .map_err(|e| LoadError::Read { path: name.clone(), message: e.to_string() })?;
            let source = Source { name, version, text };
            js::check(&source, self.limits)?;
            sources.push(Arc::new(source));
        }
        let geoip = match &self.geoip_database {
            Some(path) => {
                stamps.push(modified(path));
                let opened = geoip::GeoIp::open(path);
                let message = |message| LoadError::GeoIp { path: path.display().to_string(), message };
                Some(Arc::new(opened.map_err(message)?))
            }
            None => None,
        };
        Ok(Loaded { sources: Arc::new(sources), geoip, modified: stamps })
    }

    /// The file names, for audit lines.
    pub fn names(&self) -> Vec<String> {
        self.sources().iter().map(|s| s.name.clone()).collect()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
