//! The `decision` audit event (CONTRACT §9) and where audit lines go: one JSON object per line,
//! never a cookie, token, `Authorization` header or key (the event holds only ids, which are
//! hashes, and fingerprints).

use std::io::Write;
use std::sync::Mutex;

use super::json_object::JsonObject;
use super::{Decision, Mode, Observed, Outcome};
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
        object.close();
        out
    }
}

impl erased::Event for DecisionEvent<'_> {
    fn to_json_line(&self) -> Result<String, serde_json::Error> {
        Ok(self.to_json())
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
        let mut line = match event.to_json_line() {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "audit event did not serialize");
                return;
            }
        };
        // The line and its newline in one write: one system call on an unbuffered file (where
        // `writeln!` makes two), and whole lines for other appenders to the same file.
        line.push('\n');
        // A writer that panicked mid-line leaves at worst a torn line; keep auditing.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::error!(error = %e, "audit line not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that keeps each `write` call apart, as a file's system calls are.
    #[derive(Default)]
    struct Calls(Vec<Vec<u8>>);

    impl Write for Calls {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.push(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_event_is_one_whole_line_in_one_write() {
        let sink = JsonLines::new(Calls::default());
        sink.record(&serde_json::json!({"event": "first"}));
        sink.record(&serde_json::json!({"event": "second", "n": 2}));
        let calls = sink.into_inner().0;
        assert_eq!(calls.len(), 2, "one write per event");
        for (call, event) in calls.iter().zip(["first", "second"]) {
            let text = std::str::from_utf8(call).unwrap();
            assert!(text.ends_with('\n') && text.matches('\n').count() == 1, "{text:?}");
            let line: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(line["event"], event);
        }
    }
}
