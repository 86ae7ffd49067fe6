//! `helloguard replay --decide`: what the engine would have decided on replayed traffic.
//!
//! Each first ClientHello of a TLS-over-TCP connection is treated as a login of the session named
//! by the session key (client IP, SNI, or the connection's flow). The first hello of a key finds a
//! session with empty metadata, so the engine binds; later hellos are compared with what was bound.
//! The engine's writes are merged into the per-key metadata as the proxy merges them into the
//! session record. Nothing here decides: choosing the key and feeding `engine::decide` is all.
//!
//! With `--actions`, the Action files run on each decided hello after the engine, as the proxy runs
//! them on a login (CONTRACT §11), with the event fields a capture can fill: `request.ip`,
//! `request.hostname` (SNI), `security_context`, and `session` (the key, its metadata); their
//! decision folds into the engine's by the proxy's rules and their valid session writes are kept
//! (an invalid set is not applied).
//!
//! Memory is bounded: at most `max_sessions` keys are kept; the least recently seen is forgotten
//! first (its next hello binds afresh).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::Serialize;

use crate::actions::{js, Actions, Requests};
use crate::engine::{self, CompareKey, Event, Observed, Policy, Reason, Route, Verdict};
use crate::fingerprint;
use crate::hello::Transport;
use crate::session::Metadata;

use super::replay::Record;

/// What names the session a hello logs in to (`--session-key`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SessionKey {
    /// The client's IP address.
    #[default]
    ClientIp,
    /// The server name; hellos without SNI are skipped.
    Sni,
    /// The connection: `client ip:port -> server ip:port`.
    Flow,
}

impl FromStr for SessionKey {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "client-ip" => Ok(Self::ClientIp),
            "sni" => Ok(Self::Sni),
            "flow" => Ok(Self::Flow),
            other => Err(format!("unknown session key {other:?}, expected client-ip, sni or flow")),
        }
    }
}

/// `--decide` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecideOptions {
    pub session_key: SessionKey,
    pub compare: CompareKey,
    /// Sessions (keys) remembered at once.
    pub max_sessions: usize,
}

impl Default for DecideOptions {
    fn default() -> Self {
        Self { session_key: SessionKey::default(), compare: CompareKey::default(), max_sessions: 100_000 }
    }
}

/// The engine's verdict, or `skipped` for a hello the proxy would never decide on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Allow,
    Bind,
    Challenge,
    Deny,
    Skipped,
}

impl DecisionKind {
    /// Every decision replay can reach, in summary order. `deny` comes only from Actions, which
    /// replay does not run.
    pub const ALL: [DecisionKind; 4] = [Self::Allow, Self::Bind, Self::Challenge, Self::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Bind => "bind",
            Self::Challenge => "challenge",
            Self::Deny => "deny",
            Self::Skipped => "skipped",
        }
    }
}

impl From<Verdict> for DecisionKind {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Allow => Self::Allow,
            Verdict::Bind => Self::Bind,
            Verdict::Challenge => Self::Challenge,
            Verdict::Deny => Self::Deny,
        }
    }
}

/// Why a hello was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// QUIC or DTLS: the proxy terminates TLS over TCP only.
    NotTcp,
    /// `--session-key sni` and the hello names no server.
    NoSni,
    /// The second hello of a connection (after HelloRetryRequest): the login is the first one.
    RetryHello,
}

/// The engine's reason, or why the hello was skipped; either serializes as its snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DecisionReason {
    Engine(Reason),
    Skipped(SkipReason),
}

impl fmt::Display for DecisionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(name.as_str().unwrap_or_default())
    }
}

/// The fields `--decide` adds to a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decided {
    pub decision: DecisionKind,
    pub reason: DecisionReason,
    /// The session the hello logged in to; `None` when there is none (skipped).
    pub session_key: Option<String>,
    /// The compared key's stored value before the decision; `None` on first use or when skipped.
    pub stored: Option<String>,
}

impl Decided {
    fn skipped(reason: SkipReason, session_key: Option<String>) -> Self {
        Self { decision: DecisionKind::Skipped, reason: DecisionReason::Skipped(reason), session_key, stored: None }
    }
}

/// Decides on the records of one replay run, with sessions shared across all its files.
pub struct Decider {
    policy: Policy,
    session_key: SessionKey,
    sessions: Sessions,
    /// `--actions`, and the runtime they run in.
    actions: Option<(Actions, Option<js::Engine>)>,
}

impl Decider {
    pub fn new(options: DecideOptions) -> Self {
        Self {
            policy: Policy { compare: options.compare, ..Policy::default() },
            session_key: options.session_key,
            sessions: Sessions { cap: options.max_sessions.max(1), ..Sessions::default() },
            actions: None,
        }
    }

    /// Runs these Actions on each decided hello.
    pub fn with_actions(mut self, actions: Option<Actions>) -> Self {
        self.actions = actions.map(|actions| (actions, None));
        self
    }

    /// The decision for one record, with the session's metadata updated by the engine's writes.
    pub fn decide(&mut self, record: &Record) -> Decided {
        let key = match self.session_key {
            SessionKey::ClientIp => Some(record.src.to_string()),
            SessionKey::Sni => record.sni.clone(),
            SessionKey::Flow => Some(format!(
                "{} -> {}",
                SocketAddr::new(record.src, record.src_port),
                SocketAddr::new(record.dst, record.dst_port)
            )),
        };
        if record.transport != Transport::Tcp {
            return Decided::skipped(SkipReason::NotTcp, key);
        }
        if record.hello_index != 1 {
            return Decided::skipped(SkipReason::RetryHello, key);
        }
        let Some(key) = key else {
            return Decided::skipped(SkipReason::NoSni, None);
        };
        let metadata = self.sessions.touch(&key);
        let stored = metadata.get(self.policy.compare.as_str()).map(str::to_owned);
        let event = Event {
            route: Route::Login,
            session_id: None,
            refresh_token_id: None,
            stored: Some(metadata),
            observed: Some(observed(&record.fingerprints)),
        };
        let mut decision = engine::decide(&event, &self.policy);
        let (mut verdict, mut reason) = (decision.verdict, decision.reason);
        let mut edits = Vec::new();
        if let Some((actions, engine)) = &mut self.actions {
            let event = action_event(actions, record, &key, metadata, (verdict, reason), stored.as_deref());
            let requests =
                Requests::combine(&js::run_all(engine, &actions.sources(), &event.to_string(), actions.limits()));
            if let Some(over) = Requests::over(requests.verdict(actions.on_error()).as_ref(), verdict) {
                (verdict, reason) = over;
                decision.writes = engine::Writes::default();
            }
            edits = requests.session;
        }
        if metadata.merge(decision.writes.iter()).is_err() {
            decision = decision.after_write_failure();
            (verdict, reason) = (decision.verdict, decision.reason);
        }
        if let Ok(edited) = metadata.edited(&edits) {
            *metadata = edited;
        }
        Decided { decision: verdict.into(), reason: DecisionReason::Engine(reason), session_key: Some(key), stored }
    }
}

/// Session metadata by key, at most `cap` keys, the least recently used evicted first.
#[derive(Default)]
struct Sessions {
    cap: usize,
    /// Key → (metadata, last use).
    by_key: HashMap<String, (Metadata, u64)>,
    /// Last use → key: the eviction order.
    by_use: BTreeMap<u64, String>,
    clock: u64,
}

impl Sessions {
    /// The session's metadata (empty for a new key), marked as just used; evicts the least
    /// recently used key when a new one would exceed the cap.
    fn touch(&mut self, key: &str) -> &mut Metadata {
        self.clock += 1;
        let now = self.clock;
        if let Some((_, used)) = self.by_key.get_mut(key) {
            self.by_use.remove(used);
            *used = now;
        } else {
            while self.by_key.len() >= self.cap {
                let Some((_, oldest)) = self.by_use.pop_first() else { break };
                self.by_key.remove(&oldest);
            }
        }
        self.by_use.insert(now, key.to_owned());
        &mut self.by_key.entry(key.to_owned()).or_insert_with(|| (Metadata::new(), now)).0
    }
}

/// The `event` an Action reads for a replayed hello: what a capture can fill.
fn action_event(
    actions: &Actions,
    record: &Record,
    key: &str,
    metadata: &Metadata,
    (verdict, reason): (Verdict, Reason),
    stored: Option<&str>,
) -> serde_json::Value {
    let all = &record.fingerprints;
    let ip = record.src.to_string();
    let mut request = serde_json::json!({"ip": ip, "method": "POST", "query": {}, "body": {}});
    if let Some(geoip) = actions.geoip(&ip) {
        request["geoip"] = geoip;
    }
    if let Some(sni) = &record.sni {
        request["hostname"] = sni.clone().into();
    }
    let metadata: serde_json::Map<String, serde_json::Value> =
        metadata.iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
    serde_json::json!({
        "request": request,
        "security_context": {"ja3": all.ja3, "ja4": all.ja4, "ja4_stable": all.ja4_stable, "ja3n": all.ja3n},
        "session": {"id": key, "metadata": metadata},
        "user": {},
        "client": {},
        "transaction": {"requested_scopes": [], "protocol": "oidc-basic-profile"},
        "helloguard": {"decision": verdict.as_str(), "reason": reason.as_str(), "stored": stored},
        "secrets": actions.secrets(),
    })
}

/// The observed fingerprints of a replayed hello, as the proxy hands them to the engine.
fn observed(all: &fingerprint::All) -> Observed<'_> {
    Observed {
        ja3: all.ja3.as_str(),
        ja3n: all.ja3n.as_str(),
        ja4: all.ja4.as_str(),
        ja4_stable: all.ja4_stable.as_str(),
        // A replay binds afresh: no binding from the earlier rule to upgrade.
        ja4_stable_v1: "",
    }
}
