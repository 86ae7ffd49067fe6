//! Audit events (CONTRACT §9): one JSON object per line, for every decision, revoked use, session
//! end, logout delivery attempt and Management API write.
//!
//! | file | owns |
//! |---|---|
//! | [`events`] | the typed events |
//! | [`sink`] | where lines go: a writer thread behind a bounded queue ([`Writer`]), or the caller's thread ([`JsonLines`]) |
//!
//! Recording never fails and never blocks a request: a sink that cannot keep up drops lines and
//! counts them.

pub mod events;
pub mod options;
pub mod sink;

pub use events::{ActionError, ApiWrite, DecisionEvent, LogoutAttempt, RevokedUse, SessionEnded};
pub use sink::{JsonLines, Writer};

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    /// Records one event. A sink that cannot write logs the failure; auditing never fails a
    /// request.
    fn record(&self, event: &dyn erased::Event);

    /// Lines dropped because the sink could not keep up (`helloguard_audit_lines_dropped_total`).
    fn dropped(&self) -> u64 {
        0
    }
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
