//! A permissive login service for the attack tests: it reads requests the way popular frameworks
//! do, each time the reading furthest from helloguard's, and records what it read.
//!
//! - routes: percent-decoded, dot segments resolved, `//` merged, trailing `/` ignored, any case
//!   (Express's defaults, and more);
//! - cookies: every `Cookie` field, split on `;` and `,`, names trimmed, case-folded and
//!   percent-decoded, values trimmed, unquoted and percent-decoded, the last duplicate winning;
//! - parameters: from the query string and the body (form, JSON, multipart), names compared
//!   ignoring case and `[]`, the last one winning; gzip and deflate bodies inflated; a JSON body may
//!   start with a BOM, and any media type containing `json` is read as JSON;
//! - header names folded CGI-style (`helloguard_decision` and `helloguard-decision` are the same
//!   `HTTP_HELLOGUARD_DECISION`), every value kept.
//!
//! It is a working login service: `POST /login` (a live session cookie logs in again, else
//! `username` creates one), `POST /oauth/token` (`password` and `refresh_token` grants, rotating),
//! `POST /logout`, `GET /ws` (a `101` that also carries helloguard's consumed headers), and an echo
//! of the reading for anything else.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::upstream::{full, serve, UpstreamBody};

/// What the service read from one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The route it routed to: `login`, `token`, `logout`, `ws` or `other`.
    pub route: &'static str,
    /// The session cookie's value as it read it.
    pub session_cookie: Option<String>,
    /// The user a live session cookie named.
    pub session_user: Option<String>,
    /// The refresh token of a `refresh_token` grant as it read it, and whether it exchanged it.
    pub refresh_token: Option<String>,
    pub exchanged: bool,
    /// Every header whose CGI-folded name starts with `HTTP_HELLOGUARD`, folded name → values.
    pub helloguard: HashMap<String, Vec<String>>,
}

impl Seen {
    /// The one value of helloguard header `name` (e.g. `helloguard-decision`) as a CGI app reads
    /// it; panics when the client managed to add a second.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.helloguard.get(&cgi_name(name))?;
        assert_eq!(values.len(), 1, "{name} arrived more than once: {values:?}");
        values.first().map(String::as_str)
    }
}

/// The service and its records.
#[derive(Default)]
pub struct Permissive {
    sessions: Mutex<HashMap<String, String>>,
    tokens: Mutex<HashMap<String, String>>,
    seen: Mutex<Vec<Seen>>,
    counter: AtomicU64,
}

impl Permissive {
    /// Serve on 127.0.0.1 (a free port).
    pub async fn start() -> (Arc<Self>, SocketAddr) {
        let service = Arc::new(Self::default());
        let handler = service.clone();
        let addr = serve(move |request| {
            let handler = handler.clone();
            async move { handler.handle(request).await }
        })
        .await;
        (service, addr)
    }

    /// Everything read so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Every request on which the service used session cookie `value` as a live session.
    pub fn uses_of_session(&self, value: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.session_cookie.as_deref() == Some(value) && s.session_user.is_some())
            .collect()
    }

    /// Whether refresh token `token` was ever exchanged.
    pub fn exchanged(&self, token: &str) -> bool {
        self.seen().iter().any(|s| s.exchanged && s.refresh_token.as_deref() == Some(token))
    }

    fn fresh(&self, kind: &str) -> String {
        format!("{kind}-{}-{}", std::process::id(), self.counter.fetch_add(1, Ordering::Relaxed))
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<UpstreamBody> {
        let (parts, body) = request.into_parts();
        let raw = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
        let route = route_of(parts.uri.path());
        let mut helloguard: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in &parts.headers {
            let folded = cgi_name(name.as_str());
            if folded.starts_with("HTTP_HELLOGUARD") {
                helloguard.entry(folded).or_default().push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
        }
        let session_cookie = session_cookie(&parts.headers);
        let session_user = session_cookie.as_ref().and_then(|c| self.sessions.lock().unwrap().get(c).cloned());
        let params = params(parts.uri.query(), &parts.headers, &raw);
        let param = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut seen = Seen {
            method: parts.method.to_string(),
            route,
            session_cookie: session_cookie.clone(),
            session_user: session_user.clone(),
            refresh_token: None,
            exchanged: false,
            helloguard,
        };
        let response = match route {
            "login" => match (&session_user, param("username")) {
                (Some(user), _) => {
                    answer(json!({"logged_in": user, "via": "session"}), &[("helloguard-user-id", user)])
                }
                (None, Some(user)) => {
                    let cookie = self.fresh("cookie");
                    self.sessions.lock().unwrap().insert(cookie.clone(), user.clone());
                    let set = format!("session={cookie}; Path=/; HttpOnly; Secure");
                    answer(
                        json!({"logged_in": user, "via": "password"}),
                        &[("set-cookie", &set), ("helloguard-user-id", &user)],
                    )
                }
                (None, None) => status(401, json!({"error": "login_required"})),
            },
            "token" => match param("grant_type").as_deref() {
                Some("password") => {
                    let user = param("username").unwrap_or_else(|| "anonymous".into());
                    let token = self.fresh("rt");
                    self.tokens.lock().unwrap().insert(token.clone(), user.clone());
                    answer(
                        json!({"access_token": self.fresh("at"), "refresh_token": token}),
                        &[("helloguard-user-id", &user)],
                    )
                }
                Some("refresh_token") => {
                    let presented = param("refresh_token");
                    seen.refresh_token = presented.clone();
                    let user = presented.and_then(|t| self.tokens.lock().unwrap().remove(&t));
                    match user {
                        Some(user) => {
                            seen.exchanged = true;
                            let token = self.fresh("rt");
                            self.tokens.lock().unwrap().insert(token.clone(), user);
                            answer(json!({"access_token": self.fresh("at"), "refresh_token": token}), &[])
                        }
                        None => status(400, json!({"error": "invalid_grant"})),
                    }
                }
                _ => status(400, json!({"error": "unsupported_grant_type"})),
            },
            "logout" => {
                if let Some(cookie) = &session_cookie {
                    self.sessions.lock().unwrap().remove(cookie);
                }
                answer(json!({"logged_out": true}), &[("set-cookie", "session=; Path=/; Max-Age=0")])
            }
            "ws" => {
                let mut response = Response::new(full(""));
                *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
                for (name, value) in [
                    ("connection", "upgrade"),
                    ("upgrade", "websocket"),
                    ("helloguard-user-id", "mallory"),
                    ("helloguard-mfa-confirmed", "1"),
                ] {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
            _ => answer(json!({"session_cookie": session_cookie, "session_user": session_user}), &[]),
        };
        self.seen.lock().unwrap().push(seen);
        response
    }
}

fn answer(body: Value, headers: &[(&str, &str)]) -> Response<UpstreamBody> {
    let mut response = status(200, body);
    for (name, value) in headers {
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        response.headers_mut().append(name, value.parse().unwrap());
    }
    response
}

fn status(code: u16, body: Value) -> Response<UpstreamBody> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    response
}

/// `HTTP_` + the name upper-cased with `-` as `_`, as CGI and WSGI servers present headers.
pub fn cgi_name(name: &str) -> String {
    format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes.get(at + 1..at + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route_of(path: &str) -> &'static str {
    // The WHATWG URL parser resolves dot segments (`%2e` too) as browsers and many servers do;
    // then everything is decoded, empty segments dropped and case folded, as lenient routers do.
    let resolved = url::Url::parse(&format!("http://upstream{path}")).map(|u| u.path().to_owned()).unwrap_or_default();
    let decoded = percent_decode(&resolved).to_ascii_lowercase();
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    match segments.join("/").as_str() {
        "login" => "login",
        "oauth/token" => "token",
        "logout" => "logout",
        "ws" => "ws",
        _ => "other",
    }
}

/// The last cookie named (loosely) `session`.
fn session_cookie(headers: &hyper::HeaderMap) -> Option<String> {
    let mut value = None;
    for field in headers.get_all("cookie") {
        let text = String::from_utf8_lossy(field.as_bytes()).into_owned();
        for pair in text.split([';', ',']) {
            let Some((name, raw)) = pair.split_once('=') else { continue };
            if percent_decode(name.trim()).eq_ignore_ascii_case("session") {
                value = Some(percent_decode(raw.trim().trim_matches('"')));
            }
        }
    }
    value
}

/// Parameters from the query string, then the body, in order; names lower-cased, `[]` dropped.
fn params(query: Option<&str>, headers: &hyper::HeaderMap, raw: &[u8]) -> Vec<(String, String)> {
    let normal = |name: &str| name.split('[').next().unwrap_or_default().to_ascii_lowercase();
    let mut out: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (normal(&k), v.into_owned()))
        .collect();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let body = inflate(&header("content-encoding"), raw);
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
    let content_type = header("content-type");
    if content_type.contains("json") {
        if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
            for (key, value) in object {
                let text = match value {
                    Value::String(text) => text,
                    Value::Array(items) => {
                        items.iter().filter_map(Value::as_str).next_back().unwrap_or_default().to_owned()
                    }
                    other => other.to_string(),
                };
                out.push((normal(&key), text));
            }
        }
    } else if let Some(boundary) = content_type.split("boundary=").nth(1) {
        let text = String::from_utf8_lossy(body).into_owned();
        for part in text.split(&format!("--{}", boundary.trim_matches('"'))) {
            let Some((head, value)) = part.split_once("\r\n\r\n") else { continue };
            let Some(name) = head.split("name=\"").nth(1).and_then(|n| n.split('"').next()) else { continue };
            out.push((normal(name), value.trim_end_matches("\r\n").to_owned()));
        }
    } else {
        out.extend(form_urlencoded::parse(body).map(|(k, v)| (normal(&k), v.into_owned())));
    }
    out
}

fn inflate(encoding: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let inflated = match encoding.trim() {
        "gzip" => flate2::read::GzDecoder::new(raw).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(raw).read_to_end(&mut out),
        _ => return raw.to_vec(),
    };
    if inflated.is_ok() {
        out
    } else {
        raw.to_vec()
    }
}
