//! The proxy bench's floor: a bare tokio-rustls + hyper HTTP/1.1 reverse proxy with none of
//! helloguard's work (no ClientHello capture, fingerprint, routes, store, audit, timeouts or
//! header hygiene). One current-thread runtime, as helloguard runs on one core; upstream
//! keep-alive connections reused last-in first-out; the forwarding headers that helloguard and
//! the bench's nginx set (`X-Forwarded-For`, `-Proto`, `-Host`). What helloguard costs on top of
//! its stack is the gap between the two.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};

type Body = UnsyncBoxBody<Bytes, hyper::Error>;
/// Idle upstream connections; the last returned is the next used.
type Pool = Rc<RefCell<Vec<SendRequest<Incoming>>>>;

/// Serves `listen` until the process is killed.
pub fn run(listen: SocketAddr, upstream: SocketAddr, cert: &Path, key: &Path) {
    let certificates = CertificateDer::pem_file_iter(cert).expect("certificate file").map(|c| c.expect("certificate"));
    let key = PrivateKeyDer::from_pem_file(key).expect("private key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certificates.collect(), key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    tokio::task::LocalSet::new().block_on(&runtime, async move {
        let listener = TcpListener::bind(listen).await.expect("bare proxy bind");
        let pool = Pool::default();
        loop {
            let Ok((socket, peer)) = listener.accept().await else { continue };
            let _ = socket.set_nodelay(true);
            let (acceptor, pool) = (acceptor.clone(), pool.clone());
            tokio::task::spawn_local(async move {
                let Ok(tls) = acceptor.accept(socket).await else { return };
                let forwarded_for = HeaderValue::from_str(&peer.ip().to_string()).expect("address header");
                let service = hyper::service::service_fn(move |request| {
                    forward(request, upstream, pool.clone(), forwarded_for.clone())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .writev(false)
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
}

async fn forward(
    mut request: Request<Incoming>,
    upstream: SocketAddr,
    pool: Pool,
    forwarded_for: HeaderValue,
) -> Result<Response<Body>, hyper::Error> {
    let headers = request.headers_mut();
    let host = headers.get(HOST).cloned();
    headers.insert("x-forwarded-for", forwarded_for);
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host);
    }
    let Some(mut sender) = checkout(&pool, upstream).await else {
        let mut answer = Response::new(Full::new(Bytes::from_static(b"{\"error\":\"bad_gateway\"}")));
        *answer.status_mut() = StatusCode::BAD_GATEWAY;
        return Ok(answer.map(|body| body.map_err(|never| match never {}).boxed_unsync()));
    };
    let response = sender.send_request(request).await;
    pool.borrow_mut().push(sender);
    Ok(response?.map(BodyExt::boxed_unsync))
}

/// An idle upstream connection ready for a request, or a new one.
async fn checkout(pool: &Pool, upstream: SocketAddr) -> Option<SendRequest<Incoming>> {
    loop {
        let idle = pool.borrow_mut().pop();
        let Some(mut sender) = idle else { break };
        if sender.ready().await.is_ok() {
            return Some(sender);
        }
    }
    let socket = TcpStream::connect(upstream).await.ok()?;
    let _ = socket.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::Builder::new().writev(false).handshake(TokioIo::new(socket)).await.ok()?;
    tokio::task::spawn_local(connection);
    Some(sender)
}
