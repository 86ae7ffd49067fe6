//! `helloguard actions test FILE… --event EVENT.json`: the Actions run on one `event` without a
//! proxy, and what they decided, wrote and claimed, as one JSON object (CONTRACT §11). The
//! decision is the one the proxy would add to the built-in one, by the same rules.

use serde_json::{json, Map, Value};

use super::{js, Actions, ActionsConfig, LoadError, Requests};
use crate::engine::{Factor, Factors, Verdict};
use crate::session::{Metadata, RecordKind};

/// One `console` line: the file, the level (`info`, `warn`, `error`) and the text.
pub type LogLine = (String, String, String);

/// Runs `config`'s files on `event`: the printed object, and the `console` lines.
pub fn run(config: &ActionsConfig, event: &Value) -> Result<(Value, Vec<LogLine>), LoadError> {
    let Some(actions) = Actions::load(config)? else {
        return Ok((json!({"decision": "allow", "reason": null}), Vec::new()));
    };
    let ran = js::run_all(&mut None, &actions.sources(), &event.to_string(), actions.limits());
    let logs = ran
        .iter()
        .flat_map(|r| r.logs.iter().map(|(level, text)| (r.file.clone(), level.clone(), text.clone())))
        .collect();
    let requests = Requests::combine(&ran);
    Ok((report(&requests, &actions, event), logs))
}

fn report(requests: &Requests, actions: &Actions, event: &Value) -> Value {
    let decided = requests.verdict(actions.on_error());
    let mut out = Map::new();
    out.insert("decision".into(), decided.as_ref().map_or(Verdict::Allow, |d| d.verdict).as_str().into());
    out.insert("reason".into(), decided.as_ref().map(|d| d.reason.as_str()).into());
    if let Some(decided) = decided.as_ref().filter(|d| d.verdict == Verdict::Challenge) {
        let factors =
            decided.factors.as_ref().and_then(|f| Factors::new(*f.first()?, f.get(1..)?).ok()).unwrap_or_default();
        out.insert("challenge".into(), factor(factors.primary()));
        out.insert("additional_factors".into(), factors.additional().iter().map(|&f| factor(f)).collect());
    }
    if let Some(reason) = decided.as_ref().and_then(|d| d.deny.as_ref()) {
        out.insert("deny".into(), reason.clone().into());
    }
    let mut errors: Vec<String> = requests.errors.iter().map(|(file, message)| format!("{file}: {message}")).collect();
    for (key, kind, edits, record) in [
        ("session_metadata", RecordKind::Session, &requests.session, "session"),
        ("refresh_token_metadata", RecordKind::RefreshToken, &requests.refresh_token, "refresh_token"),
    ] {
        if edits.is_empty() {
            continue;
        }
        let current = stored(event, record);
        match current.and_then(|current| current.edited(edits)) {
            Ok(map) => {
                let written: Map<String, Value> = map.iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
                out.insert(key.into(), Value::Object(written));
            }
            Err(error) => errors.push(kind.wrap(&error)),
        }
    }
    out.insert("claims".into(), Value::Object(requests.claims.clone()));
    out.insert("error".into(), if errors.is_empty() { Value::Null } else { errors.join("; ").into() });
    Value::Object(out)
}

/// `event.session.metadata` (or the refresh token's), the map the writes apply to.
fn stored(event: &Value, record: &str) -> Result<Metadata, crate::session::MetadataError> {
    let pairs = event[record]["metadata"].as_object().into_iter().flatten();
    Metadata::from_pairs(pairs.map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())))
}

fn factor(factor: Factor) -> Value {
    json!({ "type": factor.as_str() })
}
