//! HTTP/1.1's header read timeout, kept by the proxy rather than by hyper: one deadline per
//! connection, due `header_read_timeout` after the connection starts waiting for a request head
//! (after the handshake, and after each response is sent), parked from the head's arrival until its
//! response is done. The connection is closed when it falls due: a client that never finishes its
//! headers, or a keep-alive connection left idle.
//!
//! hyper keeps the same timeout itself when given a timer, but it then boxes a new sleep for every
//! request and tries one more read after each response to start it (callgrind, per keep-alive
//! request: 43.2k instructions with hyper's timeout on tokio's timer, 42.0k on [`super::deadlines`],
//! 41.7k kept here, where it is a few stores into the deadline's slot).
//!
//! HTTP/2 multiplexes requests, so there is no head to wait for: an `h2` connection parks its
//! deadline for good at its first request (and one that negotiated `h2` by ALPN never arms it).

use std::time::Duration;

use hyper::{Response, Version};

use super::body::{Body, Guarded};
use super::deadlines::Mover;

/// What the requests of one connection do to its header deadline.
#[derive(Clone)]
pub struct HeaderTimeout {
    deadline: Mover,
    timeout: Duration,
}

/// A response body that sets the header deadline again when it is done.
pub type Watched = Guarded<Body, Option<Rearm>>;

impl HeaderTimeout {
    pub fn new(deadline: Mover, timeout: Duration) -> Self {
        Self { deadline, timeout }
    }

    /// A request's head has arrived (hyper calls the service with it): the deadline waits.
    pub fn head_arrived(&self) {
        self.deadline.park();
    }

    /// The response to `version`'s request; once its body is done (sent, or dropped), an HTTP/1
    /// connection waits for the next head within the timeout again.
    pub fn watch(self, version: Version, response: Response<Body>) -> Response<Watched> {
        let rearm = (version != Version::HTTP_2).then_some(Rearm(self));
        response.map(|body| Guarded::new(body, rearm))
    }
}

/// Sets the header deadline again when dropped.
pub struct Rearm(HeaderTimeout);

impl Drop for Rearm {
    fn drop(&mut self) {
        self.0.deadline.set_after(self.0.timeout);
    }
}
