//! HTTP/1.1's header read timeout, kept by the proxy rather than by hyper: one deadline per
//! connection, due `header_read_timeout` after the connection starts waiting for a request head
//! (after the handshake, and after each response is sent), parked from the head's arrival until its
//! response is done. The connection is closed when it falls due: a client that never finishes its
//! headers, or a keep-alive connection left idle.
//!
//! hyper keeps the same timeout itself when given a timer, but it then boxes a new sleep for every
//! request and tries one more read after each response to start it; kept here, it is a few stores
//! into the deadline's slot (docs/PERFORMANCE.md has the instruction counts).
//!
//! HTTP/2 multiplexes requests, so there is no head to wait for; the same deadline is the
//! connection's idle timeout instead: due `idle_timeout` after the handshake and after its last
//! open stream's response is done, parked while any stream is open. Pings do not move it, so an
//! idle client cannot hold one of `max_connections` by answering them.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hyper::{Response, Version};

use super::deadlines::Mover;
use crate::http::body::{Body, Guarded};

/// What the requests of one connection do to its header deadline.
#[derive(Clone)]
pub struct HeaderTimeout {
    deadline: Mover,
    timeout: Duration,
    /// HTTP/2: the streams open now; the deadline waits until none is.
    streams: Option<Arc<AtomicUsize>>,
}

/// A response body that sets the header deadline again when it is done.
pub type Watched = Guarded<Body, Option<Rearm>>;

impl HeaderTimeout {
    /// An HTTP/1 connection's: `timeout` is the header read timeout.
    pub fn new(deadline: Mover, timeout: Duration) -> Self {
        Self { deadline, timeout, streams: None }
    }

    /// An HTTP/2 connection's: `idle` is the idle timeout.
    pub fn for_streams(deadline: Mover, idle: Duration) -> Self {
        Self { deadline, timeout: idle, streams: Some(Arc::default()) }
    }

    /// A request's head has arrived (hyper calls the service with it): the deadline waits.
    pub fn head_arrived(&self) {
        if let Some(streams) = &self.streams {
            streams.fetch_add(1, Relaxed);
        }
        self.deadline.park();
    }

    /// The response to `version`'s request; once its body is done (sent, or dropped), an HTTP/1
    /// connection waits for the next head within the timeout again, and an HTTP/2 connection with
    /// no other stream open starts its idle timeout.
    pub fn watch(self, _version: Version, response: Response<Body>) -> Response<Watched> {
        response.map(|body| Guarded::new(body, Some(Rearm(self))))
    }
}

/// Sets the header deadline again when dropped.
pub struct Rearm(HeaderTimeout);

impl Drop for Rearm {
    fn drop(&mut self) {
        // Every stream of a connection is served on the connection's worker thread, so a count
        // that reaches zero here cannot be raised again before the deadline is set.
        let last = self.0.streams.as_ref().is_none_or(|streams| streams.fetch_sub(1, Relaxed) == 1);
        if last {
            self.0.deadline.set_after(self.0.timeout);
        }
    }
}
