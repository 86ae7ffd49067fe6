//! Fuzz target `management_body`: arbitrary bytes as a Management API PATCH body, through the
//! same function the server runs after authentication (`helloguard::api::patch`), against a
//! memory store holding one session and one refresh token.
//!
//! It must never panic. Every answer must be a contract-shaped 400 `invalid_body` (with one of
//! the contract's messages, listed here verbatim), or a 200 whose record holds exactly the valid
//! map the body asked for; a refused body changes nothing.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use helloguard::api::{patch, Backend, Reply};
use helloguard::audit::{erased, AuditSink};
use helloguard::logout::plan::ClientPlanner;
use helloguard::logout::SessionEnder;
use helloguard::session::memory::MemoryStore;
use helloguard::session::{Device, Lifetimes, RecordKind, RefreshToken, Session, Store, Timestamp};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// CONTRACT §6.5 `invalid_body` messages that take no parameter, verbatim.
const FIXED_MESSAGES: [&str; 9] = [
    "Payload validation error: 'Invalid JSON'.",
    "Payload validation error: 'Too few properties defined (0), minimum 1'.",
    "Metadata must not exceed 25 entries. Each key and value must be ≤ 255 characters.",
    "Invalid metadata: Metadata must be an object",
    "Invalid metadata: Metadata key must be a string",
    r"Invalid metadata: Metadata keys must not contain null bytes (\x00)",
    "Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens",
    "Invalid metadata: Metadata value must be a string",
    r"Invalid metadata: Metadata values must not contain null bytes (\x00)",
];
const TYPE_NAMES: [&str; 6] = ["null", "boolean", "integer", "number", "string", "array"];

struct Discard;

impl AuditSink for Discard {
    fn record(&self, _: &dyn erased::Event) {}
}

struct World {
    runtime: tokio::runtime::Runtime,
    store: Arc<MemoryStore>,
    sessions: SessionEnder,
    audit: Discard,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let store = Arc::new(MemoryStore::new(Duration::from_secs(60)));
        let now = Timestamp::now();
        runtime.block_on(async {
            let session = Session::new("ses_fuzz".into(), now, Lifetimes::default(), Device::default());
            store.create_session(&session).await.unwrap();
            let token = RefreshToken::new("rt_fuzz".into(), now, Lifetimes::default(), Device::default());
            store.create_refresh_token(&token).await.unwrap();
        });
        let sessions = SessionEnder::new(store.clone(), Arc::new(Discard), Arc::new(ClientPlanner::new(&[])));
        World { runtime, store, sessions, audit: Discard }
    })
}

fn is_contract_message(message: &str) -> bool {
    if FIXED_MESSAGES.contains(&message) {
        return true;
    }
    if let Some(rest) = message.strip_prefix("Payload validation error: 'Expected type object but found type ") {
        return TYPE_NAMES.iter().any(|t| rest == format!("{t}'."));
    }
    message.starts_with("Payload validation error: 'Additional properties not allowed: ") && message.ends_with("'.")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (kind, id, field) = if selector & 1 == 0 {
        (RecordKind::Session, "ses_fuzz", "session_metadata")
    } else {
        (RecordKind::RefreshToken, "rt_fuzz", "refresh_token_metadata")
    };
    let content_type = if selector & 2 == 0 { Some("application/json") } else { Some("application/json; charset=utf-8") };
    let world = world();
    let backend = Backend { store: world.store.as_ref(), sessions: &world.sessions, audit: &world.audit };
    let stored = |world: &World| -> Value {
        world.runtime.block_on(async {
            match kind {
                RecordKind::Session => {
                    let s = world.store.get_session(id).await.unwrap().unwrap();
                    serde_json::to_value(s.record.session_metadata).unwrap()
                }
                RecordKind::RefreshToken => {
                    let t = world.store.get_refresh_token(id).await.unwrap().unwrap();
                    serde_json::to_value(t.record.refresh_token_metadata).unwrap()
                }
            }
        })
    };
    let before = stored(world);
    let outcome = world.runtime.block_on(patch(&backend, kind, id, content_type, body, Timestamp::now()));
    match outcome {
        Ok(Reply::Ok(record)) => {
            let map = record[field].as_object().expect("the answer carries the map");
            assert!(map.len() <= 25);
            for (key, value) in map {
                let value = value.as_str().expect("string values only");
                assert!(!key.is_empty() && key.len() <= 255);
                assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
                assert!(value.encode_utf16().count() <= 255 && !value.contains('\0'));
            }
            assert_eq!(stored(world), record[field], "the answer is what was stored");
        }
        Ok(Reply::Accepted) => panic!("PATCH never answers 202"),
        Err(error) => {
            assert_eq!(error.status().as_u16(), 400, "{error:?}");
            let body = error.body();
            assert_eq!(body["statusCode"], 400);
            assert_eq!(body["error"], "Bad Request");
            assert_eq!(body["errorCode"], "invalid_body");
            let message = body["message"].as_str().unwrap();
            assert!(is_contract_message(message), "{message}");
            assert_eq!(stored(world), before, "a refused body changes nothing");
        }
    }
});
