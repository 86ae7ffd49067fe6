//! The `decision` audit event (CONTRACT §9) and where audit lines go: one JSON object per line,
//! never a cookie, token, `Authorization` header or key (the event holds only ids, which are
//! hashes, and fingerprints).

use std::io::Write;
use std::sync::Mutex;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{Decision, Mode, Observed, Outcome};
use crate::session::{Metadata, Timestamp};

/// `{"ja3","ja4","ja4_stable"}` of the stored record, each `null` when absent.
struct StoredFingerprints<'a>(&'a Metadata);

impl Serialize for StoredFingerprints<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        for key in ["ja3", "ja4", "ja4_stable"] {
            map.serialize_entry(key, &self.0.get(key))?;
        }
        map.end()
    }
}

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
}

impl Serialize for DecisionEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("event", "decision")?;
        map.serialize_entry("time", &self.time)?;
        self.decision.serialize_fields(&mut map)?;
        map.serialize_entry("mode", &self.mode)?;
        map.serialize_entry("outcome", &self.outcome)?;
        map.serialize_entry("user_id", &self.user_id)?;
        map.serialize_entry("observed", &self.observed)?;
        map.serialize_entry("stored", &self.stored.map(StoredFingerprints))?;
        map.serialize_entry("client_addr", &self.client_addr)?;
        if let Some(error) = self.error {
            map.serialize_entry("error", error)?;
        }
        map.end()
    }
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    /// Records one event. A sink that cannot write logs the failure; auditing never fails a
    /// request.
    fn record(&self, event: &dyn erased::Event);
}

/// Object-safe view of a serializable event.
pub mod erased {
    /// Anything that serializes to one JSON object.
    pub trait Event {
        fn to_json_line(&self) -> Result<String, serde_json::Error>;
    }

    impl<T: serde::Serialize> Event for T {
        fn to_json_line(&self) -> Result<String, serde_json::Error> {
            serde_json::to_string(self)
        }
    }
}

/// JSON lines to any writer (stdout, a file, a buffer in tests).
pub struct JsonLines<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        Self { out: Mutex::new(out) }
    }

    /// The writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl<W: Write + Send> AuditSink for JsonLines<W> {
    fn record(&self, event: &dyn erased::Event) {
        let line = match event.to_json_line() {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "audit event did not serialize");
                return;
            }
        };
        // A writer that panicked mid-line leaves at worst a torn line; keep auditing.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            tracing::error!(error = %e, "audit line not written");
        }
    }
}
