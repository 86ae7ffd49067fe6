//! Kept-alive HTTP/1.1 connections to the upstream origin; each worker has its own pool, so a
//! connection is driven by the event loop that uses it.
//!
//! A request takes the most recently used idle connection, or opens one. The connection comes
//! back with the end of its response: the response body carries it and returns it when dropped,
//! which the proxy does once the body is sent on (no task per request waits for it). Whether a
//! returned connection can take another request is known at the next checkout: one closed by the
//! upstream, left with a body half read, or upgraded is dropped then. A request that a reused
//! connection refused before sending anything (the upstream closed it meanwhile) is sent again,
//! once, on a new connection.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::TrySendError;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::http::body::{boxed, Body, Guarded};

/// Connections to one origin.
pub struct Pool {
    /// `host:port`.
    address: String,
    /// Most recently returned last.
    idle: Mutex<Vec<Idle>>,
    limits: Limits,
}

/// How many connections a pool keeps and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_idle: usize,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl Pool {
    pub fn new(address: String, limits: Limits) -> Arc<Self> {
        Arc::new(Self { address, idle: Mutex::new(Vec::new()), limits })
    }

    /// Send `request` (origin-form URI, HTTP/1.1), begun at `started`, and return the response,
    /// whose body hands the connection back when dropped, and when its head arrived. Errors are
    /// text for the 502 answer. The paths a kept-alive connection does not take (a new
    /// connection, a resend) are boxed, so that the future every request moves stays small.
    /// (An `async` block rather than an `async fn`, which would hold `request` twice.)
    #[allow(clippy::manual_async_fn, reason = "an async fn holds its arguments twice")]
    pub fn send(
        self: &Arc<Self>,
        request: Request<Body>,
        started: Instant,
    ) -> impl Future<Output = Result<(Response<Body>, Instant), String>> + '_ {
        async move {
            let (sender, response) = match self.checkout(started).await {
                Some(mut sender) => match sender.try_send_request(request).await {
                    Ok(response) => (sender, response),
                    Err(refused) => Box::pin(self.resend(refused)).await?,
                },
                None => Box::pin(self.send_on_new(request)).await?,
            };
            let (pool, answered) = (Arc::downgrade(self), Instant::now());
            let returning = Returning { sender: Some(sender), pool, answered };
            Ok((response.map(|body| boxed(Guarded::new(body, returning))), answered))
        }
    }

    /// A request that a reused connection refused before sending anything (the upstream closed
    /// it meanwhile) goes out again, once, on a new connection.
    async fn resend(
        &self,
        mut refused: TrySendError<Request<Body>>,
    ) -> Result<(SendRequest<Body>, Response<Incoming>), String> {
        match refused.take_message() {
            Some(request) => self.send_on_new(request).await,
            None => Err(refused.into_error().to_string()),
        }
    }

    /// `request` on a new connection.
    async fn send_on_new(&self, request: Request<Body>) -> Result<(SendRequest<Body>, Response<Incoming>), String> {
        let mut sender = self.connect().await?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        Ok((sender, response))
    }

    /// The most recently used idle connection that is ready for a request at `now`.
    async fn checkout(&self, now: Instant) -> Option<SendRequest<Body>> {
        loop {
            let idle = self.lock().pop()?;
            if now.saturating_duration_since(idle.since) >= self.limits.idle_timeout {
                continue; // dropping the sender closes the connection
            }
            let mut sender = idle.sender;
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// Keep `sender`, idle since `now` (its last response's head: close enough for the idle
    /// timeout, and no clock read when the body ends).
    fn put(&self, sender: SendRequest<Body>, now: Instant) {
        let keep = self.limits.max_idle;
        if sender.is_closed() || keep == 0 {
            return;
        }
        let mut idle = self.lock();
        let timeout = self.limits.idle_timeout;
        // The oldest first: drop the expired ones, then any beyond `keep` with this one.
        let expired = idle.iter().take_while(|i| now.saturating_duration_since(i.since) >= timeout).count();
        let over = (idle.len() - expired + 1).saturating_sub(keep);
        idle.drain(..expired + over);
        idle.push(Idle { sender, since: now });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn connect(&self) -> Result<SendRequest<Body>, String> {
        let address = &self.address;
        let stream = tokio::time::timeout(self.limits.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| format!("connecting to {address} timed out"))?
            .map_err(|error| format!("cannot connect to {address}: {error}"))?;
        let _ = stream.set_nodelay(true);
        // A request's head and body leave in one buffer and one `write` rather than hyper's
        // default `writev` of several slices, which costs more per keep-alive request.
        let (sender, connection) =
            http1::Builder::new().writev(false).handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Held by a response body (see [`Guarded`]): hands the connection back to the pool when the body
/// is dropped.
struct Returning {
    sender: Option<SendRequest<Body>>,
    pool: Weak<Pool>,
    answered: Instant,
}

impl Drop for Returning {
    fn drop(&mut self) {
        if let (Some(sender), Some(pool)) = (self.sender.take(), self.pool.upgrade()) {
            pool.put(sender, self.answered);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::http::body::full;
    use bytes::Bytes;

    const LIMITS: Limits =
        Limits { max_idle: 8, idle_timeout: Duration::from_secs(60), connect_timeout: Duration::from_secs(2) };

    /// An origin that answers every request on a connection with `answer`, then closes the
    /// connection after `requests_per_connection` requests; counts the connections it accepted.
    async fn origin(answer: &'static str, requests_per_connection: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    for _ in 0..requests_per_connection {
                        let mut read = 0;
                        while !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut buffer[read..]).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => read += n,
                            }
                        }
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (address, accepted)
    }

    /// A `GET /` sent now through `pool`.
    async fn send(pool: &Arc<Pool>) -> Result<Response<Body>, String> {
        let get = Request::builder().uri("/").header("host", "origin").body(full("")).unwrap();
        pool.send(get, Instant::now()).await.map(|(response, _)| response)
    }

    async fn body_of(response: Response<Body>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_is_read() {
        let (address, accepted) = origin(OK, usize::MAX).await;
        let pool = Pool::new(address, LIMITS);
        for _ in 0..5 {
            assert_eq!(body_of(send(&pool).await.unwrap()).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_origin_closed_is_replaced() {
        // One request per connection: every reuse finds the connection closed (at checkout, or
        // refused before sending) and the request still gets its answer on a new connection.
        let (address, accepted) = origin(OK, 1).await;
        let pool = Pool::new(address, LIMITS);
        for _ in 0..5 {
            assert_eq!(body_of(send(&pool).await.unwrap()).await, "ok");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_body_dropped_half_read_does_not_come_back() {
        let long = "HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nonly the start";
        let (address, accepted) = origin(long, usize::MAX).await;
        let pool = Pool::new(address, LIMITS);
        drop(send(&pool).await.unwrap());
        let second = tokio::time::timeout(Duration::from_secs(2), send(&pool)).await.unwrap();
        // The second request went out on a new connection (whose answer is the same truncated one).
        assert!(second.is_ok());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn idle_connections_expire_and_are_capped() {
        let (address, accepted) = origin(OK, usize::MAX).await;
        let expiring = Limits { idle_timeout: Duration::from_millis(50), ..LIMITS };
        let pool = Pool::new(address.clone(), expiring);
        body_of(send(&pool).await.unwrap()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        body_of(send(&pool).await.unwrap()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "the expired connection was not reused");

        let capped = Pool::new(address, Limits { max_idle: 2, ..LIMITS });
        let responses: Vec<_> = futures_util::future::join_all((0..4).map(|_| send(&capped))).await;
        drop(responses);
        assert_eq!(capped.lock().len(), 2);
    }

    #[tokio::test]
    async fn an_origin_that_is_down_is_an_error_naming_it() {
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
        let pool = Pool::new(free.clone(), LIMITS);
        let error = send(&pool).await.unwrap_err();
        assert!(error.starts_with(&format!("cannot connect to {free}")), "{error}");
    }
}
