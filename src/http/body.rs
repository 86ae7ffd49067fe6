//! Bodies: one boxed type for everything helloguard sends, and bounded reading of the bodies it
//! must read (token requests and responses, Management API bodies).
//!
//! A body read here is copied into one buffer as it arrives, never kept as the frames it came in:
//! a frame is a slice of the connection's read buffer, and a client that trickles a body in
//! one-byte TLS records or DATA frames would otherwise pin a read buffer (kilobytes) per byte.
//! Memory held for a body is its size plus a constant, whatever the record and frame sizes.

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http_body_util::{combinators::BoxBody, BodyExt, BodyStream, Full, StreamBody};
use hyper::body::{Body as _, Frame};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every request and response body the proxy handles.
pub type Body = BoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A JSON answer.
pub fn json_response(status: hyper::StatusCode, value: &serde_json::Value) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

/// Box any body with a compatible error type.
pub fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// A body that holds `guard` for as long as it lives: what must happen once a body is done (sent,
/// or given up) goes in the guard's `Drop`, which runs before the body itself is dropped.
pub struct Guarded<B, G> {
    _guard: G,
    body: B,
}

impl<B, G> Guarded<B, G> {
    pub fn new(body: B, guard: G) -> Self {
        Self { _guard: guard, body }
    }
}

impl<B: hyper::body::Body + Unpin, G: Unpin> hyper::body::Body for Guarded<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The result of [`buffer_up_to`].
pub enum Buffered {
    /// The whole body, within the limit.
    Complete(Bytes),
    /// Over the limit: the body, intact, to be streamed on unexamined.
    TooLarge(Body),
}

/// Read `body` whole if it is at most `limit` bytes. A larger body is returned as a stream that
/// replays what was read, then the rest, so nothing is lost.
pub async fn buffer_up_to(mut body: Body, limit: usize) -> Result<Buffered, BoxError> {
    if body.size_hint().lower() > limit as u64 {
        return Ok(Buffered::TooLarge(body));
    }
    let mut collected = Collector::new(&body, limit);
    while let Some(frame) = body.frame().await {
        if collected.add(frame?) {
            let head = stream::iter([Ok::<_, BoxError>(Frame::data(collected.finish()))]);
            let rest = BodyStream::new(body);
            return Ok(Buffered::TooLarge(BodyExt::boxed(StreamBody::new(head.chain(rest)))));
        }
    }
    Ok(Buffered::Complete(collected.finish()))
}

/// Why [`read_whole`] has no body.
#[derive(Debug)]
pub enum ReadError {
    /// Over the limit; the rest of the body, which the caller may read and discard.
    TooLarge(Body),
    /// Not all there within the time allowed.
    Timeout,
    /// The client's stream failed.
    Failed(BoxError),
}

/// Read `body` whole, at most `limit` bytes, within `time`: a body the proxy must decide on is
/// either read completely or refused, never passed on unread.
pub async fn read_whole(mut body: Body, limit: usize, time: std::time::Duration) -> Result<Bytes, ReadError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(ReadError::TooLarge(body));
    }
    let mut collected = Collector::new(&body, limit);
    let read = async {
        while let Some(frame) = body.frame().await {
            if collected.add(frame.map_err(ReadError::Failed)?) {
                return Err(ReadError::TooLarge(full(Bytes::new())));
            }
        }
        Ok(())
    };
    match tokio::time::timeout(time, read).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(Err(ReadError::TooLarge(_))) => Err(ReadError::TooLarge(body)),
        Ok(Err(error)) => Err(error),
        Ok(Ok(())) => Ok(collected.finish()),
    }
}

/// Data frames copied into one buffer, up to a limit.
struct Collector {
    bytes: Vec<u8>,
    limit: usize,
}

impl Collector {
    fn new(body: &Body, limit: usize) -> Self {
        // A declared length is reserved at once; otherwise the buffer grows as the data comes.
        let expected = usize::try_from(body.size_hint().exact().unwrap_or(0)).unwrap_or(0).min(limit);
        Self { bytes: Vec::with_capacity(expected), limit }
    }

    /// Take one frame's data; `true` once the body is over the limit.
    fn add(&mut self, frame: Frame<Bytes>) -> bool {
        if let Some(data) = frame.data_ref() {
            self.bytes.extend_from_slice(data);
        }
        self.bytes.len() > self.limit
    }

    fn finish(self) -> Bytes {
        Bytes::from(self.bytes)
    }
}

/// Read and throw away up to `limit` more bytes of a refused `body`, for at most `time`. A client
/// still sending it then reads the answer: closing a socket with unread bytes sends a reset,
/// which can destroy the answer before the client reads it.
pub async fn discard_up_to(mut body: Body, limit: usize, time: std::time::Duration) {
    let discard = async {
        let mut seen = 0;
        while seen <= limit {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(time, discard).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static [u8]]) -> Body {
        let frames = parts.iter().map(|p| Ok::<_, BoxError>(Frame::data(Bytes::from_static(p)))).collect::<Vec<_>>();
        BodyExt::boxed(StreamBody::new(stream::iter(frames)))
    }

    #[tokio::test]
    async fn a_refused_body_is_read_up_to_the_limit() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let read = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = read.clone();
        let endless = stream::iter(std::iter::repeat_with(move || {
            counter.fetch_add(1000, Ordering::SeqCst);
            Ok::<_, BoxError>(Frame::data(Bytes::from_static(&[0; 1000])))
        }));
        discard_up_to(BodyExt::boxed(StreamBody::new(endless)), 10_000, std::time::Duration::from_secs(5)).await;
        assert_eq!(read.load(Ordering::SeqCst), 11_000, "read just past the limit, then stopped");
    }

    #[tokio::test]
    async fn small_bodies_are_buffered_and_large_ones_pass_through_intact() {
        match buffer_up_to(chunked(&[b"ab", b"cd"]), 4).await.unwrap() {
            Buffered::Complete(bytes) => assert_eq!(&bytes[..], b"abcd"),
            Buffered::TooLarge(_) => panic!("fits"),
        }
        match buffer_up_to(chunked(&[b"ab", b"cd", b"ef"]), 3).await.unwrap() {
            Buffered::TooLarge(body) => assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abcdef"),
            Buffered::Complete(_) => panic!("too large"),
        }
    }
}
