//! What Actions asked for through `api`, read back from the JSON each invocation leaves, combined
//! over the files in order (CONTRACT §11): writes apply in order, `deny` beats `challenge` beats
//! `allow`, claims merge. Metadata writes are validated as a whole candidate map against the
//! record's current one (CONTRACT §2), before anything is forwarded or written.

use serde_json::{Map, Value};

use super::{OnError, Ran};
use crate::engine::{Factor, Reason, Verdict};
pub use crate::session::MetadataEdit as Edit;

/// A decision an Action asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionDecision {
    /// `api.access.deny(reason)`.
    Deny(String),
    /// `api.authentication.challengeWith(...)` / `challengeWithAny(...)`: the factors, primary first.
    Challenge(Vec<Factor>),
}

/// What the Actions decided on their own, before the built-in decision is folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionVerdict {
    pub verdict: Verdict,
    pub reason: Reason,
    /// The Actions' factors, primary first (`None`: the policy's).
    pub factors: Option<Vec<Factor>>,
    /// A denial's `error_description`.
    pub deny: Option<String>,
}

/// Everything the Actions of one request asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requests {
    /// The files that ran, in order.
    pub files: Vec<String>,
    pub session: Vec<Edit>,
    pub refresh_token: Vec<Edit>,
    pub decision: Option<ActionDecision>,
    /// `{"id_token": {...}, "access_token": {...}}`, each only when a claim was set.
    pub claims: Map<String, Value>,
    /// Files that threw, rejected, ran out of time or memory, or asked for something invalid.
    pub errors: Vec<(String, String)>,
}

impl Requests {
    /// Combines the invocations' results, in order.
    pub fn combine(ran: &[Ran]) -> Self {
        let mut requests = Self::default();
        for one in ran {
            requests.files.push(one.file.clone());
            match one.requests.as_deref().map_err(|e| e.to_owned()).and_then(|json| requests.take(json)) {
                Ok(()) => {}
                Err(error) => requests.errors.push((one.file.clone(), error)),
            }
        }
        requests
    }

    fn take(&mut self, json: &str) -> Result<(), String> {
        let value: Value = serde_json::from_str(json).map_err(|e| format!("unreadable requests: {e}"))?;
        let challenge = match &value["challenge"] {
            Value::Array(names) => Some(
                names.iter().map(|n| Factor::parse(n.as_str().unwrap_or_default())).collect::<Result<Vec<_>, _>>()?,
            ),
            _ => None,
        };
        self.session.extend(edits(&value["session"]));
        self.refresh_token.extend(edits(&value["refresh_token"]));
        if let Some(reason) = value["deny"].as_str() {
            self.decision = Some(ActionDecision::Deny(reason.to_owned()));
        } else if let Some(factors) = challenge.filter(|f| !f.is_empty()) {
            if !matches!(self.decision, Some(ActionDecision::Deny(_))) {
                self.decision = Some(ActionDecision::Challenge(factors));
            }
        }
        for token in ["id_token", "access_token"] {
            if let Some(Value::Object(claims)) = value["claims"].get(token) {
                if !claims.is_empty() {
                    let into = self.claims.entry(token).or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(into) = into {
                        into.extend(claims.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// The decision the Actions make (`None`: they leave it to the built-in one): an Action's
    /// `deny` beats a `challenge`; a failure decides as `on_error` says (its `deny` beats all).
    pub fn verdict(&self, on_error: OnError) -> Option<ActionVerdict> {
        let failed = !self.errors.is_empty();
        let of = |verdict, reason, factors, deny| Some(ActionVerdict { verdict, reason, factors, deny });
        match (&self.decision, failed, on_error) {
            (_, true, OnError::Deny) => {
                of(Verdict::Deny, Reason::ActionError, None, Some("Access denied: an Action failed".to_owned()))
            }
            (Some(ActionDecision::Deny(reason)), _, _) => {
                of(Verdict::Deny, Reason::ActionDeny, None, Some(reason.clone()))
            }
            (_, true, OnError::Challenge) => of(Verdict::Challenge, Reason::ActionError, None, None),
            (Some(ActionDecision::Challenge(factors)), _, _) => {
                of(Verdict::Challenge, Reason::ActionChallenge, Some(factors.clone()), None)
            }
            _ => None,
        }
    }

    /// The verdict and reason that replace the built-in ones (`None`: the built-in decision
    /// stands). An Action's challenge of a request the built-in decision challenges already keeps
    /// the built-in reason (its factors still apply).
    pub fn over(decided: Option<&ActionVerdict>, builtin: Verdict) -> Option<(Verdict, Reason)> {
        let decided = decided?;
        let keep_builtin = builtin == Verdict::Challenge && decided.reason == Reason::ActionChallenge;
        (!keep_builtin).then_some((decided.verdict, decided.reason))
    }

    /// The names of the claims set, `id_token.x` style (the audit's `claims`: never values).
    pub fn claim_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (token, claims) in &self.claims {
            if let Value::Object(claims) = claims {
                names.extend(claims.keys().map(|k| format!("{token}.{k}")));
            }
        }
        names
    }
}

fn edits(list: &Value) -> Vec<Edit> {
    let Value::Array(items) = list else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| match item.as_array().map(Vec::as_slice) {
            Some([op, key, value]) if op == "set" => Some(Edit::Set(key.clone(), value.clone())),
            Some([op, key]) if op == "delete" => Some(Edit::Delete(key.clone())),
            Some([op]) if op == "evict" => Some(Edit::Clear),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Metadata;

    fn apply(current: &Metadata, edits: &[Edit]) -> Result<Metadata, crate::session::MetadataError> {
        current.edited(edits)
    }

    fn ran(file: &str, json: &str) -> Ran {
        Ran { file: file.into(), requests: Ok(json.into()), logs: Vec::new() }
    }

    const EMPTY: &str =
        r#"{"session":[],"refresh_token":[],"challenge":null,"deny":null,"claims":{"id_token":{},"access_token":{}}}"#;

    #[test]
    fn deny_beats_challenge_and_writes_apply_in_order() {
        let first = r#"{"session":[["set","a","1"],["set","b","2"]],"refresh_token":[],"challenge":["otp","phone"],"deny":null,"claims":{"id_token":{"x":1},"access_token":{}}}"#;
        let second = r#"{"session":[["delete","a"]],"refresh_token":[["evict"]],"challenge":null,"deny":"no","claims":{"id_token":{},"access_token":{"y":"z"}}}"#;
        let requests = Requests::combine(&[ran("a.js", first), ran("b.js", second), ran("c.js", EMPTY)]);
        assert_eq!(requests.decision, Some(ActionDecision::Deny("no".into())));
        let map = apply(&Metadata::new(), &requests.session).unwrap();
        assert_eq!(map.iter().collect::<Vec<_>>(), [("b", "2")]);
        assert_eq!(requests.refresh_token, [Edit::Clear]);
        assert_eq!(requests.claim_names(), ["access_token.y", "id_token.x"]);
        assert_eq!(requests.files, ["a.js", "b.js", "c.js"]);
        let challenged = Requests::combine(&[ran("a.js", first)]);
        assert_eq!(challenged.decision, Some(ActionDecision::Challenge(vec![Factor::Otp, Factor::Phone])));
    }

    #[test]
    fn invalid_writes_fail_whole_with_the_contracts_message() {
        let base = Metadata::from_pairs([("k", "v")]).unwrap();
        for (edits, message) in [
            (
                vec![Edit::Set("bad key".into(), "v".into())],
                "Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens",
            ),
            (
                vec![Edit::Set("k".into(), serde_json::json!({"undefined": true}))],
                "Invalid metadata: Metadata value must be a string",
            ),
            (vec![Edit::Set("k".into(), 7.into())], "Invalid metadata: Metadata value must be a string"),
            (vec![Edit::Set(3.into(), "v".into())], "Invalid metadata: Metadata key must be a string"),
            (
                vec![Edit::Set("k".into(), "x".repeat(256).into())],
                "Invalid metadata: All metadata values must be at most 255 characters long",
            ),
        ] {
            assert_eq!(apply(&base, &edits).unwrap_err().to_string(), message);
        }
        let many: Vec<Edit> = (0..26).map(|i| Edit::Set(format!("k{i}").into(), "v".into())).collect();
        assert_eq!(
            apply(&Metadata::new(), &many).unwrap_err().to_string(),
            "Invalid metadata: Metadata must not contain more than 25 entries"
        );
        assert_eq!(apply(&base, &[Edit::Set("k".into(), Value::Null)]).unwrap().len(), 0, "null deletes");
    }

    #[test]
    fn failures_are_kept_per_file() {
        let failed = Ran { file: "x.js".into(), requests: Err("TypeError: boom".into()), logs: Vec::new() };
        let requests = Requests::combine(&[failed, ran("y.js", r#"{"challenge":["nope"]}"#)]);
        assert_eq!(requests.errors[0], ("x.js".to_owned(), "TypeError: boom".to_owned()));
        assert_eq!(requests.errors[1].0, "y.js");
    }
}
