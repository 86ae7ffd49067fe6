//! The binding decision (CONTRACT §3): a pure function from a login or refresh event, the
//! observed fingerprints and the stored record's metadata to `allow` / `bind` / `challenge` plus
//! the metadata writes to apply. No I/O and no allocation: everything the decision carries is
//! borrowed from its inputs or the policy.
//!
//! Only the configured key is compared; the others are informational. An unknown observed
//! fingerprint is never written and never passes a binding: a client can make its own capture
//! fail, so a bound record met without a fingerprint is challenged.

pub(crate) mod json_object;
pub mod options;
pub mod policy;

use crate::session::Metadata;
use json_object::JsonObject;
pub use policy::{CompareKey, Factor, Factors, FactorsError, Mode, Policy};

/// The request kinds that get a decision: the built-in one decides logins and refresh exchanges;
/// Actions also run on other token requests that can issue tokens (`token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Login,
    Refresh,
    Token,
}

crate::options::wire_names!(Route { Login => "login", Refresh => "refresh", Token => "token" });

/// Fingerprints observed on the connection. `None` in an [`Event`] means unknown (no ClientHello
/// captured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed<'a> {
    pub ja3: &'a str,
    /// Written and compared only with `compare = "ja3n"`.
    pub ja3n: &'a str,
    pub ja4: &'a str,
    pub ja4_stable: &'a str,
    /// `ja4_stable` under the earlier rule, session_ticket counted as offered
    /// ([`crate::fingerprint::Binding::ja4_stable_v1`]): a stored binding equal to it is upgraded,
    /// not challenged. Empty when not computed (then nothing is upgraded).
    pub ja4_stable_v1: &'a str,
}

impl<'a> Observed<'a> {
    fn key(&self, key: CompareKey) -> &'a str {
        match key {
            CompareKey::Ja4Stable => self.ja4_stable,
            CompareKey::Ja4 => self.ja4,
            CompareKey::Ja3n => self.ja3n,
            CompareKey::Ja3 => self.ja3,
        }
    }
}

/// One login or refresh request, as the engine sees it.
/// `'a` is what the decision may borrow (ids, observed fingerprints); `'s` is the stored map,
/// which the decision never borrows, so the caller can update it while holding the decision.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a, 's> {
    pub route: Route,
    pub session_id: Option<&'a str>,
    pub refresh_token_id: Option<&'a str>,
    /// The compared record's metadata: the live session's for a login, the presented token's
    /// (retired or not) for a refresh. `None` when there is no such record.
    pub stored: Option<&'s Metadata>,
    pub observed: Option<Observed<'a>>,
}

/// `allow`, `bind`, `challenge`, or an Action's `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    #[default]
    Allow,
    Bind,
    Challenge,
    Deny,
}

crate::options::wire_names!(Verdict { Allow => "allow", Bind => "bind", Challenge => "challenge", Deny => "deny" });

/// Why (§3). The last four are the response phase's `bind` reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NoSession,
    UnknownRefreshToken,
    FingerprintUnknown,
    FirstBinding,
    FingerprintMatch,
    FingerprintMismatch,
    BindingUpgraded,
    MetadataWriteFailed,
    NewSession,
    NewRefreshToken,
    Rotation,
    MfaConfirmed,
    /// An Action called `api.authentication.challengeWith(...)`.
    ActionChallenge,
    /// An Action called `api.access.deny(...)`.
    ActionDeny,
    /// An Action failed and `[actions] on_error` decided.
    ActionError,
}

crate::options::wire_names!(Reason {
    NoSession => "no_session",
    UnknownRefreshToken => "unknown_refresh_token",
    FingerprintUnknown => "fingerprint_unknown",
    FirstBinding => "first_binding",
    FingerprintMatch => "fingerprint_match",
    FingerprintMismatch => "fingerprint_mismatch",
    BindingUpgraded => "binding_upgraded",
    MetadataWriteFailed => "metadata_write_failed",
    NewSession => "new_session",
    NewRefreshToken => "new_refresh_token",
    Rotation => "rotation",
    MfaConfirmed => "mfa_confirmed",
    ActionChallenge => "action_challenge",
    ActionDeny => "action_deny",
    ActionError => "action_error",
});

/// Metadata keys to merge into the record: at most `ja3`, `ja4`, `ja4_stable`, `ja3n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Writes<'a> {
    entries: [(&'static str, &'a str); 4],
    len: usize,
}

impl<'a> Writes<'a> {
    /// The engine's keys for these fingerprints (`ja3n` only when it is the compared key).
    pub fn binding(observed: &Observed<'a>, compare: CompareKey) -> Self {
        let mut writes = Self {
            entries: [
                ("ja3", observed.ja3),
                ("ja4", observed.ja4),
                ("ja4_stable", observed.ja4_stable),
                ("ja3n", observed.ja3n),
            ],
            len: 3,
        };
        if compare == CompareKey::Ja3n {
            writes.len = 4;
        }
        writes
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'a str)> + '_ {
        self.entries.iter().take(self.len).copied()
    }

    /// The writes as an owned store change.
    pub fn to_change(&self) -> crate::session::MetadataChange {
        crate::session::MetadataChange::Merge(self.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }
}

/// The engine's output. Serializes as the §3 decision object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub reason: Reason,
    pub route: Route,
    pub session_id: Option<&'a str>,
    pub refresh_token_id: Option<&'a str>,
    /// The factors, on `challenge` only.
    pub factors: Option<&'a Factors>,
    /// What to merge into the compared record (non-empty on `bind` only).
    pub writes: Writes<'a>,
}

impl<'a> Decision<'a> {
    /// The §3 row "replaces any `bind` whose write failed": the request goes on.
    pub fn after_write_failure(self) -> Self {
        Self {
            verdict: Verdict::Allow,
            reason: Reason::MetadataWriteFailed,
            factors: None,
            writes: Writes::default(),
            ..self
        }
    }

    /// What happens to the request under `policy` (§4), for the audit event.
    pub fn outcome(&self, policy: &Policy) -> Outcome {
        match (self.verdict, policy.mode, self.route) {
            (Verdict::Deny, Mode::Enforce, _) => Outcome::Rejected,
            (Verdict::Challenge, Mode::Enforce, Route::Refresh | Route::Token) => Outcome::Rejected,
            (Verdict::Challenge, Mode::Enforce, Route::Login) if policy.has_challenge_url => Outcome::Redirected,
            _ => Outcome::Forwarded,
        }
    }
}

impl Decision<'_> {
    /// The decision object (§3) as JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        let mut object = JsonObject::open(&mut out);
        self.write_fields(&mut object);
        object.close();
        out
    }

    /// The §3 fields in order, so audit events can embed them flat.
    pub(crate) fn write_fields(&self, object: &mut JsonObject<'_>) {
        object.str("decision", self.verdict.as_str()).str("reason", self.reason.as_str());
        if let Some(factors) = self.factors {
            let factor = |o: &mut JsonObject<'_>, factor: Factor| {
                o.str("type", factor.as_str());
            };
            object.object("challenge", |o| factor(o, factors.primary()));
            object.objects("additional_factors", factors.additional().iter().copied(), factor);
        }
        object
            .str("route", self.route.as_str())
            .opt_str("session_id", self.session_id)
            .opt_str("refresh_token_id", self.refresh_token_id);
    }
}

/// `forwarded` / `redirected` / `rejected` (§9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    #[default]
    Forwarded,
    Redirected,
    Rejected,
}

crate::options::wire_names!(Outcome { Forwarded => "forwarded", Redirected => "redirected", Rejected => "rejected" });

/// The request-phase decision (§3 table; first matching row wins).
pub fn decide<'a>(event: &Event<'a, '_>, policy: &'a Policy) -> Decision<'a> {
    // A fingerprint whose compared key is empty was not computed: it is unknown, never bound.
    let observed = event.observed.filter(|o| !o.key(policy.compare).is_empty());
    let key = policy.compare.as_str();
    let (verdict, reason, writes) = match (event.route, event.stored, observed) {
        (Route::Login, None, _) => (Verdict::Allow, Reason::NoSession, Writes::default()),
        (Route::Refresh | Route::Token, None, _) => (Verdict::Allow, Reason::UnknownRefreshToken, Writes::default()),
        (_, Some(stored), None) if stored.get(key).is_some() => {
            (Verdict::Challenge, Reason::FingerprintUnknown, Writes::default())
        }
        (_, Some(_), None) => (Verdict::Allow, Reason::FingerprintUnknown, Writes::default()),
        (_, Some(stored), Some(observed)) => match stored.get(key) {
            None => (Verdict::Bind, Reason::FirstBinding, Writes::binding(&observed, policy.compare)),
            Some(bound) if bound == observed.key(policy.compare) => {
                (Verdict::Allow, Reason::FingerprintMatch, Writes::default())
            }
            Some(bound) if upgrades(bound, &observed, policy.compare) => {
                (Verdict::Bind, Reason::BindingUpgraded, Writes::binding(&observed, policy.compare))
            }
            Some(_) => (Verdict::Challenge, Reason::FingerprintMismatch, Writes::default()),
        },
    };
    Decision {
        verdict,
        reason,
        route: event.route,
        session_id: event.session_id,
        refresh_token_id: event.refresh_token_id,
        factors: (verdict == Verdict::Challenge).then_some(&policy.factors),
        writes,
    }
}

/// Whether a stored binding that differs from the observed one was made by the same client under
/// the earlier `ja4_stable` rule (§3): then it is rewritten, not challenged.
fn upgrades(bound: &str, observed: &Observed<'_>, compare: CompareKey) -> bool {
    compare == CompareKey::Ja4Stable && !observed.ja4_stable_v1.is_empty() && bound == observed.ja4_stable_v1
}

/// A response-phase `bind` (§3): a new session, a new refresh token, a rotation or an MFA
/// confirmation. The observed fingerprints are written when known; a rotation writes nothing
/// itself (the successor inherits the metadata).
pub fn bind_on_response<'a>(
    reason: Reason,
    route: Route,
    session_id: Option<&'a str>,
    refresh_token_id: Option<&'a str>,
    observed: Option<Observed<'a>>,
    policy: &Policy,
) -> Decision<'a> {
    let writes = match (reason, observed) {
        (Reason::Rotation, _) | (_, None) => Writes::default(),
        (_, Some(observed)) => Writes::binding(&observed, policy.compare),
    };
    Decision { verdict: Verdict::Bind, reason, route, session_id, refresh_token_id, factors: None, writes }
}
