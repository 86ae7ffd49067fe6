//! The local management key: an ES256 (P-256) key generated into the data directory on first use
//! (`<data>/keys/management-es256.pem`, mode 0600), distinct from the logout key and never
//! published. `helloguard token` signs with it; the API always trusts it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use super::keys::VerifyingKey;

/// Where the key lives, relative to the data directory.
pub const KEY_FILE: &str = "keys/management-es256.pem";

/// Why the key could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum ManagementKeyError {
    #[error("management key {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("management key {path}: not an EC P-256 private key in PKCS#8 PEM")]
    Invalid { path: PathBuf },
    #[error("cannot sign a management token: {0}")]
    Sign(String),
}

/// The loaded key: the private half for signing, the public coordinates for verifying.
pub struct ManagementKey {
    signing: EncodingKey,
    x: String,
    y: String,
    /// RFC 7638 thumbprint of the public key: the `kid` of every token it signs.
    kid: String,
}

/// What a minted token says (CONTRACT §6.1).
pub struct TokenRequest<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub subject: &'a str,
    pub scopes: &'a [&'a str],
    pub ttl_seconds: u64,
    /// Unix seconds.
    pub issued_at: u64,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    scope: String,
}

impl ManagementKey {
    /// Reads the key from `data_dir`, generating it first if absent. Two processes starting at
    /// once end up with the same key: the file appears atomically and the loser reads it.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, ManagementKeyError> {
        let path = data_dir.join(KEY_FILE);
        let io = |error| ManagementKeyError::Io { path: path.clone(), error };
        if !path.exists() {
            create(&path).map_err(io)?;
        }
        let pem = std::fs::read_to_string(&path).map_err(io)?;
        Self::from_pem(&pem).ok_or(ManagementKeyError::Invalid { path })
    }

    fn from_pem(pem: &str) -> Option<Self> {
        let pair = rcgen::KeyPair::from_pem(pem).ok()?;
        if !pair.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256) {
            return None;
        }
        // An uncompressed P-256 point: 0x04 ‖ X (32 bytes) ‖ Y (32 bytes).
        let point = pair.public_key_raw();
        let (x, y) = match point {
            [0x04, coordinates @ ..] if coordinates.len() == 64 => coordinates.split_at(32),
            _ => return None,
        };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let signing = EncodingKey::from_ec_pem(pem.as_bytes()).ok()?;
        let kid = thumbprint(&x, &y);
        Some(Self { signing, x, y, kid })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, for the API's keyring.
    pub fn verifying_key(&self) -> Result<VerifyingKey, ManagementKeyError> {
        let key =
            DecodingKey::from_ec_components(&self.x, &self.y).map_err(|e| ManagementKeyError::Sign(e.to_string()))?;
        Ok(VerifyingKey { alg: Algorithm::ES256, kid: Some(self.kid.clone()), key })
    }

    /// A signed JWT: `iss`, `sub`, `aud`, `iat`, `exp` = `iat` + ttl, a fresh `jti`, `scope`.
    pub fn mint(&self, request: &TokenRequest<'_>) -> Result<String, ManagementKeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let claims = Claims {
            iss: request.issuer,
            sub: request.subject,
            aud: request.audience,
            iat: request.issued_at,
            exp: request.issued_at.saturating_add(request.ttl_seconds),
            jti: uuid_v4()?,
            scope: request.scopes.join(" "),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing).map_err(|e| ManagementKeyError::Sign(e.to_string()))
    }
}

/// RFC 7638: SHA-256 of the canonical JWK members in lexicographic order, base64url.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

fn uuid_v4() -> Result<String, ManagementKeyError> {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).map_err(|_| ManagementKeyError::Sign("no system randomness".to_owned()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// Writes a new key to a private temporary file, then links it into place; if another process
/// won the race, its key stays and ours is discarded.
fn create(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(std::io::Error::other)?;
    let mut suffix = [0u8; 8];
    SystemRandom::new().fill(&mut suffix).map_err(|_| std::io::Error::other("no system randomness"))?;
    let temporary = dir.join(format!(".management-es256.{}.tmp", hex::encode(suffix)));
    let written = write_private(&temporary, pair.serialize_pem().as_bytes());
    let linked = written.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&temporary);
    linked
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_reloaded_identically() {
        let dir = tempfile::tempdir().unwrap();
        let first = ManagementKey::load_or_create(dir.path()).unwrap();
        let second = ManagementKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.kid(), second.kid(), "the second call reads the same key");
        assert_eq!(first.kid().len(), 43, "a base64url SHA-256");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("keys")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files are left behind");
    }

    #[test]
    fn a_file_that_is_not_a_p256_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let error = ManagementKey::load_or_create(dir.path()).err().unwrap();
        assert!(error.to_string().ends_with("not an EC P-256 private key in PKCS#8 PEM"), "{error}");
    }

    #[test]
    fn uuids_are_version_4() {
        let id = uuid_v4().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }
}
