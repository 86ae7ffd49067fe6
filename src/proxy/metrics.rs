//! Counters and a histogram for `/metrics` (Prometheus text format), lock-free on the hot path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::capture::CaptureFailure;
use crate::logout::delivery::DeliveryCounts;

/// Upper bounds of the fingerprint-time histogram, in seconds.
const FINGERPRINT_BUCKETS: [f64; 8] = [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3];
/// Upper bounds of the upstream-latency histogram, in seconds.
const UPSTREAM_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// A fixed-bucket histogram.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; 8],
    count: AtomicU64,
    /// Sum in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, bounds: &[f64; 8], value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(i) = bounds.iter().position(|&b| seconds <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str, bounds: &[f64; 8]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_nanos.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Everything the proxy counts.
#[derive(Default)]
pub struct Metrics {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_open: AtomicU64,
    pub handshakes_completed: AtomicU64,
    pub handshakes_failed: AtomicU64,
    capture_failures: [AtomicU64; 5],
    fingerprint_time: Histogram,
    pub requests: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub upstream_timeouts: AtomicU64,
    upstream_latency: Histogram,
    pub token_bodies_unexamined: AtomicU64,
    /// Requests refused because they could be read more than one way (CONTRACT §1.1).
    pub requests_refused: AtomicU64,
    /// Token-route bodies not complete within `server.body_read_timeout` (408).
    pub body_read_timeouts: AtomicU64,
    pub store_refusals: AtomicU64,
    pub proxy_headers_rejected: AtomicU64,
    pub certificate_reloads: AtomicU64,
    pub certificate_reload_failures: AtomicU64,
    /// Action file sets reloaded, and reloads that kept the previous set (a file did not compile).
    pub action_reloads: AtomicU64,
    pub action_reload_failures: AtomicU64,
    /// What the binding layer counts (decisions, write failures, revoked uses, store errors).
    pub binding: Arc<crate::binding::Counters>,
    /// Shared with the back-channel logout workers, which count their attempts into it.
    pub logout_deliveries: Arc<DeliveryCounts>,
}

impl Metrics {
    pub fn capture_failed(&self, failure: CaptureFailure) {
        if let Some(i) = CaptureFailure::ALL.iter().position(|&f| f == failure) {
            self.capture_failures[i].fetch_add(1, Relaxed);
        }
    }

    pub fn fingerprinted(&self, time: Duration) {
        self.fingerprint_time.observe(&FINGERPRINT_BUCKETS, time);
    }

    pub fn upstream_answered(&self, latency: Duration) {
        self.upstream_latency.observe(&UPSTREAM_BUCKETS, latency);
    }

    /// The Prometheus text exposition; `audit_dropped`: audit lines dropped so far.
    pub fn render(&self, audit_dropped: u64) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Relaxed));
        };
        counter(
            &mut out,
            "helloguard_connections_accepted_total",
            "TCP connections accepted.",
            &self.connections_accepted,
        );
        counter(
            &mut out,
            "helloguard_connections_refused_total",
            "Connections refused (limit or fail-closed capture).",
            &self.connections_refused,
        );
        let _ = writeln!(
            out,
            "# HELP helloguard_connections_open Connections open now.\n# TYPE helloguard_connections_open gauge\nhelloguard_connections_open {}",
            self.connections_open.load(Relaxed)
        );
        counter(
            &mut out,
            "helloguard_handshakes_completed_total",
            "TLS handshakes completed.",
            &self.handshakes_completed,
        );
        counter(
            &mut out,
            "helloguard_handshakes_failed_total",
            "TLS handshakes failed or timed out.",
            &self.handshakes_failed,
        );
        let _ = writeln!(out, "# HELP helloguard_capture_failures_total ClientHellos not fingerprinted, by reason.\n# TYPE helloguard_capture_failures_total counter");
        for (failure, value) in CaptureFailure::ALL.iter().zip(&self.capture_failures) {
            let _ = writeln!(
                out,
                "helloguard_capture_failures_total{{reason=\"{}\"}} {}",
                failure.reason(),
                value.load(Relaxed)
            );
        }
        self.fingerprint_time.render(
            &mut out,
            "helloguard_fingerprint_seconds",
            "Time to parse and fingerprint a ClientHello.",
            &FINGERPRINT_BUCKETS,
        );
        let _ = writeln!(
            out,
            "# HELP helloguard_decisions_total Decisions by kind and mode.\n# TYPE helloguard_decisions_total counter"
        );
        for (verdict, mode, value) in self.binding.decisions() {
            let _ = writeln!(out, "helloguard_decisions_total{{decision=\"{verdict}\",mode=\"{mode}\"}} {value}");
        }
        counter(&mut out, "helloguard_requests_total", "HTTP requests handled.", &self.requests);
        counter(
            &mut out,
            "helloguard_upstream_errors_total",
            "Upstream connection or protocol errors (502).",
            &self.upstream_errors,
        );
        counter(&mut out, "helloguard_upstream_timeouts_total", "Upstream timeouts (504).", &self.upstream_timeouts);
        self.upstream_latency.render(
            &mut out,
            "helloguard_upstream_seconds",
            "Upstream response-header latency.",
            &UPSTREAM_BUCKETS,
        );
        counter(
            &mut out,
            "helloguard_token_bodies_unexamined_total",
            "Token responses over 64 KiB passed through unexamined.",
            &self.token_bodies_unexamined,
        );
        counter(
            &mut out,
            "helloguard_requests_refused_total",
            "Requests refused because they could be read more than one way (ambiguous cookie or token request).",
            &self.requests_refused,
        );
        counter(
            &mut out,
            "helloguard_body_read_timeouts_total",
            "Token-route bodies not complete within server.body_read_timeout (408).",
            &self.body_read_timeouts,
        );
        counter(
            &mut out,
            "helloguard_logout_end_failures_total",
            "Logout-route requests whose session could not be ended in the store.",
            &self.binding.logout_end_failures,
        );
        counter(
            &mut out,
            "helloguard_metadata_write_failures_total",
            "Engine metadata writes that failed.",
            &self.binding.metadata_write_failures,
        );
        counter(
            &mut out,
            "helloguard_revoked_uses_total",
            "Requests presenting a revoked session or token.",
            &self.binding.revoked_uses,
        );
        counter(
            &mut out,
            "helloguard_store_errors_total",
            "Session store operations that failed.",
            &self.binding.store_errors,
        );
        let _ = writeln!(
            out,
            "# HELP helloguard_audit_lines_dropped_total Audit lines dropped because the audit writer could not keep up.\n# TYPE helloguard_audit_lines_dropped_total counter\nhelloguard_audit_lines_dropped_total {audit_dropped}"
        );
        counter(
            &mut out,
            "helloguard_store_refusals_total",
            "Login and token requests answered 503 because the store failed (store.on_error = closed).",
            &self.store_refusals,
        );
        counter(
            &mut out,
            "helloguard_proxy_headers_rejected_total",
            "Connections closed for a missing, malformed or untrusted PROXY protocol header.",
            &self.proxy_headers_rejected,
        );
        counter(
            &mut out,
            "helloguard_certificate_reloads_total",
            "Certificate pairs reloaded.",
            &self.certificate_reloads,
        );
        counter(
            &mut out,
            "helloguard_certificate_reload_failures_total",
            "Certificate reloads that failed (the previous certificate stays in service).",
            &self.certificate_reload_failures,
        );
        counter(
            &mut out,
            "helloguard_action_errors_total",
            "Action invocations that threw, rejected, ran out of time or memory, or asked for something invalid.",
            &self.binding.action_errors,
        );
        counter(&mut out, "helloguard_action_reloads_total", "Action file sets reloaded.", &self.action_reloads);
        counter(
            &mut out,
            "helloguard_action_reload_failures_total",
            "Action reloads that failed (a file did not compile or could not be read; the previous set stays in service).",
            &self.action_reload_failures,
        );
        let _ = writeln!(
            out,
            "# HELP helloguard_logout_deliveries_total Back-channel logout attempts, by outcome (retry: failed, tried again; failed: final).\n# TYPE helloguard_logout_deliveries_total counter"
        );
        for (outcome, value) in self.logout_deliveries.by_outcome() {
            let _ = writeln!(out, "helloguard_logout_deliveries_total{{outcome=\"{outcome}\"}} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Mode, Verdict};

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.capture_failed(CaptureFailure::TooLarge);
        m.fingerprinted(Duration::from_nanos(1500));
        m.binding.decided(Verdict::Challenge, Mode::Enforce);
        let text = m.render(3);
        assert!(text.contains("helloguard_capture_failures_total{reason=\"too_large\"} 1"), "{text}");
        assert!(text.contains("helloguard_fingerprint_seconds_bucket{le=\"0.000002\"} 1"), "{text}");
        assert!(text.contains("helloguard_decisions_total{decision=\"challenge\",mode=\"enforce\"} 1"));
        assert!(text.contains("helloguard_audit_lines_dropped_total 3"), "{text}");
    }
}
