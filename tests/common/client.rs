//! A rustls + hyper HTTP/1.1 client for the proxy tests. Its TCP stream records every byte it writes
//! (a tee), so a test can fingerprint the very hello the proxy received, and can pace its writes
//! (small pieces with pauses), as a real network splits a large hello into segments.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, HelloReader, Progress, Transport};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::client::TlsStream;

/// Writes of at most `piece` bytes, each followed by `pause`.
#[derive(Clone, Copy)]
pub struct Pace {
    pub piece: usize,
    pub pause: Duration,
}

/// A TCP stream that keeps a copy of everything written (the client's hello among it).
pub struct Tee {
    inner: TcpStream,
    written: Arc<Mutex<Vec<u8>>>,
    pace: Option<Pace>,
    pause: Option<Pin<Box<Sleep>>>,
}

impl AsyncRead for Tee {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tee {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(pause) = self.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        let limit = self.pace.map_or(buf.len(), |p| p.piece.min(buf.len()));
        let poll = Pin::new(&mut self.inner).poll_write(cx, &buf[..limit]);
        if let Poll::Ready(Ok(n)) = &poll {
            self.written.lock().unwrap().extend_from_slice(&buf[..*n]);
            if let Some(pace) = self.pace {
                self.pause = Some(Box::pin(tokio::time::sleep(pace.pause)));
            }
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Client builds that differ in what their hello offers.
#[derive(Clone, Copy)]
pub enum Client {
    Default,
    /// One TLS 1.3 cipher suite only: another JA4 part b, so another `ja4_stable`.
    Aes128Only,
    /// ALPN padded with extra protocol names so the hello is as large as Chromium's post-quantum
    /// one (> 1.8 KB); `http/1.1` stays first, so JA4 is unchanged in form.
    Large,
}

/// Where to connect and what to trust.
pub struct Target<'a> {
    pub addr: SocketAddr,
    pub roots: &'a [CertificateDer<'static>],
    pub server_name: &'a str,
}

/// An established TLS connection and the bytes its client wrote so far.
pub struct Connected {
    pub tls: TlsStream<Tee>,
    pub written: Arc<Mutex<Vec<u8>>>,
}

pub fn client_config(client: Client, roots: &[CertificateDer<'static>]) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let mut provider = rustls::crypto::ring::default_provider();
    if let Client::Aes128Only = client {
        provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    if let Client::Large = client {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.alpn_protocols.extend((0..80).map(|i| format!("x-padding-protocol-{i:02}").into_bytes()));
    }
    config
}

/// Connect and complete the TLS handshake.
pub async fn connect(target: &Target<'_>, client: Client, pace: Option<Pace>) -> io::Result<Connected> {
    connect_after(target, client, pace, &[]).await
}

/// Connect, write `preamble` (e.g. a PROXY protocol header; paced too, not recorded), then
/// complete the TLS handshake.
pub async fn connect_after(
    target: &Target<'_>,
    client: Client,
    pace: Option<Pace>,
    preamble: &[u8],
) -> io::Result<Connected> {
    use tokio::io::AsyncWriteExt;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(client, target.roots)));
    let written = Arc::new(Mutex::new(Vec::new()));
    let mut inner = TcpStream::connect(target.addr).await?;
    inner.set_nodelay(true)?;
    for piece in preamble.chunks(pace.map_or(preamble.len().max(1), |p| p.piece)) {
        inner.write_all(piece).await?;
        if let Some(pace) = pace {
            tokio::time::sleep(pace.pause).await;
        }
    }
    let tee = Tee { inner, written: written.clone(), pace, pause: None };
    let name = ServerName::try_from(target.server_name.to_owned()).unwrap();
    let tls = connector.connect(name, tee).await?;
    Ok(Connected { tls, written })
}

/// One HTTP/1.1 answer, with the fingerprints of the hello that carried it.
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub json: Value,
    pub sent: SentHello,
}

/// The hello a client wrote, and its fingerprints computed here from the recorded bytes.
pub struct SentHello {
    /// The TLS records that carried the ClientHello, exactly.
    pub records: Vec<u8>,
    pub ja3: String,
    pub ja4: String,
    pub ja4_stable: String,
}

impl SentHello {
    /// Fingerprint the first ClientHello in `written` (a client's byte stream).
    pub fn from_stream(written: &[u8]) -> Self {
        let mut reader = HelloReader::default();
        let Ok(Progress::Complete { consumed }) = reader.feed(written) else { panic!("no complete hello written") };
        let hello = ClientHello::parse(reader.message().unwrap(), Transport::Tcp).unwrap();
        let binding = fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec);
        Self {
            records: written[..consumed].to_vec(),
            ja3: binding.ja3.to_string(),
            ja4: binding.ja4.to_string(),
            ja4_stable: binding.ja4_stable.to_string(),
        }
    }
}

/// Send one request on an established connection and read the whole answer.
pub async fn send(connected: Connected, request: Request<Full<Bytes>>) -> Answer {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(connected.tls)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let sent = SentHello::from_stream(&connected.written.lock().unwrap());
    Answer { status, headers, body, json, sent }
}

/// A request with these headers and body; `host: localhost`.
pub fn build(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", "localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

/// Connect with `client` to the in-process proxy and send one request.
pub async fn request(
    running: &super::proxy::Running,
    client: Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let connected = connect(&running.target(), client, None).await.unwrap();
    send(connected, build(method, path, headers, body)).await
}

/// Connect with the default client to `addr` (SNI `localhost`, trusting exactly `root`) and send
/// one request.
pub async fn request_at(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let target = Target { addr, roots: std::slice::from_ref(root), server_name: "localhost" };
    let connected = connect(&target, Client::Default, None).await.unwrap();
    send(connected, build(method, path, headers, body)).await
}

/// `name=value` of the first Set-Cookie.
pub fn cookie_of(answer: &Answer) -> String {
    let set_cookie = answer.headers.get("set-cookie").unwrap().to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

pub const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// Read until the peer closes (EOF or reset), discarding data; false if it is still open after
/// `limit` (a bound for a hung test, not a timing assertion).
pub async fn closed_by_peer(stream: &mut (impl AsyncRead + Unpin), limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

/// Connect from source address `from` (another loopback address: another client IP) and complete
/// the TLS handshake.
pub async fn connect_from(target: &Target<'_>, client: Client, from: std::net::IpAddr) -> io::Result<Connected> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(client, target.roots)));
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let inner = socket.connect(target.addr).await?;
    inner.set_nodelay(true)?;
    let written = Arc::new(Mutex::new(Vec::new()));
    let tee = Tee { inner, written: written.clone(), pace: None, pause: None };
    let name = ServerName::try_from(target.server_name.to_owned()).unwrap();
    let tls = connector.connect(name, tee).await?;
    Ok(Connected { tls, written })
}

/// An HTTP/2 connection (ALPN `h2`) with `client`'s hello; requests need an absolute URI.
pub async fn connect_h2(
    target: &Target<'_>,
    client: Client,
) -> io::Result<hyper::client::conn::http2::SendRequest<Full<Bytes>>> {
    let mut config = client_config(client, target.roots);
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let inner = TcpStream::connect(target.addr).await?;
    let name = ServerName::try_from(target.server_name.to_owned()).unwrap();
    let tls = connector.connect(name, inner).await?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), TokioIo::new(tls))
            .await
            .map_err(io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A request with a byte body.
pub fn build_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", "localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(Bytes::from(body))).unwrap()
}
