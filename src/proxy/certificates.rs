//! The certificates the listener serves: a default one and one per SNI name (`[[tls.certificates]]`),
//! chosen in the handshake by the client's server name, and reloaded without a restart.
//!
//! Every `tls.reload_interval` the PEM files' modification times and sizes are compared with the
//! loaded ones; a changed pair is loaded again, and SIGHUP reloads every pair. A file that does not
//! load (unreadable, no certificate, no key, key not matching the certificate) keeps the old
//! certificate in service and is logged as an error; the next change is tried again. Replace files
//! by writing elsewhere and renaming, so a reader never sees half a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::metrics::Metrics;
use super::tls::{Identity, TlsError};

/// What identifies a version of a file on disk.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// One certificate/key pair and the names it serves (empty: the default).
struct Source {
    names: Vec<String>,
    cert: PathBuf,
    key: PathBuf,
    loaded: Mutex<(Stamp, Stamp)>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Source {
    fn load(names: Vec<String>, cert: PathBuf, key: PathBuf) -> Result<Self, TlsError> {
        let stamps = (stamp(&cert), stamp(&key));
        let certified = certified_key(&cert, &key)?;
        Ok(Self { names, cert, key, loaded: Mutex::new(stamps), current: RwLock::new(certified) })
    }

    /// Load again if `force` or the files changed. `Some(result)` when a load was tried.
    fn reload(&self, force: bool) -> Option<Result<(), TlsError>> {
        let stamps = (stamp(&self.cert), stamp(&self.key));
        let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !force && *loaded == stamps {
            return None;
        }
        // Remember the attempt either way: a broken file is reported once, not at every poll.
        *loaded = stamps;
        Some(certified_key(&self.cert, &self.key).map(|certified| {
            *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = certified;
        }))
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let identity = Identity::from_pem_files(cert, key)?;
    let provider = rustls::crypto::ring::default_provider();
    Ok(Arc::new(CertifiedKey::from_der(identity.chain, identity.key, &provider)?))
}

/// The resolver rustls asks for a certificate in each handshake.
pub struct Certificates {
    default: Source,
    by_name: Vec<Source>,
    /// Lowercase server name (or `*.suffix`) → index in `by_name`.
    index: HashMap<String, usize>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("names", &self.index.keys().collect::<Vec<_>>()).finish()
    }
}

/// A `[[tls.certificates]]` entry, resolved.
pub struct NamedPair {
    pub server_names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certificates {
    /// Load the default pair and every named pair; any failure here stops the start.
    pub fn load(default: (PathBuf, PathBuf), named: Vec<NamedPair>, metrics: Arc<Metrics>) -> Result<Self, TlsError> {
        let default = Source::load(Vec::new(), default.0, default.1)?;
        let mut by_name = Vec::with_capacity(named.len());
        let mut index = HashMap::new();
        for pair in named {
            let names: Vec<String> = pair.server_names.iter().map(|n| n.to_ascii_lowercase()).collect();
            for name in &names {
                index.insert(name.clone(), by_name.len());
            }
            by_name.push(Source::load(names, pair.cert, pair.key)?);
        }
        Ok(Self { default, by_name, index, metrics })
    }

    /// SHA-256 (hex) of the default leaf certificate.
    pub fn default_sha256(&self) -> String {
        use ring::digest::{digest, SHA256};
        self.default.current().cert.first().map(|c| hex::encode(digest(&SHA256, c.as_ref()))).unwrap_or_default()
    }

    /// The pair serving `server_name`: exact name, then `*.` + its parent, then the default.
    fn source_for(&self, server_name: Option<&str>) -> &Source {
        let found = server_name.map(str::to_ascii_lowercase).and_then(|name| {
            let wildcard = name.split_once('.').map(|(_, parent)| format!("*.{parent}"));
            self.index.get(&name).or_else(|| wildcard.and_then(|w| self.index.get(&w)))
        });
        found.and_then(|&i| self.by_name.get(i)).unwrap_or(&self.default)
    }

    /// Reload changed pairs (every pair when `force`, as on SIGHUP); logs and counts each attempt.
    pub fn reload(&self, force: bool) {
        for source in std::iter::once(&self.default).chain(&self.by_name) {
            let names = if source.names.is_empty() { "(default)".to_owned() } else { source.names.join(",") };
            match source.reload(force) {
                None => {}
                Some(Ok(())) => {
                    self.metrics.certificate_reloads.fetch_add(1, Relaxed);
                    tracing::info!(server_names = names, cert = %source.cert.display(), "certificate reloaded");
                }
                Some(Err(error)) => {
                    self.metrics.certificate_reload_failures.fetch_add(1, Relaxed);
                    tracing::error!(
                        server_names = names,
                        %error,
                        "certificate not reloaded; the previous one stays in service"
                    );
                }
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.source_for(hello.server_name()).current())
    }
}
