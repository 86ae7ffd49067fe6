//! The keys that verify bearer tokens: the configured `[[api.keys]]` files (PEM public keys, HS256
//! secret files, JWKS files) plus the local management key, each bound to exactly one algorithm.
//!
//! A key is usable only with its own algorithm, so an HS256 token can never be checked against an
//! RSA or EC public key (algorithm confusion), and nothing accepts `alg: none`.

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::SubjectPublicKeyInfoDer;

use super::options::{ApiKeyConfig, ApiKeyKind};
use crate::options::ConfigError;

/// HS256 secrets shorter than this are refused (CONTRACT §6.1).
pub const MIN_SECRET_LEN: usize = 32;

/// DER of the OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the OID 1.2.840.10045.2.1 (id-ecPublicKey).
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of the OID 1.2.840.113549.1.1.1 (rsaEncryption).
const RSA_OID: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// One verification key and the only algorithm it verifies.
pub struct VerifyingKey {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub key: DecodingKey,
}

/// Every key bearer tokens may be signed with.
pub struct Keyring {
    keys: Vec<VerifyingKey>,
}

impl Keyring {
    /// The local key first, then each configured file in order.
    pub fn load(configured: &[ApiKeyConfig], local: VerifyingKey) -> Result<Self, ConfigError> {
        let mut keys = vec![local];
        for (i, entry) in configured.iter().enumerate() {
            let path = format!("api.keys[{i}]");
            keys.extend(load_entry(entry).map_err(|message| ConfigError::Key { path, message })?);
        }
        Ok(Self { keys })
    }

    /// The keys to try for a token with this header: those of the token's algorithm whose `kid`
    /// equals the token's; when none has it (or the token names none), those without a `kid`
    /// (and, for a token without `kid`, every key of that algorithm).
    pub fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Vec<&VerifyingKey> {
        let of_alg = || self.keys.iter().filter(move |k| k.alg == alg);
        let Some(kid) = kid else {
            return of_alg().collect();
        };
        let named: Vec<_> = of_alg().filter(|k| k.kid.as_deref() == Some(kid)).collect();
        if named.is_empty() {
            of_alg().filter(|k| k.kid.is_none()).collect()
        } else {
            named
        }
    }
}

fn load_entry(entry: &ApiKeyConfig) -> Result<Vec<VerifyingKey>, String> {
    let bytes = read(&entry.path)?;
    match entry.kind {
        ApiKeyKind::Pem => {
            let (alg, key) = public_key_from_pem(&bytes)?;
            Ok(vec![VerifyingKey { alg, kid: entry.kid.clone(), key }])
        }
        ApiKeyKind::Hs256 => {
            let secret = secret_from_file(&bytes)?;
            Ok(vec![VerifyingKey {
                alg: Algorithm::HS256,
                kid: entry.kid.clone(),
                key: DecodingKey::from_secret(secret),
            }])
        }
        ApiKeyKind::Jwks => keys_from_jwks(&bytes),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// An EC P-256 (ES256) or RSA (RS256) public key, as `BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`.
fn public_key_from_pem(bytes: &[u8]) -> Result<(Algorithm, DecodingKey), String> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("PRIVATE KEY-----") {
        return Err("holds a private key; configure the public key only".to_owned());
    }
    if text.contains("-----BEGIN RSA PUBLIC KEY-----") {
        let key = DecodingKey::from_rsa_pem(bytes).map_err(|e| format!("not a valid RSA public key: {e}"))?;
        return Ok((Algorithm::RS256, key));
    }
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(bytes)
        .map_err(|_| "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)".to_owned())?;
    let der: &[u8] = spki.as_ref();
    if contains(der, EC_PUBLIC_KEY_OID) {
        if !contains(der, P256_OID) {
            return Err("EC public key on a curve other than P-256; only ES256 is supported".to_owned());
        }
        let key = DecodingKey::from_ec_pem(bytes).map_err(|e| format!("not a valid EC public key: {e}"))?;
        return Ok((Algorithm::ES256, key));
    }
    if contains(der, RSA_OID) {
        let key = DecodingKey::from_rsa_pem(bytes).map_err(|e| format!("not a valid RSA public key: {e}"))?;
        return Ok((Algorithm::RS256, key));
    }
    Err("public key is neither EC P-256 nor RSA".to_owned())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The file's bytes without one trailing newline, at least [`MIN_SECRET_LEN`] long, and not a
/// PEM document (which would mean a public key was configured as a secret).
fn secret_from_file(bytes: &[u8]) -> Result<&[u8], String> {
    let secret = bytes.strip_suffix(b"\n").map_or(bytes, |s| s.strip_suffix(b"\r").unwrap_or(s));
    if secret.starts_with(b"-----BEGIN") {
        return Err("holds a PEM document, not an HS256 secret; use kind = \"pem\" for public keys".to_owned());
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!("HS256 secret is {} bytes; at least {MIN_SECRET_LEN} are required", secret.len()));
    }
    Ok(secret)
}

/// Every signing key of a JWKS that is ES256 (P-256), RS256 or HS256 (`oct`, ≥ 32 bytes). Keys
/// marked `use: enc` and keys of other algorithms are skipped; a set with no usable key is an
/// error.
fn keys_from_jwks(bytes: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        let inferred = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Some(Algorithm::ES256),
            AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
            AlgorithmParameters::OctetKey(_) => Some(Algorithm::HS256),
            _ => None,
        };
        let declared = jwk.common.key_algorithm.map(|a| match a {
            KeyAlgorithm::ES256 => Some(Algorithm::ES256),
            KeyAlgorithm::RS256 => Some(Algorithm::RS256),
            KeyAlgorithm::HS256 => Some(Algorithm::HS256),
            _ => None,
        });
        let alg = match (inferred, declared) {
            (Some(alg), None) => alg,
            (Some(alg), Some(Some(declared))) if declared == alg => alg,
            _ => {
                tracing::warn!(key = i, kid = ?jwk.common.key_id, "JWKS key skipped: not ES256, RS256 or HS256");
                continue;
            }
        };
        if let AlgorithmParameters::OctetKey(oct) = &jwk.algorithm {
            let len = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &oct.value)
                .map_err(|_| format!("key {i}: `k` is not base64url"))?
                .len();
            if len < MIN_SECRET_LEN {
                return Err(format!("key {i}: HS256 secret is {len} bytes; at least {MIN_SECRET_LEN} are required"));
            }
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {i}: {e}"))?;
        keys.push(VerifyingKey { alg, kid: jwk.common.key_id.clone(), key });
    }
    if keys.is_empty() {
        return Err("the JWKS has no ES256, RS256 or HS256 signing key".to_owned());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> VerifyingKey {
        VerifyingKey { alg: Algorithm::HS256, kid: Some("local".into()), key: DecodingKey::from_secret(b"x") }
    }

    #[test]
    fn secrets_must_be_long_and_not_pem() {
        assert_eq!(secret_from_file(&[b'a'; 32]).map(<[u8]>::len), Ok(32));
        assert_eq!(secret_from_file(b"0123456789abcdef0123456789abcdef\r\n").map(<[u8]>::len), Ok(32));
        assert!(secret_from_file(&[b'a'; 31]).unwrap_err().contains("31 bytes"));
        assert!(secret_from_file(b"-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n")
            .unwrap_err()
            .contains("kind = \"pem\""));
    }

    #[test]
    fn kid_selects_and_unnamed_keys_are_the_fallback() {
        let ring = Keyring {
            keys: vec![
                local(),
                VerifyingKey { alg: Algorithm::HS256, kid: None, key: DecodingKey::from_secret(b"y") },
                VerifyingKey { alg: Algorithm::RS256, kid: Some("local".into()), key: DecodingKey::from_secret(b"z") },
            ],
        };
        let kids = |alg, kid| ring.candidates(alg, kid).iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        assert_eq!(kids(Algorithm::HS256, Some("local")), [Some("local".to_owned())]);
        assert_eq!(kids(Algorithm::HS256, Some("other")), [None]);
        assert_eq!(kids(Algorithm::HS256, None), [Some("local".to_owned()), None]);
        assert!(kids(Algorithm::ES256, None).is_empty());
    }

    #[test]
    fn jwks_without_usable_keys_is_an_error() {
        let error = keys_from_jwks(br#"{"keys":[{"kty":"oct","k":"c2hvcnQ"}]}"#).err().unwrap();
        assert!(error.contains("at least 32"), "{error}");
        assert!(keys_from_jwks(br#"{"keys":[]}"#).err().unwrap().contains("no ES256"));
        assert!(keys_from_jwks(b"[]").err().unwrap().starts_with("not a JWKS document"));
    }
}
