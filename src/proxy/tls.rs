//! TLS material for the listener: PEM files from the config, or a self-signed certificate for
//! localhost/127.0.0.1 generated into the data directory on first run and reused afterwards.
//!
//! The private key file is written with mode 0600 and never logged; only the certificate's SHA-256
//! is printed, so a user can pin it (`curl --pinnedpubkey` or compare in a browser).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCert;
use rustls::ServerConfig;

use crate::datadir::{create_private, Created};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("{path}: no certificate found in the PEM file")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no private key found in the PEM file")]
    NoKey { path: PathBuf },
    #[error("the certificate and key do not match or are not supported: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

/// A certificate chain and its key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Load a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| TlsError::Read { path: path.to_owned(), message: e.to_string() })
        };
        let cert_pem = read(cert)?;
        let chain: Vec<_> = CertificateDer::pem_slice_iter(&cert_pem).filter_map(Result::ok).collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: cert.to_owned() });
        }
        let key_pem = read(key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey { path: key.to_owned() })?;
        Ok(Self { chain, key })
    }
}

/// The self-signed certificate and key files in `data_dir` (`tls/self-signed.crt` and `.key`),
/// generated on first use.
pub fn self_signed_files(data_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let write_err = |path: &Path, e: std::io::Error| TlsError::Write { path: path.to_owned(), message: e.to_string() };
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let generated = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let pem = generated.signing_key.serialize_pem();
    match create_private(&key, pem.as_bytes()).map_err(|e| write_err(&key, e))? {
        Created::New => {
            create_private(&cert, generated.cert.pem().as_bytes()).map_err(|e| write_err(&cert, e))?;
        }
        // Another process starting at the same time made the key: its certificate follows.
        Created::Existing => {
            for _ in 0..100 {
                if cert.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    Ok((cert, key))
}

/// A rustls server config offering h2 and http/1.1, TLS 1.2 and 1.3, with certificates from
/// `certificates` (see [`super::certificates`]).
pub fn server_config(certificates: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed_files(dir.path()).unwrap();
        let first = std::fs::read(&cert).unwrap();
        assert_eq!(self_signed_files(dir.path()).unwrap(), (cert.clone(), key.clone()));
        assert_eq!(std::fs::read(&cert).unwrap(), first, "reused, not generated again");
        assert_eq!(Identity::from_pem_files(&cert, &key).unwrap().chain.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tls/self-signed.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "not pem").unwrap();
        let err = Identity::from_pem_files(&cert, &dir.path().join("missing.pem")).err().unwrap();
        assert!(err.to_string().contains("no certificate found"), "{err}");
    }
}
