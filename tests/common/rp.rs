//! A relying party for back-channel logout tests: HTTPS on loopback with its own rcgen certificate
//! (helloguard trusts it through `[logout] ca_file`), validating every logout token the way OIDC
//! Back-Channel Logout 1.0 §2.6 tells an RP to, independently of helloguard's signing code: the
//! signature against the JWKS fetched from helloguard (jsonwebtoken's decoder), `iss`, `aud`,
//! `iat`, `exp`, the `events` member, no `nonce`, `sid`, the header's `typ`.
//!
//! The URL path names what to expect: `/bcl/<client_id>` expects `aud` = client_id and
//! `typ` `logout+jwt`; a `?typ=JWT` query expects `typ` `JWT`. Answers follow a script (status
//! codes or a hang), then 200. A token that fails validation is answered 400, as §2.8 says.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::net::TcpListener;

pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How the RP answers a valid token.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Never answers (the connection stays open until helloguard gives up).
    Hang,
}

/// One POST the RP received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    /// The validated claims, or why validation failed.
    pub claims: Result<Value, String>,
    /// What the RP answered (0 for a hang).
    pub answered: u16,
}

impl Delivery {
    /// Validated and answered with success.
    pub fn accepted(&self) -> bool {
        self.claims.is_ok() && matches!(self.answered, 200 | 204)
    }

    pub fn sid(&self) -> Option<&str> {
        self.claims.as_ref().ok().and_then(|c| c["sid"].as_str())
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    /// Answer once the script is used up.
    then: Option<Answer>,
    jwks: Option<JwkSet>,
    received: Vec<Delivery>,
}

pub struct RelyingParty {
    pub addr: SocketAddr,
    /// The RP's certificate (PEM), for `[logout] ca_file`.
    pub ca_file: PathBuf,
    state: Arc<Mutex<State>>,
    _dir: tempfile::TempDir,
}

impl RelyingParty {
    /// Listening on 127.0.0.1, expecting tokens from `issuer`.
    pub async fn start(issuer: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let ca_file = dir.path().join("rp.crt");
        std::fs::write(&ca_file, generated.cert.pem()).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
        let chain = vec![CertificateDer::from(generated.cert.der().to_vec())];
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (served_state, served_issuer) = (state.clone(), issuer.to_owned());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let (acceptor, state, issuer) = (acceptor.clone(), served_state.clone(), served_issuer.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(socket).await else { return };
                    let service = service_fn(move |request| {
                        let (state, issuer) = (state.clone(), issuer.clone());
                        async move { Ok::<_, std::convert::Infallible>(receive(&state, &issuer, request).await) }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Self { addr, ca_file, state, _dir: dir }
    }

    /// The back-channel URL for `client_id` (with `?typ=JWT` when that client's header says JWT).
    pub fn url(&self, client_id: &str) -> String {
        format!("https://localhost:{}/bcl/{client_id}", self.addr.port())
    }

    /// Verify signatures against this JWKS (as fetched from helloguard).
    pub fn trust(&self, jwks_json: &[u8]) {
        self.state.lock().unwrap().jwks = Some(serde_json::from_slice(jwks_json).unwrap());
    }

    /// Answer the next valid tokens with `script`, then with `then` (200 when `None`).
    pub fn answer(&self, script: &[Answer], then: Option<Answer>) {
        let mut state = self.state.lock().unwrap();
        state.script = script.iter().copied().collect();
        state.then = then;
    }

    pub fn received(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits (polling, up to `limit`) until `done` holds for what was received; returns it.
    pub async fn wait_for(&self, limit: Duration, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "RP: condition not met within {limit:?}; received {received:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(state: &Mutex<State>, issuer: &str, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let expected_typ = if request.uri().query() == Some("typ=JWT") { "JWT" } else { "logout+jwt" };
    let form_encoded = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/x-www-form-urlencoded"));
    let is_post = request.method() == hyper::Method::POST;
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let token = form_urlencoded::parse(&body).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned());
    let audience = path.strip_prefix("/bcl/").unwrap_or_default().to_owned();
    let claims = {
        let jwks = state.lock().unwrap().jwks.clone();
        match (is_post, form_encoded, token, jwks) {
            (false, _, _, _) => Err("not a POST".to_owned()),
            (_, false, _, _) => Err("not application/x-www-form-urlencoded".to_owned()),
            (_, _, None, _) => Err("no logout_token parameter".to_owned()),
            (_, _, _, None) => Err("the RP has no JWKS yet".to_owned()),
            (_, _, Some(token), Some(jwks)) => validate(&token, &jwks, issuer, &audience, expected_typ),
        }
    };
    let answer = {
        let mut state = state.lock().unwrap();
        let answer = match &claims {
            Ok(_) => state.script.pop_front().or(state.then).unwrap_or(Answer::Status(200)),
            Err(_) => Answer::Status(400),
        };
        let answered = match answer {
            Answer::Status(code) => code,
            Answer::Hang => 0,
        };
        state.received.push(Delivery { path, claims, answered });
        answer
    };
    let status = match answer {
        Answer::Status(code) => code,
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            200
        }
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert("cache-control", "no-store".parse().unwrap());
    response
}

/// OIDC Back-Channel Logout 1.0 §2.6, steps 1–7 (no replay cache: the tests count `jti`s).
pub fn validate(token: &str, jwks: &JwkSet, issuer: &str, audience: &str, typ: &str) -> Result<Value, String> {
    // The header carries exactly alg, typ and kid.
    let header_part = token.split('.').next().unwrap_or_default();
    let header_json: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header_part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("undecodable header")?;
    let mut members: Vec<&str> =
        header_json.as_object().ok_or("header not an object")?.keys().map(String::as_str).collect();
    members.sort_unstable();
    if members != ["alg", "kid", "typ"] {
        return Err(format!("header members {members:?}"));
    }
    if header_json["typ"] != typ {
        return Err(format!("typ {} (expected {typ})", header_json["typ"]));
    }
    let algorithm = match header_json["alg"].as_str() {
        Some("ES256") => Algorithm::ES256,
        Some("RS256") => Algorithm::RS256,
        other => return Err(format!("alg {other:?}")),
    };
    let kid = header_json["kid"].as_str().ok_or("no kid")?;
    let jwk = jwks.find(kid).ok_or_else(|| format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("JWK: {e}"))?;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "iat"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| format!("JWT: {e}"))?.claims;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let iat = claims["iat"].as_i64().ok_or("iat not an integer")?;
    if iat > now + 60 || iat < now - 300 {
        return Err(format!("iat {iat} too far from now {now}"));
    }
    if claims["exp"].as_i64() != Some(iat + 120) {
        return Err(format!("exp {} is not iat + 120", claims["exp"]));
    }
    if !claims["aud"].is_string() {
        return Err("aud is not a string".to_owned());
    }
    if claims["events"][EVENT] != serde_json::json!({}) {
        return Err(format!("events {}", claims["events"]));
    }
    if claims.get("nonce").is_some() {
        return Err("nonce present".to_owned());
    }
    if !claims["sid"].as_str().is_some_and(|s| s.starts_with("ses_")) {
        return Err(format!("sid {}", claims["sid"]));
    }
    if claims.get("sub").is_some_and(|s| !s.is_string()) {
        return Err(format!("sub {}", claims["sub"]));
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err("no jti".to_owned());
    }
    if !claims["trace_id"].as_str().is_some_and(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(format!("trace_id {}", claims["trace_id"]));
    }
    if claims.get("session_metadata").is_some_and(|m| !m.is_object() || m.as_object().is_some_and(|o| o.is_empty())) {
        return Err(format!("session_metadata {}", claims["session_metadata"]));
    }
    Ok(claims)
}
