//! The Actions in the binding layer (CONTRACT §11): the `event` they read, built from the facts
//! and records of the request, and the run on the worker's Actions thread.

use serde_json::{json, Map, Value};

use super::{Binder, Facts};
use crate::actions::{Actions, Ran, Requests};
use crate::audit::ActionError;
use crate::engine::{Decision, Route};
use crate::session::{Metadata, RefreshToken, Session, Timestamp, Versioned};

/// What the proxy read of a request for `event.request` and `event.transaction`: plain values,
/// in the one reading helloguard decided on (CONTRACT §1.1).
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub method: String,
    pub hostname: Option<String>,
    pub query: Map<String, Value>,
    /// The login form or token request body as an object (`{}` when none).
    pub body: Value,
    /// The first `Accept-Language` tag.
    pub language: Option<String>,
    /// The route's `client_id`, else the request's.
    pub client_id: Option<String>,
    /// The token request's `grant_type`.
    pub grant_type: Option<String>,
}

/// The records an Action's event describes.
pub(super) struct Records<'r> {
    pub route: Route,
    pub session: Option<&'r Versioned<Session>>,
    pub refresh_token: Option<&'r Versioned<RefreshToken>>,
}

impl Binder {
    /// Runs the configured Actions on this request's event; what they asked for, with failures
    /// audited (`action_error`) and logged. `None`: no Action is configured, or the request's
    /// facts do not say what the event needs.
    pub(super) async fn run_actions(
        &self,
        facts: &Facts<'_>,
        records: &Records<'_>,
        builtin: Option<&Decision<'_>>,
    ) -> Option<Requests> {
        let actions = self.actions.as_ref()?;
        let request = facts.request?;
        let event = event(actions, facts, request, records, builtin).to_string();
        let ran = match crate::actions::js::Worker::current() {
            Ok(worker) => worker.run(actions.sources(), event, actions.limits()).await,
            Err(error) => Err(error),
        };
        let ran: Vec<Ran> = ran.unwrap_or_else(|error| {
            actions
                .sources()
                .iter()
                .map(|s| Ran { file: s.name.clone(), requests: Err(error.clone()), logs: Vec::new() })
                .collect()
        });
        for one in &ran {
            for (level, line) in &one.logs {
                match level.as_str() {
                    "error" => tracing::error!(file = %one.file, "{line}"),
                    "warn" => tracing::warn!(file = %one.file, "{line}"),
                    _ => tracing::info!(file = %one.file, "{line}"),
                }
            }
        }
        Some(Requests::combine(&ran))
    }

    /// `action_error` for each failed file, with the decision `on_error` made.
    pub(super) fn audit_action_errors(&self, requests: &Requests, decision: &str, now: Timestamp) {
        for (file, message) in &requests.errors {
            self.counters.action_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(%file, error = %message, decision, "Action failed");
            self.audit.record(&ActionError::new(now, file, message, decision));
        }
    }
}

/// The `event` object (CONTRACT §11): what helloguard can fill; everything else is absent, so
/// the Action sees `undefined`, never an invented value.
fn event(
    actions: &Actions,
    facts: &Facts<'_>,
    request: &RequestInfo,
    records: &Records<'_>,
    builtin: Option<&Decision<'_>>,
) -> Value {
    let mut event = Map::new();
    let mut http = Map::new();
    http.insert("ip".into(), facts.client_ip.into());
    if let Some(geoip) = actions.geoip(facts.client_ip) {
        http.insert("geoip".into(), geoip);
    }
    http.insert("method".into(), request.method.clone().into());
    if let Some(hostname) = &request.hostname {
        http.insert("hostname".into(), hostname.clone().into());
    }
    if let Some(agent) = facts.user_agent {
        http.insert("user_agent".into(), agent.into());
    }
    if let Some(language) = &request.language {
        http.insert("language".into(), language.clone().into());
    }
    http.insert("query".into(), Value::Object(request.query.clone()));
    http.insert("body".into(), request.body.clone());
    event.insert("request".into(), Value::Object(http));

    let mut security = Map::new();
    if let Some(observed) = facts.observed {
        for (key, value) in
            [("ja3", observed.ja3), ("ja4", observed.ja4), ("ja4_stable", observed.ja4_stable), ("ja3n", observed.ja3n)]
        {
            if !value.is_empty() {
                security.insert(key.into(), value.into());
            }
        }
    }
    event.insert("security_context".into(), Value::Object(security));

    match (records.session, records.route) {
        (Some(session), _) => {
            let record = &session.record;
            event.insert(
                "session".into(),
                json!({"id": record.id, "metadata": metadata(&record.session_metadata),
                       "created_at": record.created_at, "updated_at": record.updated_at, "device": record.device}),
            );
        }
        // The session a first login may create: no `id`, no `metadata` (the reference's first-login
        // test `!event.session.metadata` holds); its writes are held.
        (None, Route::Login) => {
            event.insert("session".into(), json!({}));
        }
        (None, _) => {}
    }
    if let Some(token) = records.refresh_token {
        let record = &token.record;
        event.insert(
            "refresh_token".into(),
            json!({"id": record.id, "metadata": metadata(&record.refresh_token_metadata),
                   "session_id": record.session_id, "client_id": record.client_id, "created_at": record.created_at}),
        );
    }
    let user_id = records
        .refresh_token
        .and_then(|t| t.record.user_id.clone())
        .or_else(|| records.session.and_then(|s| s.record.user_id.clone()));
    event.insert("user".into(), user_id.map_or_else(|| json!({}), |id| json!({ "user_id": id })));
    event
        .insert("client".into(), request.client_id.as_ref().map_or_else(|| json!({}), |id| json!({ "client_id": id })));
    let scopes: Vec<&str> = request
        .body
        .get("scope")
        .and_then(Value::as_str)
        .map_or_else(Vec::new, |s| s.split(' ').filter(|s| !s.is_empty()).collect());
    event.insert(
        "transaction".into(),
        json!({"requested_scopes": scopes, "protocol": protocol(records.route, request)}),
    );
    if let Some(decision) = builtin {
        let stored = match records.route {
            Route::Login => {
                records.session.and_then(|s| s.record.session_metadata.get("ja4_stable").map(str::to_owned))
            }
            _ => {
                records.refresh_token.and_then(|t| t.record.refresh_token_metadata.get("ja4_stable").map(str::to_owned))
            }
        };
        event.insert(
            "helloguard".into(),
            json!({"decision": decision.verdict.as_str(), "reason": decision.reason.as_str(), "stored": stored}),
        );
    }
    event.insert("secrets".into(), Value::Object(actions.secrets().clone()));
    Value::Object(event)
}

fn metadata(map: &Metadata) -> Value {
    Value::Object(map.iter().map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))).collect())
}

/// `event.transaction.protocol` as the reference names it.
fn protocol(route: Route, request: &RequestInfo) -> &'static str {
    match (route, request.grant_type.as_deref()) {
        (Route::Login, _) => "oidc-basic-profile",
        (_, Some("refresh_token")) => "oauth2-refresh-token",
        (_, Some("password")) => "oauth2-password",
        (_, Some("urn:ietf:params:oauth:grant-type:device_code")) => "oauth2-device-code",
        (_, Some("urn:ietf:params:oauth:grant-type:token-exchange")) => "oauth2-token-exchange",
        (_, Some("http://auth0.com/oauth/grant-type/passwordless/otp")) => "oauth2-passwordless-otp",
        _ => "oidc-basic-profile",
    }
}
