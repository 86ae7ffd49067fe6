//! Capture: read the ClientHello off the socket before rustls does, fingerprint it once, and give
//! rustls a stream that replays exactly the bytes that were read.
//!
//! rustls does not expose extension order or unknown extensions, so the raw bytes are needed. The
//! read is bounded (the reader's size cap) and has its own timeout; a failure to fingerprint never
//! breaks the connection unless the operator asked for fail-closed (see the listener).

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::LocalKey;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::fingerprint::{self, AlpnMode, Binding, Md5Hex};
use crate::hello::{ClientHello, HelloReader, Progress, ReadError, Transport, DEFAULT_MAX_LEN};

/// The fingerprints of one connection, computed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionFingerprint {
    pub binding: Binding,
    /// Only when the policy compares JA3N.
    pub ja3n: Option<Md5Hex>,
}

/// Why a connection has no fingerprint; the label is the metric's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFailure {
    NotTls,
    Sslv2,
    TooLarge,
    Malformed,
    Timeout,
}

impl CaptureFailure {
    pub fn reason(self) -> &'static str {
        match self {
            CaptureFailure::NotTls => "not_tls",
            CaptureFailure::Sslv2 => "sslv2",
            CaptureFailure::TooLarge => "too_large",
            CaptureFailure::Malformed => "malformed",
            CaptureFailure::Timeout => "timeout",
        }
    }

    pub const ALL: [CaptureFailure; 5] = [
        CaptureFailure::NotTls,
        CaptureFailure::Sslv2,
        CaptureFailure::TooLarge,
        CaptureFailure::Malformed,
        CaptureFailure::Timeout,
    ];
}

/// What the capture saw.
pub struct Captured {
    /// Every byte read from the socket so far, to be replayed into the TLS handshake.
    pub bytes: Vec<u8>,
    pub fingerprint: Result<ConnectionFingerprint, CaptureFailure>,
    /// Time spent parsing and fingerprinting (not waiting for bytes).
    pub compute_time: Duration,
}

thread_local! {
    /// A finished capture's message buffer, for the next capture on this thread.
    static SPARE_MESSAGE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// The bytes a finished handshake replayed, for the next capture on this thread.
    static SPARE_BYTES: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Buffers live on per thread from one connection to the next: the common case (one capture at a
/// time per worker) allocates none, and writes into memory that is still in cache.
fn take_spare(spare: &'static LocalKey<Cell<Vec<u8>>>) -> Vec<u8> {
    spare.take()
}

fn keep_spare(spare: &'static LocalKey<Cell<Vec<u8>>>, mut buffer: Vec<u8>) {
    // A buffer grown for an unusually large hello is not kept.
    if buffer.capacity() <= DEFAULT_MAX_LEN {
        buffer.clear();
        spare.set(buffer);
    }
}

/// A [`HelloReader`] on this thread's spare buffer, which it hands back when dropped.
struct RecycledReader(HelloReader);

impl RecycledReader {
    fn new(max_len: usize) -> Self {
        Self(HelloReader::with_buffer(max_len, take_spare(&SPARE_MESSAGE)))
    }
}

impl Drop for RecycledReader {
    fn drop(&mut self) {
        keep_spare(&SPARE_MESSAGE, std::mem::take(&mut self.0).into_buffer());
    }
}

/// How much the capture buffer grows by when a hello needs more room (most hellos fit in one).
const READ_SIZE: usize = 4096;

/// Read the ClientHello from `socket`. `Ok(None)` means the client closed before sending one.
pub async fn capture<S: AsyncRead + Unpin>(
    socket: &mut S,
    max_len: usize,
    timeout: Duration,
    with_ja3n: bool,
) -> io::Result<Option<Captured>> {
    let mut reader = RecycledReader::new(max_len);
    let reader = &mut reader.0;
    // Read straight into the replay buffer's spare capacity: no zeroed scratch chunk, no copy.
    let mut bytes = take_spare(&SPARE_BYTES);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut compute_time = Duration::ZERO;
    loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(READ_SIZE);
        }
        let start = bytes.len();
        let read = match tokio::time::timeout_at(deadline, socket.read_buf(&mut bytes)).await {
            Ok(read) => read?,
            Err(_) => return Ok(Some(Captured { bytes, fingerprint: Err(CaptureFailure::Timeout), compute_time })),
        };
        if read == 0 {
            return Ok(None);
        }
        // One clock read each side of the work on these bytes: the feed, and when it completes
        // the hello, the parse and the fingerprints.
        let started = Instant::now();
        let failure = match reader.feed(&bytes[start..]) {
            Ok(Progress::NeedMore) => {
                compute_time += started.elapsed();
                continue;
            }
            Ok(Progress::Complete { .. }) => None,
            Err(ReadError::NotTls(_)) => Some(CaptureFailure::NotTls),
            Err(ReadError::Sslv2) => Some(CaptureFailure::Sslv2),
            Err(ReadError::TooLarge { .. }) => Some(CaptureFailure::TooLarge),
            Err(_) => Some(CaptureFailure::Malformed),
        };
        if let Some(failure) = failure {
            compute_time += started.elapsed();
            return Ok(Some(Captured { bytes, fingerprint: Err(failure), compute_time }));
        }
        let message = reader.message().unwrap_or_default();
        let fingerprint = match ClientHello::parse(message, Transport::Tcp) {
            Ok(hello) => {
                let binding = fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec);
                let ja3n = with_ja3n.then(|| fingerprint::ja3n(&hello));
                Ok(ConnectionFingerprint { binding, ja3n })
            }
            Err(_) => Err(CaptureFailure::Malformed),
        };
        compute_time += started.elapsed();
        return Ok(Some(Captured { bytes, fingerprint, compute_time }));
    }
}

/// A stream that first yields `prefix`, then reads from `inner`; writes go to `inner`.
pub struct Replay<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Replay<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self { prefix, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let rest = &this.prefix[this.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.at += n;
            if this.at == this.prefix.len() {
                // The captured bytes are not needed any more: the next capture reads into them.
                keep_spare(&SPARE_BYTES, std::mem::take(&mut this.prefix));
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn split_hello_is_captured_and_replayed_byte_exact() {
        let records: &[u8] = include_bytes!("../../pcaps/hellos/chromium.bin");
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for piece in records.chunks(100) {
                client.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            client.write_all(b"after").await.unwrap();
            client
        });
        let captured = capture(&mut server, 16384, Duration::from_secs(5), true).await.unwrap().unwrap();
        let fingerprint = captured.fingerprint.unwrap();
        assert_eq!(fingerprint.binding.ja4.as_str(), "t13d1517h2_8daaf6152771_cb7bf5808d99");
        assert!(fingerprint.ja3n.is_some());
        let _client = writer.await.unwrap();
        let mut replay = Replay::new(captured.bytes, server);
        let mut replayed = vec![0; records.len() + 5];
        replay.read_exact(&mut replayed).await.unwrap();
        assert_eq!(&replayed[..records.len()], records);
        assert_eq!(&replayed[records.len()..], b"after");
    }

    /// Captures one after another on a thread share their buffers: what a larger hello left in
    /// them never leaks into the next one's fingerprint or replay. (JA4s from `pcaps/README.md`.)
    #[tokio::test]
    async fn back_to_back_captures_reuse_their_buffers() {
        let hellos: [(&[u8], &str); 3] = [
            (include_bytes!("../../pcaps/hellos/chromium.bin"), "t13d1517h2_8daaf6152771_cb7bf5808d99"),
            (include_bytes!("../../pcaps/hellos/curl.bin"), "t13i3111h2_e8f1e7e78f70_b26ce05bbdd6"),
            (include_bytes!("../../pcaps/hellos/chromium.bin"), "t13d1517h2_8daaf6152771_cb7bf5808d99"),
        ];
        for (records, ja4) in hellos {
            let mut socket = records;
            let captured = capture(&mut socket, 16384, Duration::from_secs(1), false).await.unwrap().unwrap();
            assert_eq!(captured.fingerprint.unwrap().binding.ja4.as_str(), ja4);
            let spare = SPARE_MESSAGE.take();
            assert!(spare.capacity() >= records.len() - 5, "the buffer went back to the thread");
            SPARE_MESSAGE.set(spare);
            // Replaying the bytes hands their buffer back too.
            let mut replayed = Vec::new();
            Replay::new(captured.bytes, tokio::io::empty()).read_to_end(&mut replayed).await.unwrap();
            assert_eq!(replayed, records);
            let spare = SPARE_BYTES.take();
            assert!(spare.is_empty() && spare.capacity() >= records.len(), "the replayed bytes' buffer is kept");
            SPARE_BYTES.set(spare);
        }
    }

    #[tokio::test]
    async fn silent_client_times_out_and_plain_http_is_not_tls() {
        let (_client, mut server) = tokio::io::duplex(64);
        let captured = capture(&mut server, 16384, Duration::from_millis(50), false).await.unwrap().unwrap();
        assert_eq!(captured.fingerprint, Err(CaptureFailure::Timeout));

        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let captured = capture(&mut server, 16384, Duration::from_secs(1), false).await.unwrap().unwrap();
        assert_eq!(captured.fingerprint.map(|_| ()), Err(CaptureFailure::NotTls));
        assert_eq!(captured.bytes, b"GET / HTTP/1.1\r\n");

        drop(client);
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert!(capture(&mut server, 16384, Duration::from_secs(1), false).await.unwrap().is_none());
    }
}
