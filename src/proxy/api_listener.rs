//! The Management API's own listener (`[api] listen`): TLS with the proxy's certificate, or plain
//! HTTP when `[api] plain_http` is set (loopback addresses only, checked by the config). Every
//! request goes to [`crate::api::Api::handle`]; there is no upstream and no fingerprinting here.

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::state::Shared;
use crate::http::body::boxed;

/// Accept until `shutdown` turns true; each connection is served on its own task.
pub async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(error) => {
                    tracing::warn!(%error, "management API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let (tls, shared) = (tls.clone(), shared.clone());
        tokio::spawn(async move {
            let _ = socket.set_nodelay(true);
            match tls {
                None => serve(socket, shared).await,
                Some(acceptor) => {
                    let timeout = shared.config.server.handshake_timeout.0;
                    match tokio::time::timeout(timeout, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => serve(stream, shared).await,
                        Ok(Err(error)) => tracing::debug!(%error, "management API TLS handshake failed"),
                        Err(_) => tracing::debug!("management API TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S, shared: Arc<Shared>) {
    let header_timeout = shared.config.server.header_read_timeout.0;
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let shared = shared.clone();
        async move {
            let response = shared.api.handle(shared.api_backend(), request.map(boxed)).await;
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(%error, "management API connection ended with an error");
    }
}
