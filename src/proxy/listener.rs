//! The accept loop and the life of one connection: limit, capture, fingerprint, TLS handshake over
//! the replayed bytes, then HTTP/1.1 or HTTP/2 by ALPN until the client leaves or shutdown drains.
//!
//! Every failure closes only its own connection: a malformed or oversized hello (fail-open by
//! default: the handshake proceeds without a fingerprint), a client that sends nothing (hello
//! timeout, then handshake timeout), a client that never finishes its headers (header timeout).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::field::Empty;
use tracing::Instrument;

use super::capture::{capture, Replay};
use super::deadlines::Deadlines;
use super::header_timeout::HeaderTimeout;
use super::proxy_protocol::{self, HeaderError, Parsed};
use super::request::handle;
use super::state::{Connection, Shared};
use crate::config::{FailurePolicy, ProxyProtocol};
use crate::engine::CompareKey;

/// Serve `listener` on `[server] workers` event loops until `shutdown` turns true, then wait up to
/// the drain deadline for the connections in flight.
///
/// The calling runtime is the first worker; every other one is a thread with its own
/// single-threaded runtime. All accept from the same listening socket and serve each connection
/// they accept start to end, so no task moves between cores (the model of nginx's worker
/// processes): no work-stealing, no cross-core wake-ups on the per-request path.
pub async fn run(
    listener: TcpListener,
    tls: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let worker = Worker {
        index: 0,
        limit: Arc::new(Semaphore::new(shared.config.server.max_connections)),
        tls,
        shared,
        shutdown,
    };
    let listener = listener.into_std()?;
    let mut others = Vec::new();
    for index in 1..worker.shared.config.server.worker_count() {
        let (worker, listener) = (Worker { index, ..worker.clone() }, listener.try_clone()?);
        let (finished, finishing) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name(format!("helloguard-worker-{index}")).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let _ = finished.send(runtime.and_then(|runtime| runtime.block_on(worker.serve(listener))));
        })?;
        others.push(finishing);
    }
    let served = worker.serve(listener).await;
    for finishing in others {
        match finishing.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "a worker stopped with an error"),
            Err(_) => tracing::warn!("a worker thread ended early"),
        }
    }
    served
}

/// Connection ids for log lines, unique within the process.
static CONNECTION_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What every worker shares: the connection limit counts all of them.
#[derive(Clone)]
struct Worker {
    index: usize,
    limit: Arc<Semaphore>,
    tls: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
}

impl Worker {
    /// Accept until shutdown, then wait (on this runtime, which drives this worker's connections)
    /// until every worker's connections are done or the drain deadline passes.
    async fn serve(self, listener: std::net::TcpListener) -> std::io::Result<()> {
        let Worker { index, limit, tls, shared, mut shutdown } = self;
        let listener = TcpListener::from_std(listener)?;
        let deadlines = Deadlines::start();
        super::upkeep::start(shutdown.clone());
        loop {
            let (socket, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            shared.metrics.connections_accepted.fetch_add(1, Relaxed);
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                shared.metrics.connections_refused.fetch_add(1, Relaxed);
                drop(socket);
                continue;
            };
            let (tls, shared, drain) = (tls.clone(), shared.clone(), shutdown.clone());
            let worker = (index, deadlines.clone());
            // Every log line about this connection carries its id and peer, and once known its
            // SNI and ja4_stable (RUST_LOG=helloguard=debug adds a span per request). The span
            // wraps the connection's whole task: wrapping each request instead costs a span clone
            // and drop per request, more than entering it on each poll.
            let id = CONNECTION_IDS.fetch_add(1, Relaxed);
            let span = tracing::info_span!("connection", id, %peer, sni = Empty, ja4_stable = Empty);
            tokio::spawn(
                async move {
                    shared.metrics.connections_open.fetch_add(1, Relaxed);
                    serve_connection(socket, peer, worker, tls, &shared, drain).await;
                    shared.metrics.connections_open.fetch_sub(1, Relaxed);
                    drop(permit);
                }
                .instrument(span),
            );
        }
        drop(listener);
        let max = shared.config.server.max_connections as u32;
        let deadline = shared.config.server.drain_timeout.0;
        if tokio::time::timeout(deadline, limit.acquire_many(max)).await.is_err() {
            tracing::warn!("drain deadline reached with connections still open");
        }
        Ok(())
    }
}

async fn serve_connection(
    mut socket: TcpStream,
    peer: std::net::SocketAddr,
    (worker, deadlines): (usize, Deadlines),
    tls: TlsAcceptor,
    shared: &Arc<Shared>,
    drain: watch::Receiver<bool>,
) {
    let server = &shared.config.server;
    let _ = socket.set_nodelay(true);
    let handshake_deadline = tokio::time::Instant::now() + server.handshake_timeout.0;
    let protocol = server.proxy_protocol;
    let trusted = protocol != ProxyProtocol::Off && server.trusted_proxies.iter().any(|c| c.contains(peer.ip()));
    let (mut socket, peer) = if trusted {
        match read_proxy_header(&mut socket, protocol, server.hello_timeout.0).await {
            Ok((source, read_ahead)) => (Replay::new(read_ahead, socket), source.unwrap_or(peer)),
            // Counted before the socket closes: whoever sees it closed sees it counted.
            Err(reason) => return proxy_header_rejected(shared, peer, reason),
        }
    } else {
        (Replay::new(Vec::new(), socket), peer)
    };
    // `server.fingerprinting = false`: no capture at all (a kill switch, and the CPU benchmark's baseline).
    let (replayed, fingerprint) = if server.fingerprinting {
        let with_ja3n = shared.binder.policy().compare == CompareKey::Ja3n;
        let captured = match capture(&mut socket, server.max_hello_size, server.hello_timeout.0, with_ja3n).await {
            Ok(Some(captured)) => captured,
            Ok(None) | Err(_) => return, // closed or reset before a hello: nothing to serve
        };
        if protocol != ProxyProtocol::Off && !trusted && proxy_protocol::looks_like_header(&captured.bytes) {
            return proxy_header_rejected(shared, peer, "from an untrusted peer");
        }
        let fingerprint = match captured.fingerprint {
            Ok(fingerprint) => {
                shared.metrics.fingerprinted(captured.compute_time);
                Some(fingerprint)
            }
            Err(failure) => {
                shared.metrics.capture_failed(failure);
                tracing::info!(%peer, reason = failure.reason(), "no fingerprint for this connection");
                if server.capture_failure == FailurePolicy::Closed {
                    shared.metrics.connections_refused.fetch_add(1, Relaxed);
                    return;
                }
                None
            }
        };
        (captured.bytes, fingerprint)
    } else {
        (Vec::new(), None)
    };
    let stream = Replay::new(replayed, socket);
    let tls_stream = match tokio::time::timeout_at(handshake_deadline, tls.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            shared.metrics.handshakes_failed.fetch_add(1, Relaxed);
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            shared.metrics.handshakes_failed.fetch_add(1, Relaxed);
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    shared.metrics.handshakes_completed.fetch_add(1, Relaxed);
    let span = tracing::Span::current();
    if let Some(sni) = tls_stream.get_ref().1.server_name() {
        span.record("sni", sni);
    }
    if let Some(fingerprint) = &fingerprint {
        span.record("ja4_stable", fingerprint.binding.ja4_stable.as_str());
    }
    let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
    // HTTP/1: the time to the first request head; HTTP/2: the idle timeout (see `header_timeout`).
    let wait = if h2 { server.idle_timeout.0 } else { server.header_read_timeout.0 };
    let header_deadline = deadlines.at(deadlines.now() + wait);
    let header_timeout = if h2 {
        HeaderTimeout::for_streams(header_deadline.mover(), wait)
    } else {
        HeaderTimeout::new(header_deadline.mover(), wait)
    };
    let connection = Arc::new(Connection::new(peer, fingerprint, worker, deadlines));
    let service = {
        let shared = shared.clone();
        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let (shared, connection, header_timeout) = (shared.clone(), connection.clone(), header_timeout.clone());
            header_timeout.head_arrived();
            let version = request.version();
            let span = tracing::debug_span!("request", method = %request.method(), path = request.uri().path());
            async move {
                let response = handle(shared, connection, request).await;
                Ok::<_, std::convert::Infallible>(header_timeout.watch(version, response))
            }
            .instrument(span)
        })
    };
    let io = TokioIo::new(tls_stream);
    let ending = Ending { peer, header_deadline, drain, idle_timeout: server.idle_timeout.0, h2 };
    // HTTP/2 over TLS is chosen by ALPN only (RFC 9113 §3.3): without `h2` the client speaks HTTP/1.1.
    if h2 {
        let mut builder = http2::Builder::new(InSpan(tracing::Span::current()));
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(server.max_header_size).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(server.idle_timeout.0));
        ending.serve(builder.serve_connection(io, service), |connection| connection.graceful_shutdown()).await;
    } else {
        let connection = http1::Builder::new()
            // The header read timeout is kept by `header_timeout`, not by hyper.
            // A client may send its request and shut its write side: it still gets the answer.
            .half_close(true)
            // A response's head and body go into rustls as one buffer: one write rather than a
            // list of slices, which rustls would encrypt piece by piece.
            .writev(false)
            .max_buf_size(server.max_header_size.max(8192))
            // The read buffer may hold more than `max_buf_size` (a read fills its spare room), so
            // the head's own size is what is limited, exactly.
            .max_header_size(server.max_header_size)
            .serve_connection(io, service)
            .with_upgrades();
        ending.serve(connection, |connection| connection.graceful_shutdown()).await;
    }
}

/// Spawns HTTP/2's stream tasks inside the connection's span: a task does not inherit the span of
/// the task that spawned it, so its log lines would otherwise carry no connection.
#[derive(Clone)]
struct InSpan(tracing::Span);

impl<F> hyper::rt::Executor<F> for InSpan
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future.instrument(self.0.clone()));
    }
}

/// How a connection's HTTP serving ends: the client leaves, no request head arrives in time (an
/// HTTP/2 connection: no stream is open for the idle timeout), or shutdown drains it (in-flight
/// requests get up to the idle timeout to finish; the server's drain deadline bounds the whole).
struct Ending {
    peer: std::net::SocketAddr,
    header_deadline: super::deadlines::Deadline,
    drain: watch::Receiver<bool>,
    idle_timeout: Duration,
    h2: bool,
}

/// An idle HTTP/2 connection gets its GOAWAY; the client has this long to close it.
const GOAWAY_GRACE: Duration = Duration::from_secs(1);

impl Ending {
    async fn serve<C, E>(self, connection: C, graceful_shutdown: impl FnOnce(std::pin::Pin<&mut C>))
    where
        C: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let Ending { peer, header_deadline, mut drain, idle_timeout, h2 } = self;
        tokio::pin!(connection);
        tokio::select! {
            biased; // the connection first: no random choice on every request
            result = &mut connection => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            }
            () = header_deadline => {
                if h2 {
                    tracing::debug!(%peer, "HTTP/2 connection idle for the idle timeout; GOAWAY");
                    graceful_shutdown(connection.as_mut());
                    let _ = tokio::time::timeout(GOAWAY_GRACE, connection).await;
                } else {
                    tracing::debug!(%peer, "no request head within the header read timeout; closed");
                }
            }
            _ = drain.changed() => {
                graceful_shutdown(connection.as_mut());
                let _ = tokio::time::timeout(idle_timeout, connection).await;
            }
        }
    }
}

/// Read a trusted peer's PROXY header. Returns the source it names (`None`: LOCAL/UNKNOWN) and any
/// bytes read past the header; `Err` names why the connection is to be closed.
async fn read_proxy_header(
    socket: &mut TcpStream,
    protocol: ProxyProtocol,
    timeout: Duration,
) -> Result<(Option<std::net::SocketAddr>, Vec<u8>), &'static str> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut bytes = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        let read = match tokio::time::timeout_at(deadline, socket.read(&mut chunk)).await {
            Err(_) => return Err("timeout"),
            Ok(Ok(0) | Err(_)) => return Err("closed"),
            Ok(Ok(read)) => read,
        };
        bytes.extend_from_slice(&chunk[..read]);
        match proxy_protocol::parse(&bytes) {
            Ok(Parsed::NeedMore) => continue,
            Ok(Parsed::Complete { header, consumed }) if accepts(protocol, header.version) => {
                return Ok((header.source, bytes.split_off(consumed)));
            }
            Ok(Parsed::Complete { .. }) => return Err("version not enabled"),
            Err(HeaderError::NotProxy) => return Err("missing"),
            Err(HeaderError::Malformed(_)) => return Err("malformed"),
        }
    }
}

/// Whether `[server] proxy_protocol` accepts a header of this version.
fn accepts(protocol: ProxyProtocol, version: proxy_protocol::Version) -> bool {
    use proxy_protocol::Version;
    matches!(
        (protocol, version),
        (ProxyProtocol::Any, _) | (ProxyProtocol::V1, Version::V1) | (ProxyProtocol::V2, Version::V2)
    )
}

fn proxy_header_rejected(shared: &Shared, peer: std::net::SocketAddr, reason: &'static str) {
    shared.metrics.proxy_headers_rejected.fetch_add(1, Relaxed);
    tracing::info!(%peer, reason, "PROXY protocol header rejected; connection closed");
}
