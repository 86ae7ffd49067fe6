//! `[audit]`: where audit lines go.

use std::path::PathBuf;

use serde::Deserialize;

/// `[audit]`: where decision events go, one JSON object per line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// A file to append to; absent means standard output.
    pub path: Option<PathBuf>,
    /// Lines waiting for the writer at most; past it, lines are dropped and counted
    /// (`helloguard_audit_lines_dropped_total`) rather than stall requests.
    pub queue: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { path: None, queue: super::Writer::DEFAULT_QUEUE }
    }
}
