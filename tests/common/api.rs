//! Management API test support: key files the proxy is configured with, bearer tokens signed here
//! with `jsonwebtoken` (independently of the server's verifier), an HTTPS/HTTP client, and records
//! seeded straight into the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use helloguard::config::{ApiKeyConfig, ApiKeyKind, Config};
use helloguard::session::{Device, Lifetimes, RefreshToken, Session, Store, Timestamp};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use super::client;
use super::proxy::Running;

/// Every scope, canonical names.
pub const ALL_SCOPES: &str = "read:sessions update:sessions delete:sessions read:refresh_tokens \
                              update:refresh_tokens delete:refresh_tokens";

/// Keys made for one test: an HS256 secret (kid `hs`), an RSA key (kid `rsa`) and an EC P-256
/// key (no kid), each written where `[[api.keys]]` can name it.
pub struct Keys {
    dir: tempfile::TempDir,
    pub hs_secret: Vec<u8>,
    pub rsa_private_pem: String,
    pub rsa_public_pem: String,
    pub ec_private_pem: String,
}

impl Keys {
    pub fn generate() -> Self {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let dir = tempfile::tempdir().unwrap();
        let hs_secret: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let rsa_private_pem = rsa.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let rsa_public_pem = rsa.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(dir.path().join("hs.secret"), &hs_secret).unwrap();
        std::fs::write(dir.path().join("rsa.pem"), &rsa_public_pem).unwrap();
        std::fs::write(dir.path().join("ec.pem"), ec.public_key_pem()).unwrap();
        Self { dir, hs_secret, rsa_private_pem, rsa_public_pem, ec_private_pem: ec.serialize_pem() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds the three keys to `[api] keys`.
    pub fn configure(&self, config: &mut Config) {
        let entry = |kind, name: &str, kid: Option<&str>| ApiKeyConfig {
            kind,
            path: self.path(name),
            kid: kid.map(str::to_owned),
        };
        config.api.keys = vec![
            entry(ApiKeyKind::Hs256, "hs.secret", Some("hs")),
            entry(ApiKeyKind::Pem, "rsa.pem", Some("rsa")),
            entry(ApiKeyKind::Pem, "ec.pem", None),
        ];
    }

    /// A token signed with one of the keys; `claims` are used as given.
    pub fn sign(&self, alg: Algorithm, claims: &Value) -> String {
        let (key, kid) = match alg {
            Algorithm::HS256 => (EncodingKey::from_secret(&self.hs_secret), Some("hs")),
            Algorithm::RS256 => (EncodingKey::from_rsa_pem(self.rsa_private_pem.as_bytes()).unwrap(), Some("rsa")),
            Algorithm::ES256 => (EncodingKey::from_ec_pem(self.ec_private_pem.as_bytes()).unwrap(), None),
            other => panic!("no test key for {other:?}"),
        };
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    /// An RS256 token (the usual test credential) granting `scope`.
    pub fn token(&self, scope: &str) -> String {
        self.sign(Algorithm::RS256, &claims(scope))
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Valid claims for the default audience, one hour to live.
pub fn claims(scope: &str) -> Value {
    json!({"sub": "tester", "aud": "helloguard-management", "iat": unix_now(), "exp": unix_now() + 3600,
           "scope": scope})
}

/// A compact JWS made from raw parts: for headers no honest library would produce.
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Where to send API requests.
#[derive(Clone)]
pub enum Target {
    Tls { addr: SocketAddr, root: CertificateDer<'static> },
    Plain { addr: SocketAddr },
}

impl Target {
    /// The proxy listener of a running proxy.
    pub fn proxy(running: &Running) -> Self {
        Self::Tls { addr: running.addr, root: running.root.clone() }
    }
}

/// An answer, with the body as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error answer of CONTRACT §6.5 and returns its message.
    #[track_caller]
    pub fn error(&self, status: u16, error_code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(self.json["statusCode"], status, "{}", self.json);
        assert_eq!(self.json["errorCode"], error_code, "{}", self.json);
        assert!(self.json["error"].is_string(), "{}", self.json);
        self.json["message"].as_str().unwrap().to_owned()
    }
}

/// One request: `token` as a bearer credential, `body` as JSON (`Content-Type: application/json`)
/// unless `headers` set the content type.
pub async fn call(
    target: &Target,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut builder = Request::builder().method(method).uri(path).header("host", "localhost");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if !body.is_empty() && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = match target {
        Target::Plain { addr } => {
            let stream = TcpStream::connect(addr).await.unwrap();
            send(TokioIo::new(stream), request).await
        }
        Target::Tls { addr, root } => {
            let target = client::Target { addr: *addr, roots: std::slice::from_ref(root), server_name: "localhost" };
            let connected = client::connect(&target, client::Client::Default, None).await.unwrap();
            send(TokioIo::new(connected.tls), request).await
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Answer { status, headers, body, json }
}

async fn send<T>(io: TokioIo<T>, request: Request<Full<Bytes>>) -> hyper::Response<hyper::body::Incoming>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    sender.send_request(request).await.unwrap()
}

/// A live session with a user, created `age_ms` milliseconds ago.
pub async fn seed_session(store: &std::sync::Arc<dyn Store>, id: &str, user_id: Option<&str>, age_ms: i64) -> Session {
    let created = Timestamp(Timestamp::now().millis() - age_ms);
    let device = Device::new(Some("203.0.113.7".into()), Some("test-agent/1.0".into()));
    let mut session = Session::new(id.to_owned(), created, Lifetimes::default(), device);
    session.user_id = user_id.map(str::to_owned);
    store.create_session(&session).await.unwrap();
    session
}

/// A live refresh token of a user, on a session, created `age_ms` milliseconds ago.
pub async fn seed_token(
    store: &std::sync::Arc<dyn Store>,
    id: &str,
    user_id: Option<&str>,
    session_id: Option<&str>,
    age_ms: i64,
) -> RefreshToken {
    let created = Timestamp(Timestamp::now().millis() - age_ms);
    let device = Device::new(Some("203.0.113.8".into()), None);
    let mut token = RefreshToken::new(id.to_owned(), created, Lifetimes::default(), device);
    token.user_id = user_id.map(str::to_owned);
    token.session_id = session_id.map(str::to_owned);
    token.client_id = Some("web".to_owned());
    store.create_refresh_token(&token).await.unwrap();
    token
}
