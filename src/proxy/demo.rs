//! The built-in demo upstream (`upstream = "builtin:demo"`): a stand-in login service, in process.
//!
//! - `GET /`: an HTML page showing the visitor's fingerprints, session and last decision.
//! - `GET /whoami`: JSON echo of the helloguard headers the demo received.
//! - `POST /login` (form `username`): sets the session cookie, reports the user id. The cookie is
//!   persistent (`Max-Age` = `[session] absolute_timeout`), like a hosted login service's: a browser
//!   that restarts is still logged in, which is when it opens new TLS connections with a new
//!   ClientHello. (A browser drops a session cookie, one without `Max-Age`, when it exits.)
//!   A login helloguard decided to challenge gets a one-time-password page instead; the form
//!   posts back with `otp`, and the demo's fixed code ([`DEMO_OTP`], shown on the page) logs in
//!   with `helloguard-mfa-confirmed: 1`, which makes helloguard bind the session to this client.
//! - `POST /oauth/token`: `grant_type=password&username=U` issues an access and a refresh token;
//!   `grant_type=refresh_token&refresh_token=R` rotates them.
//! - `POST /logout`: expires the session cookie.
//!
//! Every other answer is the same JSON echo, which includes the session metadata and Action claims
//! helloguard forwarded (decoded). Tokens and cookies are random and kept in memory only (the demo
//! is a toy; helloguard itself never stores them).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, CONTENT_TYPE, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Value};

use super::headers::HeaderNames;
use crate::config::SessionConfig;
use crate::http::body::{full, json_response, Body};

/// The demo's one-time password. A real login service checks a code the user's authenticator
/// shows; the demo says its code on the page.
pub const DEMO_OTP: &str = "123456";

/// The demo's state: who is logged in with which cookie, and which refresh tokens are live.
pub struct Demo {
    names: HeaderNames,
    cookie_name: String,
    cookie_max_age: u64,
    sessions: Mutex<HashMap<String, String>>,
    refresh_tokens: Mutex<HashMap<String, String>>,
    random: SystemRandom,
}

impl Demo {
    pub fn new(names: HeaderNames, session: &SessionConfig) -> Self {
        Self {
            names,
            cookie_name: session.cookie_name.clone(),
            cookie_max_age: session.absolute_timeout.0.as_secs(),
            sessions: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
            random: SystemRandom::new(),
        }
    }

    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let echo = self.echo(&parts.headers);
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return json_response(StatusCode::BAD_REQUEST, &json!({"error": "unreadable body"})),
        };
        let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        match (&parts.method, parts.uri.path()) {
            (&Method::GET, "/") => html_response(&self.page(&echo)),
            (&Method::POST, "/login") => {
                let challenged = echo["decision"] == "challenge";
                match form.get("otp") {
                    Some(code) if challenged && code == DEMO_OTP => {
                        let mut response = self.login(&form, echo);
                        add_header(&mut response, self.names.mfa_confirmed.clone(), "1");
                        response
                    }
                    code if challenged => {
                        let target = parts.uri.path_and_query().map_or("/login", |p| p.as_str());
                        otp_page(&form, &echo, target, code.is_some())
                    }
                    _ => self.login(&form, echo),
                }
            }
            (&Method::POST, "/oauth/token") => self.token(&form),
            (&Method::POST, "/logout") => {
                let mut response = json_response(StatusCode::OK, &json!({"logged_out": true, "helloguard": echo}));
                let expire = format!("{}=; Path=/; Max-Age=0; HttpOnly; Secure", self.cookie_name);
                if let Ok(value) = HeaderValue::from_str(&expire) {
                    response.headers_mut().append(SET_COOKIE, value);
                }
                response
            }
            _ => json_response(StatusCode::OK, &echo),
        }
    }

    /// The helloguard headers this request carried; the JSON ones decoded.
    fn echo(&self, headers: &hyper::HeaderMap) -> Value {
        let get = |name: &hyper::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let decoded = |name| {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(get(name)?).ok()?;
            serde_json::from_slice::<Value>(&bytes).ok()
        };
        json!({
            "session_metadata": decoded(&self.names.session_metadata),
            "refresh_token_metadata": decoded(&self.names.refresh_token_metadata),
            "claims": decoded(&self.names.claims),
            "ja3": get(&self.names.ja3),
            "ja4": get(&self.names.ja4),
            "ja4_stable": get(&self.names.ja4_stable),
            "session_id": get(&self.names.session_id),
            "decision": get(&self.names.decision),
            "reason": get(&self.names.reason),
            "challenge": get(&self.names.challenge),
        })
    }

    fn login(&self, form: &HashMap<String, String>, echo: Value) -> Response<Body> {
        let Some(user) = form.get("username").filter(|u| !u.is_empty()) else {
            return json_response(StatusCode::BAD_REQUEST, &json!({"error": "username required"}));
        };
        let cookie = self.random_token();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(cookie.clone(), user.clone());
        }
        let mut response = json_response(StatusCode::OK, &json!({"logged_in": user, "helloguard": echo}));
        let set_cookie = format!(
            "{}={cookie}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
            self.cookie_name, self.cookie_max_age
        );
        add_header(&mut response, SET_COOKIE, &set_cookie);
        add_header(&mut response, self.names.user_id.clone(), &format!("demo|{user}"));
        response
    }

    fn token(&self, form: &HashMap<String, String>) -> Response<Body> {
        let user = match form.get("grant_type").map(String::as_str) {
            Some("password") => form.get("username").filter(|u| !u.is_empty()).cloned(),
            Some("refresh_token") => {
                let presented = form.get("refresh_token").cloned().unwrap_or_default();
                self.refresh_tokens.lock().ok().and_then(|mut tokens| tokens.remove(&presented))
            }
            _ => return json_response(StatusCode::BAD_REQUEST, &json!({"error": "unsupported_grant_type"})),
        };
        let Some(user) = user else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
            );
        };
        let refresh_token = self.random_token();
        if let Ok(mut tokens) = self.refresh_tokens.lock() {
            tokens.insert(refresh_token.clone(), user.clone());
        }
        let mut response = json_response(
            StatusCode::OK,
            &json!({"access_token": self.random_token(), "token_type": "Bearer", "expires_in": 3600,
                    "refresh_token": refresh_token, "scope": "openid offline_access"}),
        );
        add_header(&mut response, self.names.user_id.clone(), &format!("demo|{user}"));
        response
    }

    fn random_token(&self) -> String {
        let mut bytes = [0u8; 24];
        // SystemRandom only fails when the OS has no randomness; a zero token is then still unique
        // enough for a demo that runs nowhere near production.
        let _ = self.random.fill(&mut bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn page(&self, echo: &Value) -> String {
        let row = |label: &str, key: &str| {
            let value = echo[key].as_str().unwrap_or("—");
            format!("<tr><th>{label}</th><td><code>{}</code></td></tr>", escape(value))
        };
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>helloguard demo</title>\
             <style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;padding-right:1em}}</style></head>\
             <body><h1>helloguard demo</h1><p>What helloguard saw on this connection and decided for this request.</p>\
             <table>{}{}{}{}{}{}{}</table>\
             <form method=\"post\" action=\"/login\"><input name=\"username\" value=\"alice\"><button>Log in</button></form>\
             </body></html>",
            row("JA3", "ja3"),
            row("JA4", "ja4"),
            row("ja4_stable (binding key)", "ja4_stable"),
            row("session", "session_id"),
            row("decision", "decision"),
            row("reason", "reason"),
            row("challenge", "challenge"),
        )
    }
}

/// The page a challenged login gets: the factor helloguard asked for and a code field that posts
/// the login again, to the same address, with `otp`.
fn otp_page(form: &HashMap<String, String>, echo: &Value, target: &str, wrong: bool) -> Response<Body> {
    let user = form.get("username").map_or("", String::as_str);
    let factors = echo["challenge"].as_str().unwrap_or("otp");
    let reason = echo["reason"].as_str().unwrap_or("");
    let error = if wrong { "<p><strong>That code is not right.</strong></p>" } else { "" };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>helloguard demo: verify</title></head>\
         <body><h1>Verify it is you</h1>\
         <p>helloguard asked for a second factor (<code>{}</code>, because <code>{}</code>).</p>{error}\
         <p>This is the demo: its one-time password is always <code>{DEMO_OTP}</code>.</p>\
         <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"username\" value=\"{}\">\
         <input name=\"otp\" autocomplete=\"one-time-code\" inputmode=\"numeric\"><button>Verify</button></form>\
         </body></html>",
        escape(factors),
        escape(reason),
        escape(target),
        escape(user),
    );
    let mut response = html_response(&html);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html_response(html: &str) -> Response<Body> {
    let mut response = Response::new(full(html.to_owned()));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn add_header(response: &mut Response<Body>, name: hyper::header::HeaderName, value: &str) {
    // From bytes: a user name may be UTF-8 (`demo|é`), which a header value carries as it is.
    if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
        response.headers_mut().append(name, value);
    }
}
