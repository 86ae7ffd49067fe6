//! The incremental ClientHello reader: bytes in, one complete handshake message out.
//!
//! The reader is a small state machine over the client's first bytes. It accepts either a TLS
//! record stream (content type 22, the common case on a socket or in a pcap) or a bare handshake
//! message (first byte `0x01`, as stored in the reference vectors and as a QUIC CRYPTO stream
//! carries it). Record headers are framed with `tls-parser`; the payloads are concatenated into one
//! buffer until the handshake header's declared length is present. The buffer is reserved once, at
//! the declared length, and kept across [`HelloReader::reset`], so a reused reader never allocates.

use tls_parser::parse_tls_record_header;

/// The default cap on a ClientHello handshake message (header included): 16 KiB.
pub const DEFAULT_MAX_LEN: usize = 16 * 1024;

const RECORD_HEADER_LEN: usize = 5;
const HANDSHAKE_HEADER_LEN: usize = 4;
const CONTENT_HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
/// RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes.
const MAX_RECORD_PAYLOAD: usize = 1 << 14;

/// What the reader needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The message is not complete yet: feed more bytes.
    NeedMore,
    /// The message is complete; [`HelloReader::message`] returns it. `consumed` is how many bytes of
    /// the chunk just fed were needed, through the message's last byte; the rest is whatever the
    /// client sent after it (the same however the stream was chunked).
    Complete { consumed: usize },
}

/// Why no ClientHello can be taken from the bytes. Every variant is final for the stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not a TLS handshake record (first byte 0x{0:02x})")]
    NotTls(u8),
    #[error("SSLv2-format ClientHello (no JA3 or JA4 is defined for it)")]
    Sslv2,
    #[error("ClientHello of {declared} bytes exceeds the {limit}-byte limit")]
    TooLarge { declared: usize, limit: usize },
    #[error("TLS record version 0x{0:04x} is not SSL 3.0 or TLS")]
    BadRecordVersion(u16),
    #[error("TLS record of content type {0} before the ClientHello was complete")]
    UnexpectedRecord(u8),
    #[error("empty TLS handshake record")]
    EmptyRecord,
    #[error("TLS record of {0} bytes exceeds the 16384-byte record limit")]
    RecordOverflow(usize),
    #[error("handshake message type {0} is not a ClientHello (1)")]
    NotClientHello(u8),
}

impl ReadError {
    /// The metric/summary label for this failure: `not_tls`, `sslv2`, `too_large` or `malformed`.
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::NotTls(_) => "not_tls",
            ReadError::Sslv2 => "sslv2",
            ReadError::TooLarge { .. } => "too_large",
            _ => "malformed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// Not enough bytes seen to tell the framing apart.
    Unknown,
    /// A TLS record stream; `remaining` payload bytes of the current record are still to come
    /// (0 means the next byte starts a record header).
    Records { remaining: usize },
    /// A bare handshake message.
    Bare,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Reading,
    Complete,
    Failed,
}

/// Reassembles the first handshake message of a stream; see the module docs.
#[derive(Debug)]
pub struct HelloReader {
    max_len: usize,
    framing: Framing,
    state: State,
    /// Bytes of a record header (or of the first bytes, while the framing is unknown).
    head: [u8; RECORD_HEADER_LEN],
    head_len: usize,
    /// The handshake message, header included.
    message: Vec<u8>,
    /// `4 + declared length`, once the handshake header is in.
    message_len: Option<usize>,
    /// The error that ended the stream, repeated to any later feed.
    error: Option<ReadError>,
}

impl Default for HelloReader {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LEN)
    }
}

impl HelloReader {
    /// A reader that refuses messages longer than `max_len` bytes (handshake header included).
    pub fn new(max_len: usize) -> Self {
        Self::with_buffer(max_len, Vec::new())
    }

    /// A reader that reuses `buffer`'s allocation for the message.
    pub fn with_buffer(max_len: usize, mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        Self {
            max_len,
            framing: Framing::Unknown,
            state: State::Reading,
            head: [0; RECORD_HEADER_LEN],
            head_len: 0,
            message: buffer,
            message_len: None,
            error: None,
        }
    }

    /// Forget the stream, keep the buffer.
    pub fn reset(&mut self) {
        let buffer = std::mem::take(&mut self.message);
        *self = Self::with_buffer(self.max_len, buffer);
    }

    /// The complete handshake message (header included), once [`Progress::Complete`] was returned.
    pub fn message(&self) -> Option<&[u8]> {
        (self.state == State::Complete).then_some(self.message.as_slice())
    }

    /// The message buffer, whatever the state, to give to [`Self::with_buffer`] again.
    pub fn into_buffer(self) -> Vec<u8> {
        self.message
    }

    /// The complete message, moved out (no copy), once [`Progress::Complete`] was returned.
    pub fn into_message(self) -> Option<Vec<u8>> {
        (self.state == State::Complete).then_some(self.message)
    }

    /// Feed the next chunk of the client's bytes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Progress, ReadError> {
        match self.state {
            State::Complete => return Ok(Progress::Complete { consumed: 0 }),
            State::Failed => return Err(self.error.clone().unwrap_or(ReadError::EmptyRecord)),
            State::Reading => {}
        }
        match self.consume(chunk) {
            Ok(progress) => {
                if let Progress::Complete { .. } = progress {
                    self.state = State::Complete;
                }
                Ok(progress)
            }
            Err(error) => {
                self.state = State::Failed;
                self.error = Some(error.clone());
                Err(error)
            }
        }
    }

    fn consume(&mut self, chunk: &[u8]) -> Result<Progress, ReadError> {
        let mut at = 0;
        if self.framing == Framing::Unknown {
            at = self.detect_framing(chunk)?;
            if self.framing == Framing::Unknown {
                return Ok(Progress::NeedMore);
            }
        }
        while at < chunk.len() {
            let rest = &chunk[at..];
            let take = match self.framing {
                Framing::Bare | Framing::Unknown => rest.len(),
                Framing::Records { remaining: 0 } => {
                    at += self.read_record_header(rest)?;
                    continue;
                }
                Framing::Records { remaining } => remaining.min(rest.len()),
            };
            let taken = self.append(&rest[..take])?;
            at += taken;
            if let Framing::Records { remaining } = &mut self.framing {
                *remaining -= taken;
            }
            if self.is_complete() {
                // Through the message's last byte only: anything after it (even in the same
                // record) is the caller's, so the answer does not depend on how bytes were chunked.
                return Ok(Progress::Complete { consumed: at });
            }
        }
        Ok(Progress::NeedMore)
    }

    /// Decide between a record stream, a bare message and the non-TLS cases from the first bytes.
    /// Returns how many bytes of `chunk` were used (0 when nothing was decided yet).
    fn detect_framing(&mut self, chunk: &[u8]) -> Result<usize, ReadError> {
        let Some(&first) = self.head[..self.head_len].first().or(chunk.first()) else {
            return Ok(0);
        };
        match first {
            CONTENT_HANDSHAKE => {
                self.framing = Framing::Records { remaining: 0 };
                Ok(0)
            }
            CLIENT_HELLO => {
                self.framing = Framing::Bare;
                Ok(0)
            }
            // An SSLv2-format hello: 2-byte length with the top bit set, then message type 1.
            byte if byte & 0x80 != 0 => {
                let need = 3 - self.head_len;
                let take = need.min(chunk.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&chunk[..take]);
                self.head_len += take;
                if self.head_len < 3 {
                    return Ok(take);
                }
                if self.head[2] == CLIENT_HELLO {
                    Err(ReadError::Sslv2)
                } else {
                    Err(ReadError::NotTls(first))
                }
            }
            other => Err(ReadError::NotTls(other)),
        }
    }

    /// Collect a record header; on the full header, validate it and start its payload.
    fn read_record_header(&mut self, rest: &[u8]) -> Result<usize, ReadError> {
        let take = (RECORD_HEADER_LEN - self.head_len).min(rest.len());
        self.head[self.head_len..self.head_len + take].copy_from_slice(&rest[..take]);
        self.head_len += take;
        if self.head_len < RECORD_HEADER_LEN {
            return Ok(take);
        }
        self.head_len = 0;
        let (_, header) = parse_tls_record_header(&self.head).map_err(|_| ReadError::EmptyRecord)?;
        let content_type = header.record_type.0;
        if content_type != CONTENT_HANDSHAKE {
            return Err(ReadError::UnexpectedRecord(content_type));
        }
        if header.version.0 >> 8 != 3 {
            return Err(ReadError::BadRecordVersion(header.version.0));
        }
        let len = usize::from(header.len);
        if len == 0 {
            return Err(ReadError::EmptyRecord);
        }
        if len > MAX_RECORD_PAYLOAD {
            return Err(ReadError::RecordOverflow(len));
        }
        self.framing = Framing::Records { remaining: len };
        Ok(take)
    }

    /// Append message bytes, stopping at the message's end. Returns how many were taken.
    fn append(&mut self, bytes: &[u8]) -> Result<usize, ReadError> {
        let mut taken = 0;
        if self.message_len.is_none() {
            // The handshake header is read before it is stored, so the buffer is reserved once, at
            // the declared length, and never grows.
            let have = self.message.len().min(HANDSHAKE_HEADER_LEN);
            let take = (HANDSHAKE_HEADER_LEN - have).min(bytes.len());
            taken = take;
            if have + take < HANDSHAKE_HEADER_LEN {
                self.message.extend_from_slice(&bytes[..take]);
                return Ok(taken);
            }
            let mut header = [0; HANDSHAKE_HEADER_LEN];
            header[..have].copy_from_slice(&self.message[..have]);
            header[have..].copy_from_slice(&bytes[..take]);
            if header[0] != CLIENT_HELLO {
                return Err(ReadError::NotClientHello(header[0]));
            }
            let declared = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
            let total = HANDSHAKE_HEADER_LEN + declared;
            if total > self.max_len {
                return Err(ReadError::TooLarge { declared: total, limit: self.max_len });
            }
            self.message.reserve_exact(total - have);
            self.message.extend_from_slice(&bytes[..take]);
            self.message_len = Some(total);
        }
        let total = self.message_len.unwrap_or(HANDSHAKE_HEADER_LEN);
        let take = (total - self.message.len()).min(bytes.len() - taken);
        self.message.extend_from_slice(&bytes[taken..taken + take]);
        Ok(taken + take)
    }

    fn is_complete(&self) -> bool {
        self.message_len == Some(self.message.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake message with a body of `body_len` bytes (content irrelevant to the reader).
    fn message(body_len: usize) -> Vec<u8> {
        let mut m = vec![1, (body_len >> 16) as u8, (body_len >> 8) as u8, body_len as u8];
        m.extend((0..body_len).map(|i| i as u8));
        m
    }

    fn records(message: &[u8], record_size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for part in message.chunks(record_size) {
            out.extend_from_slice(&[22, 3, 1, (part.len() >> 8) as u8, part.len() as u8]);
            out.extend_from_slice(part);
        }
        out
    }

    #[test]
    fn one_record_one_chunk() {
        let m = message(100);
        let stream = records(&m, 1000);
        let mut r = HelloReader::default();
        assert_eq!(r.feed(&stream), Ok(Progress::Complete { consumed: stream.len() }));
        assert_eq!(r.message(), Some(m.as_slice()));
    }

    #[test]
    fn trailing_bytes_are_not_consumed() {
        let m = message(10);
        let mut stream = records(&m, 1000);
        let hello_len = stream.len();
        stream.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        let mut r = HelloReader::default();
        assert_eq!(r.feed(&stream), Ok(Progress::Complete { consumed: hello_len }));
    }

    /// Found by the `reader_chunks` fuzz target: bytes after the message inside its last record
    /// were counted as consumed only when they arrived in the same chunk.
    #[test]
    fn consumed_does_not_depend_on_chunking_when_the_record_has_a_tail() {
        let m = message(20);
        let mut record = vec![22, 3, 1, 0, (m.len() + 3) as u8];
        record.extend_from_slice(&m);
        record.extend_from_slice(&[0xaa, 0xbb, 0xcc]);
        let mut whole = HelloReader::default();
        assert_eq!(whole.feed(&record), Ok(Progress::Complete { consumed: 5 + m.len() }));
        let mut split = HelloReader::default();
        assert_eq!(split.feed(&record[..10]), Ok(Progress::NeedMore));
        assert_eq!(split.feed(&record[10..]), Ok(Progress::Complete { consumed: 5 + m.len() - 10 }));
        assert_eq!(whole.message(), split.message());
    }

    #[test]
    fn several_records_byte_by_byte() {
        let m = message(300);
        let stream = records(&m, 7);
        let mut r = HelloReader::default();
        for (i, b) in stream.iter().enumerate() {
            let p = r.feed(std::slice::from_ref(b)).unwrap();
            if i + 1 < stream.len() {
                assert_eq!(p, Progress::NeedMore, "at byte {i}");
            } else {
                assert_eq!(p, Progress::Complete { consumed: 1 });
            }
        }
        assert_eq!(r.message(), Some(m.as_slice()));
    }

    #[test]
    fn bare_message() {
        let m = message(50);
        let mut r = HelloReader::default();
        assert_eq!(r.feed(&m[..20]), Ok(Progress::NeedMore));
        assert_eq!(r.feed(&m[20..]), Ok(Progress::Complete { consumed: m.len() - 20 }));
        assert_eq!(r.message(), Some(m.as_slice()));
    }

    #[test]
    fn not_tls() {
        let mut r = HelloReader::default();
        assert_eq!(r.feed(b"GET / HTTP/1.1\r\n"), Err(ReadError::NotTls(0x47)));
        assert_eq!(r.feed(b"more"), Err(ReadError::NotTls(0x47)), "errors are final");
        assert_eq!(ReadError::NotTls(0x47).to_string(), "not a TLS handshake record (first byte 0x47)");
    }

    #[test]
    fn sslv2_needs_three_bytes() {
        let mut r = HelloReader::default();
        assert_eq!(r.feed(&[0x80]), Ok(Progress::NeedMore));
        assert_eq!(r.feed(&[0x2e]), Ok(Progress::NeedMore));
        assert_eq!(r.feed(&[0x01, 0x03, 0x01]), Err(ReadError::Sslv2));
        let mut r = HelloReader::default();
        assert_eq!(r.feed(&[0x80, 0x2e, 0x02]), Err(ReadError::NotTls(0x80)));
    }

    #[test]
    fn too_large_is_refused_at_the_header() {
        let mut r = HelloReader::new(1000);
        let header = [22, 3, 1, 0, 4, 1, 0, 0x10, 0];
        assert_eq!(r.feed(&header), Err(ReadError::TooLarge { declared: 4 + 0x1000, limit: 1000 }));
        assert_eq!(r.feed(&header).unwrap_err().reason(), "too_large");
    }

    #[test]
    fn other_record_before_completion() {
        let m = message(100);
        let mut stream = records(&m[..50], 1000);
        stream.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        let mut r = HelloReader::default();
        assert_eq!(r.feed(&stream), Err(ReadError::UnexpectedRecord(21)));
    }

    #[test]
    fn malformed_records() {
        for (bytes, error) in [
            (&[22u8, 3, 1, 0, 0][..], ReadError::EmptyRecord),
            (&[22, 3, 1, 0x40, 1][..], ReadError::RecordOverflow(0x4001)),
            (&[22, 0xfe, 0xfd, 0, 1][..], ReadError::BadRecordVersion(0xfefd)),
            (&[22, 3, 1, 0, 4, 2, 0, 0, 0][..], ReadError::NotClientHello(2)),
        ] {
            let mut r = HelloReader::default();
            assert_eq!(r.feed(bytes), Err(error.clone()));
            assert_eq!(error.reason(), "malformed");
        }
    }

    #[test]
    fn reset_keeps_the_buffer() {
        let m = message(500);
        let mut r = HelloReader::default();
        r.feed(&m).unwrap();
        let capacity = r.message.capacity();
        r.reset();
        assert_eq!(r.message(), None);
        assert_eq!(r.feed(&m), Ok(Progress::Complete { consumed: m.len() }));
        assert_eq!(r.message.capacity(), capacity);
    }

    #[test]
    fn the_buffer_is_the_declared_length_however_the_bytes_arrive() {
        let m = message(300);
        for chunk in [1, 2, 3, 5, 1000] {
            let stream = records(&m, 7);
            let mut r = HelloReader::default();
            for piece in stream.chunks(chunk) {
                let _ = r.feed(piece).unwrap();
            }
            assert_eq!(r.message.capacity(), m.len(), "chunks of {chunk}");
            assert_eq!(r.into_message(), Some(m.clone()));
        }
        let mut incomplete = HelloReader::default();
        assert_eq!(incomplete.feed(&m[..10]), Ok(Progress::NeedMore));
        assert_eq!(incomplete.into_message(), None);
    }

    #[test]
    fn feeding_after_completion_consumes_nothing() {
        let m = message(5);
        let mut r = HelloReader::default();
        r.feed(&m).unwrap();
        assert_eq!(r.feed(&[1, 2, 3]), Ok(Progress::Complete { consumed: 0 }));
    }
}
