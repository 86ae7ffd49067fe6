//! The local management key: an ES256 (P-256) key generated into the data directory on first use
//! (`<data>/keys/management-es256.pem`, mode 0600), distinct from the logout key and never
//! published. `helloguard token` signs with it; the API always trusts it.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
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
            jti: uuid::Uuid::new_v4().to_string(),
            scope: request.scopes.join(" "),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing).map_err(|e| ManagementKeyError::Sign(e.to_string()))
    }
}

/// The RFC 7638 SHA-256 thumbprint of the public P-256 key (x, y base64url).
fn thumbprint(x: &str, y: &str) -> String {
    use jsonwebtoken::jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk,
        ThumbprintHash,
    };
    let parameters = EllipticCurveKeyParameters {
        key_type: EllipticCurveKeyType::EC,
        curve: EllipticCurve::P256,
        x: x.to_owned(),
        y: y.to_owned(),
    };
    let jwk = Jwk { common: CommonParameters::default(), algorithm: AlgorithmParameters::EllipticCurve(parameters) };
    jwk.thumbprint(ThumbprintHash::SHA256)
}

/// Writes a new key into place, unless another process created it first (its key then stays).
fn create(path: &Path) -> std::io::Result<()> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(std::io::Error::other)?;
    crate::datadir::create_private(path, pair.serialize_pem().as_bytes()).map(drop)
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
}
