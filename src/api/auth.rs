//! Bearer-token authentication (CONTRACT §6.1): the `Authorization` header, the JWT's header
//! (`alg` ∈ ES256/RS256/HS256, `kid`), its signature against the [`Keyring`], then its claims
//! (`aud` contains the audience, `exp` required, `nbf`, `iss` when configured, 60 s leeway).
//!
//! The token itself is never logged or kept; what survives a request is its subject, its scopes
//! and its SHA-256 (the rate limiter's key).

use hyper::header::{HeaderMap, AUTHORIZATION};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::errors::{ApiError, TokenProblem};
use super::keys::Keyring;
use super::scopes::Granted;

/// Clock skew tolerated for `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 60;

/// Who made an authenticated request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's `sub`, for the `api_write` audit event.
    pub subject: Option<String>,
    pub scopes: Granted,
    /// SHA-256 of the token's signed part (header and claims, without the signature): the rate
    /// limiter's key. ECDSA signatures are malleable (a token's high-S twin verifies too), so a key
    /// over the whole token would give each token two buckets.
    pub token_hash: [u8; 32],
}

/// Verifies bearer tokens against the keyring and the configured audience and issuer.
pub struct Verifier {
    keyring: Keyring,
    audience: String,
    issuer: Option<String>,
}

impl Verifier {
    pub fn new(keyring: Keyring, audience: String, issuer: Option<String>) -> Self {
        Self { keyring, audience, issuer }
    }

    /// The principal of a request, or the 401 to answer.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let token = bearer_token(headers).ok_or(ApiError::MissingAuthentication)?;
        let claims = self.verify(token).map_err(ApiError::InvalidToken)?;
        let scope = claims.get("scope").and_then(Value::as_str);
        let permissions: Vec<String> = claims
            .get("permissions")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let signed = token.rsplit_once('.').map_or(token, |(signed, _signature)| signed);
        let digest = ring::digest::digest(&ring::digest::SHA256, signed.as_bytes());
        let mut token_hash = [0u8; 32];
        token_hash.copy_from_slice(digest.as_ref());
        Ok(Principal {
            subject: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
            scopes: Granted::new(scope, &permissions),
            token_hash,
        })
    }

    /// The verified claims. Keys are tried in the keyring's order; a key whose signature matches
    /// decides the outcome (its claims are then checked), so "bad signature" means no key of the
    /// token's algorithm matched.
    fn verify(&self, token: &str) -> Result<serde_json::Map<String, Value>, TokenProblem> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenProblem::Invalid)?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256 | Algorithm::HS256) {
            return Err(TokenProblem::Invalid);
        }
        let candidates = self.keyring.candidates(header.alg, header.kid.as_deref());
        if candidates.is_empty() {
            return Err(TokenProblem::Invalid);
        }
        let validation = self.validation(header.alg);
        for candidate in candidates {
            match jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &candidate.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(error) => match error.kind() {
                    ErrorKind::InvalidSignature => continue,
                    ErrorKind::ExpiredSignature => return Err(TokenProblem::Expired),
                    _ => return Err(TokenProblem::Invalid),
                },
            }
        }
        Err(TokenProblem::BadSignature)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        let mut required = vec!["exp", "aud"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

/// The credentials of `Authorization: Bearer <token>` (scheme case-insensitive), if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials_only() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.parse().unwrap());
            bearer_token(&headers).map(str::to_owned)
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer   abc ").as_deref(), Some("abc"));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Bearer"), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
