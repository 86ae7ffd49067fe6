//! Every audit event (CONTRACT §9) as a type: `decision`, `revoked_use`, `session_ended`, the two
//! back-channel logout delivery events, and `api_write`. Each holds ids (hashes), fingerprints and
//! names only, never a cookie, token, `Authorization` header or key.

use serde::Serialize;

use crate::engine::json_object::JsonObject;
use crate::engine::{Decision, Mode, Observed, Outcome};
use crate::session::{Metadata, Timestamp};

/// One `decision` event: the decision object plus its context.
#[derive(Debug, Clone, Copy)]
pub struct DecisionEvent<'a> {
    pub time: Timestamp,
    pub decision: &'a Decision<'a>,
    pub mode: Mode,
    pub outcome: Outcome,
    pub user_id: Option<&'a str>,
    pub observed: Option<Observed<'a>>,
    /// The compared record's metadata before the decision; `null` when there is no record.
    pub stored: Option<&'a Metadata>,
    pub client_addr: Option<&'a str>,
    /// The wrapped message (`Failed to set session metadata: …`), for `metadata_write_failed` only.
    pub error: Option<&'a str>,
    /// The Action files that ran (CONTRACT §11), when any is configured.
    pub actions: Option<&'a [String]>,
    /// The names of the claims the Actions set (never their values).
    pub claims: Option<&'a [String]>,
}

impl DecisionEvent<'_> {
    /// The event as one JSON object (§9). Written once per login and refresh, so it is written
    /// directly rather than through a serializer.
    pub fn to_json(&self) -> String {
        // A line with both fingerprint objects is about 600 bytes: room for it without a regrowth.
        let mut out = String::with_capacity(1024);
        let mut object = JsonObject::open(&mut out);
        object.str("event", "decision").str("time", &self.time.rfc3339());
        self.decision.write_fields(&mut object);
        object.str("mode", self.mode.as_str()).str("outcome", self.outcome.as_str()).opt_str("user_id", self.user_id);
        match self.observed {
            Some(observed) => object.object("observed", |o| {
                o.str("ja3", observed.ja3).str("ja4", observed.ja4).str("ja4_stable", observed.ja4_stable);
            }),
            None => object.null("observed"),
        };
        // `{"ja3","ja4","ja4_stable"}` of the stored record, each `null` when absent.
        match self.stored {
            Some(stored) => object.object("stored", |o| {
                for key in ["ja3", "ja4", "ja4_stable"] {
                    o.opt_str(key, stored.get(key));
                }
            }),
            None => object.null("stored"),
        };
        object.opt_str("client_addr", self.client_addr);
        if let Some(error) = self.error {
            object.str("error", error);
        }
        if let Some(actions) = self.actions {
            object.strs("actions", actions.iter().map(String::as_str));
        }
        if let Some(claims) = self.claims.filter(|c| !c.is_empty()) {
            object.strs("claims", claims.iter().map(String::as_str));
        }
        object.close();
        out
    }
}

impl super::erased::Event for DecisionEvent<'_> {
    fn to_json_line(&self) -> Result<String, serde_json::Error> {
        Ok(self.to_json())
    }
}

/// `revoked_use`: a request presented an ended session's cookie or refresh token.
#[derive(Debug, Clone, Serialize)]
pub struct RevokedUse<'a> {
    pub event: &'static str,
    pub time: Timestamp,
    pub route: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_id: Option<&'a str>,
    pub client_addr: Option<&'a str>,
}

impl<'a> RevokedUse<'a> {
    /// An ended session's cookie (reported on route `login`, whatever the request's route).
    pub fn session(time: Timestamp, session_id: &'a str, client_addr: Option<&'a str>) -> Self {
        Self {
            event: "revoked_use",
            time,
            route: "login",
            session_id: Some(session_id),
            refresh_token_id: None,
            client_addr,
        }
    }

    /// An ended refresh token presented in an exchange.
    pub fn refresh_token(time: Timestamp, id: &'a str, client_addr: Option<&'a str>) -> Self {
        Self { event: "revoked_use", time, route: "refresh", session_id: None, refresh_token_id: Some(id), client_addr }
    }
}

/// `session_ended`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionEnded<'a> {
    pub event: &'static str,
    pub time: Timestamp,
    pub session_id: &'a str,
    pub user_id: Option<&'a str>,
    pub initiator: &'a str,
    pub trace_id: &'a str,
}

impl<'a> SessionEnded<'a> {
    pub fn new(
        time: Timestamp,
        session_id: &'a str,
        user_id: Option<&'a str>,
        initiator: &'a str,
        trace_id: &'a str,
    ) -> Self {
        Self { event: "session_ended", time, session_id, user_id, initiator, trace_id }
    }
}

/// `oidc_backchannel_logout_succeeded` / `oidc_backchannel_logout_failed`: one delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct LogoutAttempt<'a> {
    pub event: &'static str,
    pub time: Timestamp,
    pub session_id: &'a str,
    pub client_id: &'a str,
    pub url: &'a str,
    pub initiator: &'a str,
    pub trace_id: &'a str,
    pub attempt: u32,
    pub r#final: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

impl LogoutAttempt<'_> {
    pub const SUCCEEDED: &'static str = "oidc_backchannel_logout_succeeded";
    pub const FAILED: &'static str = "oidc_backchannel_logout_failed";
}

/// `action_error`: an Action threw, rejected, ran out of time or memory, or asked for something
/// invalid; `[actions] on_error` decided.
#[derive(Debug, Clone, Serialize)]
pub struct ActionError<'a> {
    pub event: &'static str,
    pub time: Timestamp,
    pub file: &'a str,
    /// Cut at 255 characters.
    pub message: String,
    pub decision: &'a str,
}

impl<'a> ActionError<'a> {
    pub fn new(time: Timestamp, file: &'a str, message: &str, decision: &'a str) -> Self {
        Self { event: "action_error", time, file, message: message.chars().take(255).collect(), decision }
    }
}

/// `api_write`: a Management API write, whatever its answer.
#[derive(Debug, Clone, Serialize)]
pub struct ApiWrite<'a> {
    pub event: &'static str,
    pub time: Timestamp,
    pub method: &'a str,
    pub path: &'a str,
    pub sub: Option<&'a str>,
    pub status: u16,
}

impl<'a> ApiWrite<'a> {
    pub fn new(time: Timestamp, method: &'a str, path: &'a str, sub: Option<&'a str>, status: u16) -> Self {
        Self { event: "api_write", time, method, path, sub, status }
    }
}
