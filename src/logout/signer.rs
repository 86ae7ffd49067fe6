//! The logout-token signing key (CONTRACT §8): loaded from `[logout] key_file`, or generated into
//! `<data>/keys/logout-<alg>.pem` (mode 0600) on first start and reused afterwards; its `kid`
//! (the RFC 7638 SHA-256 thumbprint of its public JWK); and the JWKS that publishes it together
//! with the configured retired public keys.
//!
//! The private key never leaves this module and is never logged; errors name the file and the
//! config key, not the key's contents.

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk,
    JwkSet, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use serde::Serialize;

use super::config::{LogoutConfig, SigningAlg, TokenTyp};
use crate::options::ConfigError;

/// RS256 keys shorter than this are refused (CONTRACT §8).
pub const MIN_RSA_BITS: usize = 2048;

/// Why the signing key could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A configured file is unusable; the message names the key path.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("cannot generate the logout signing key: {0}")]
    Generate(String),
}

/// A private key and what the JWKS says about its public half.
struct KeyPair {
    encoding: EncodingKey,
    public: Jwk,
}

/// Signs logout tokens and publishes the keys that verify them.
pub struct LogoutSigner {
    algorithm: Algorithm,
    encoding: EncodingKey,
    kid: String,
    /// `{"keys":[current, retired…]}`, serialized once.
    jwks: String,
}

impl LogoutSigner {
    /// Loads the configured key (or the generated one in `data_dir`, creating it on first start)
    /// and the retired public keys.
    pub fn load(config: &LogoutConfig, data_dir: &Path) -> Result<Self, KeyError> {
        let pair = match &config.key_file {
            Some(path) => {
                let pem = read(path, "logout.key_file")?;
                parse_private(config.alg, &pem).map_err(|m| file_error("logout.key_file", path, m))?
            }
            None => generated(config.alg, data_dir)?,
        };
        let mut keys = vec![pair.public];
        keys.extend(retired_keys(config)?);
        let kid = keys[0].common.key_id.clone().unwrap_or_default();
        let jwks = serde_json::to_string(&JwkSet { keys }).map_err(|e| KeyError::Generate(e.to_string()))?;
        let algorithm = match config.alg {
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::Rs256 => Algorithm::RS256,
        };
        Ok(Self { algorithm, encoding: pair.encoding, kid, jwks })
    }

    /// What `check-config` can verify without a data directory: the configured key file and the
    /// retired keys parse and fit `[logout] alg`.
    pub fn check_files(config: &LogoutConfig) -> Result<(), ConfigError> {
        if let Some(path) = &config.key_file {
            let pem = read(path, "logout.key_file")?;
            parse_private(config.alg, &pem).map_err(|m| file_error("logout.key_file", path, m))?;
        }
        retired_keys(config).map(drop)
    }

    /// The RFC 7638 thumbprint of the current key, sent as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document served at `[logout] jwks_path`.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// A compact JWS over `claims` with header `{"typ","alg","kid"}`.
    pub fn sign<T: Serialize>(&self, typ: TokenTyp, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.algorithm);
        header.typ = Some(typ.as_str().to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }
}

fn read(path: &Path, key: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::key(key, format!("cannot read {}: {e}", path.display())))
}

fn file_error(key: &str, path: &Path, message: String) -> ConfigError {
    ConfigError::key(key, format!("{}: {message}", path.display()))
}

/// The generated key for `alg` in `<data_dir>/keys`, created if absent. Creation is
/// all-or-nothing (written aside, then linked into place), so a crash never leaves a torn key and
/// two processes starting together end up with the same one.
fn generated(alg: SigningAlg, data_dir: &Path) -> Result<KeyPair, KeyError> {
    let dir = data_dir.join("keys");
    let path = dir.join(format!("logout-{}.pem", alg.as_str().to_ascii_lowercase()));
    if !path.exists() {
        let pem = generate_pem(alg)?;
        crate::datadir::create_private(&path, pem.as_bytes())
            .map_err(|e| KeyError::Write { path: path.clone(), message: e.to_string() })?;
    }
    let pem = read(&path, "logout.key_file")?;
    Ok(parse_private(alg, &pem).map_err(|m| file_error("logout.key_file", &path, m))?)
}

fn generate_pem(alg: SigningAlg) -> Result<String, KeyError> {
    let mut rng = rand_core::OsRng;
    let pem = match alg {
        SigningAlg::Es256 => p256::SecretKey::random(&mut rng).to_pkcs8_pem(LineEnding::LF),
        SigningAlg::Rs256 => rsa::RsaPrivateKey::new(&mut rng, MIN_RSA_BITS)
            .map_err(|e| KeyError::Generate(e.to_string()))?
            .to_pkcs8_pem(LineEnding::LF),
    };
    pem.map(|p| p.to_string()).map_err(|e| KeyError::Generate(e.to_string()))
}

/// A PEM private key for `alg`: PKCS#8, or SEC1 (EC) / PKCS#1 (RSA).
fn parse_private(alg: SigningAlg, pem: &str) -> Result<KeyPair, String> {
    match alg {
        SigningAlg::Es256 => {
            let secret = p256::SecretKey::from_pkcs8_pem(pem)
                .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
                .map_err(|_| "not a P-256 private key in PEM (PKCS#8 or SEC1), as ES256 needs".to_owned())?;
            let der = secret.to_pkcs8_der().map_err(|e| e.to_string())?;
            Ok(KeyPair { encoding: EncodingKey::from_ec_der(der.as_bytes()), public: ec_jwk(&secret.public_key())? })
        }
        SigningAlg::Rs256 => {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                .map_err(|_| "not an RSA private key in PEM (PKCS#8 or PKCS#1), as RS256 needs".to_owned())?;
            let public = rsa_jwk(&key.to_public_key())?;
            let der = key.to_pkcs1_der().map_err(|e| e.to_string())?;
            Ok(KeyPair { encoding: EncodingKey::from_rsa_der(der.as_bytes()), public })
        }
    }
}

/// The retired public keys, each as a JWK.
fn retired_keys(config: &LogoutConfig) -> Result<Vec<Jwk>, ConfigError> {
    let mut keys = Vec::new();
    for (i, path) in config.retired_public_keys.iter().enumerate() {
        let key = format!("logout.retired_public_keys[{i}]");
        let pem = read(path, &key)?;
        keys.push(parse_public(&pem).map_err(|m| file_error(&key, path, m))?);
    }
    Ok(keys)
}

/// A PEM public key (SPKI, or PKCS#1 for RSA): P-256 or RSA.
fn parse_public(pem: &str) -> Result<Jwk, String> {
    if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
        return ec_jwk(&key);
    }
    match rsa::RsaPublicKey::from_public_key_pem(pem).or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem)) {
        Ok(key) => rsa_jwk(&key),
        Err(_) => Err("not a P-256 or RSA public key in PEM".to_owned()),
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn ec_jwk(key: &p256::PublicKey) -> Result<Jwk, String> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = key.to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err("the P-256 public key is the identity point".to_owned());
    };
    let parameters = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
        key_type: EllipticCurveKeyType::EC,
        curve: EllipticCurve::P256,
        x: b64(x),
        y: b64(y),
    });
    Ok(with_kid(parameters, KeyAlgorithm::ES256))
}

fn rsa_jwk(key: &rsa::RsaPublicKey) -> Result<Jwk, String> {
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(format!("the RSA key has {bits} bits; RS256 needs at least {MIN_RSA_BITS}"));
    }
    let parameters = AlgorithmParameters::RSA(RSAKeyParameters {
        key_type: RSAKeyType::RSA,
        n: b64(&key.n().to_bytes_be()),
        e: b64(&key.e().to_bytes_be()),
    });
    Ok(with_kid(parameters, KeyAlgorithm::RS256))
}

/// The JWK with `use`, `alg` and `kid` = its RFC 7638 thumbprint (which covers only the
/// required public members, so it is computed before the others are set).
fn with_kid(algorithm: AlgorithmParameters, alg: KeyAlgorithm) -> Jwk {
    let mut jwk = Jwk { common: CommonParameters::default(), algorithm };
    let kid = jwk.thumbprint(ThumbprintHash::SHA256);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(alg);
    jwk.common.key_id = Some(kid);
    jwk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = with_kid(
            AlgorithmParameters::RSA(RSAKeyParameters { key_type: RSAKeyType::RSA, n: n.into(), e: "AQAB".into() }),
            KeyAlgorithm::RS256,
        );
        assert_eq!(jwk.common.key_id.as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    #[test]
    fn generated_key_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogoutConfig::default();
        let first = LogoutSigner::load(&config, dir.path()).unwrap();
        let second = LogoutSigner::load(&config, dir.path()).unwrap();
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.kid().len(), 43, "base64url of a SHA-256 digest");
        let path = dir.path().join("keys/logout-es256.pem");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let jwks: serde_json::Value = serde_json::from_str(first.jwks_json()).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("EC"), Some("P-256")));
        assert_eq!((key["use"].as_str(), key["alg"].as_str()), (Some("sig"), Some("ES256")));
        assert_eq!(key["kid"].as_str(), Some(first.kid()));
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert!(key.get("d").is_none(), "no private member is published");
    }

    #[test]
    fn retired_keys_are_published_after_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = p256::SecretKey::random(&mut rand_core::OsRng);
        let old_pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(&old.public_key(), LineEnding::LF).unwrap();
        let old_path = dir.path().join("old.pub.pem");
        std::fs::write(&old_path, old_pem).unwrap();
        let config = LogoutConfig { retired_public_keys: vec![old_path], ..LogoutConfig::default() };
        let signer = LogoutSigner::load(&config, dir.path()).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(signer.jwks_json()).unwrap();
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0], signer.kid());
        assert_ne!(kids[1], kids[0]);
    }

    #[test]
    fn unusable_files_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a key").unwrap();
        let config = LogoutConfig { key_file: Some(garbage.clone()), ..LogoutConfig::default() };
        let error = LogoutSigner::check_files(&config).unwrap_err().to_string();
        assert!(error.starts_with("logout.key_file: ") && error.contains("not a P-256 private key"), "{error}");
        let config = LogoutConfig { retired_public_keys: vec![garbage], ..LogoutConfig::default() };
        let error = LogoutSigner::check_files(&config).unwrap_err().to_string();
        assert!(error.starts_with("logout.retired_public_keys[0]: "), "{error}");
        let config = LogoutConfig { key_file: Some(dir.path().join("missing.pem")), ..LogoutConfig::default() };
        assert!(LogoutSigner::check_files(&config).unwrap_err().to_string().contains("cannot read"));
    }
}
