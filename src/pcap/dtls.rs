//! DTLS ClientHellos: record walking and handshake fragment reassembly over UDP datagrams.
//!
//! A DTLS handshake message carries a 12-byte header (type, u24 length, u16 message_seq, u24
//! fragment_offset, u24 fragment_length) and may be split into fragments that arrive in any order
//! across records and datagrams. [`DtlsHellos`] places the fragments of each ClientHello by offset
//! and, when the body is complete, rebuilds the message as one unfragmented piece (fragment_offset 0,
//! fragment_length = length), the input `hello::ClientHello::parse` expects for DTLS. A client that
//! answers a HelloVerifyRequest sends a second ClientHello (new message_seq, with the cookie).

use super::reassembly::{OffsetBuffer, Refused};

const RECORD_HEADER_LEN: usize = 13;
const HANDSHAKE_HEADER_LEN: usize = 12;
const CONTENT_HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;

/// Why a DTLS flow yields no ClientHello.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    #[error("DTLS record or handshake fragment overruns its container")]
    Malformed,
    #[error(transparent)]
    Reassembly(#[from] Refused),
}

impl DtlsError {
    /// The summary label for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            DtlsError::Malformed => "malformed",
            DtlsError::Reassembly(refused) => refused.reason(),
        }
    }
}

/// True when `datagram` starts with a DTLS 1.0/1.2/1.3 handshake record.
pub fn is_handshake(datagram: &[u8]) -> bool {
    matches!(datagram, [CONTENT_HANDSHAKE, 0xfe, 0xff | 0xfd | 0xfc, ..]) && datagram.len() >= RECORD_HEADER_LEN
}

fn u24(b: &[u8]) -> usize {
    b.iter().take(3).fold(0, |v, &x| v << 8 | usize::from(x))
}

/// The ClientHello being reassembled.
struct Pending {
    message_seq: u16,
    length: usize,
    body: OffsetBuffer,
}

/// One client flow's ClientHellos; see the module docs.
pub struct DtlsHellos {
    max_len: usize,
    pending: Option<Pending>,
    /// message_seq of the last ClientHello completed, so retransmissions are not reported twice.
    last_done: Option<u16>,
    completed: u8,
}

impl DtlsHellos {
    /// A flow whose ClientHellos may be at most `max_len` bytes (header included).
    pub fn new(max_len: usize) -> Self {
        Self { max_len, pending: None, last_done: None, completed: 0 }
    }

    /// Walk the records of one datagram; each ClientHello completed by it is passed to `found`
    /// as a rebuilt message, with its index in the flow (1, then 2 for a cookie retry, …).
    pub fn datagram(&mut self, datagram: &[u8], found: &mut dyn FnMut(&[u8], u8)) -> Result<(), DtlsError> {
        let mut rest = datagram;
        while !rest.is_empty() {
            let (header, tail) = rest.split_first_chunk::<RECORD_HEADER_LEN>().ok_or(DtlsError::Malformed)?;
            let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
            let (payload, tail) = tail.split_at_checked(len).ok_or(DtlsError::Malformed)?;
            rest = tail;
            // Epoch 0 only: later epochs are encrypted.
            if header[0] == CONTENT_HANDSHAKE && header[3..5] == [0, 0] {
                self.record(payload, found)?;
            }
        }
        Ok(())
    }

    fn record(&mut self, mut payload: &[u8], found: &mut dyn FnMut(&[u8], u8)) -> Result<(), DtlsError> {
        while !payload.is_empty() {
            let (h, tail) = payload.split_first_chunk::<HANDSHAKE_HEADER_LEN>().ok_or(DtlsError::Malformed)?;
            let (msg_type, length, message_seq) = (h[0], u24(&h[1..4]), u16::from_be_bytes([h[4], h[5]]));
            let (offset, frag_len) = (u24(&h[6..9]), u24(&h[9..12]));
            let (fragment, tail) = tail.split_at_checked(frag_len).ok_or(DtlsError::Malformed)?;
            payload = tail;
            if msg_type != CLIENT_HELLO || self.last_done == Some(message_seq) {
                continue;
            }
            if offset + frag_len > length {
                return Err(DtlsError::Malformed);
            }
            if HANDSHAKE_HEADER_LEN + length > self.max_len {
                return Err(Refused::TooLarge { end: (HANDSHAKE_HEADER_LEN + length) as u64, cap: self.max_len }.into());
            }
            let pending = match &mut self.pending {
                Some(p) if p.message_seq == message_seq && p.length == length => p,
                slot => slot.insert(Pending { message_seq, length, body: OffsetBuffer::new(length) }),
            };
            pending.body.insert(offset as u64, fragment)?;
            let body = pending.body.contiguous();
            if body.len() == length {
                let mut message = Vec::with_capacity(HANDSHAKE_HEADER_LEN + length);
                message.extend_from_slice(&h[..6]);
                message.extend_from_slice(&[0, 0, 0]);
                message.extend_from_slice(&h[1..4]);
                message.extend_from_slice(body);
                self.completed = self.completed.saturating_add(1);
                found(&message, self.completed);
                self.last_done = Some(message_seq);
                self.pending = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(seq: u16, length: usize, offset: usize, data: &[u8]) -> Vec<u8> {
        let mut f = vec![1, 0, (length >> 8) as u8, length as u8];
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, (offset >> 8) as u8, offset as u8, 0, (data.len() >> 8) as u8, data.len() as u8]);
        f.extend_from_slice(data);
        f
    }

    fn record(payload: &[u8]) -> Vec<u8> {
        let mut r = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, (payload.len() >> 8) as u8, payload.len() as u8];
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn fragments_out_of_order_then_a_cookie_retry() {
        let body: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let mut hellos = DtlsHellos::new(16 * 1024);
        let mut got = Vec::new();
        let mut dgram = record(&fragment(0, 300, 200, &body[200..]));
        hellos.datagram(&dgram, &mut |m, i| got.push((m.to_vec(), i))).unwrap();
        assert!(got.is_empty());
        dgram = record(&fragment(0, 300, 0, &body[..120]));
        dgram.extend(record(&fragment(0, 300, 100, &body[100..200])));
        hellos.datagram(&dgram, &mut |m, i| got.push((m.to_vec(), i))).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0], (fragment(0, 300, 0, &body), 1));
        // A retransmission of the same hello is not reported again; the cookie retry is.
        hellos.datagram(&record(&fragment(0, 300, 0, &body)), &mut |m, i| got.push((m.to_vec(), i))).unwrap();
        hellos.datagram(&record(&fragment(1, 300, 0, &body)), &mut |m, i| got.push((m.to_vec(), i))).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], (fragment(1, 300, 0, &body), 2));
    }

    #[test]
    fn malformed_and_oversized() {
        let mut hellos = DtlsHellos::new(100);
        let mut ignore = |_: &[u8], _: u8| {};
        assert!(is_handshake(&record(&[])));
        assert!(!is_handshake(&[22, 3, 3, 0, 0]));
        assert_eq!(hellos.datagram(&record(&[1, 0]), &mut ignore), Err(DtlsError::Malformed));
        let short = record(&fragment(0, 10, 8, &[0; 5]));
        assert_eq!(hellos.datagram(&short, &mut ignore), Err(DtlsError::Malformed));
        let big = record(&fragment(0, 1000, 0, &[0; 5]));
        assert!(matches!(hellos.datagram(&big, &mut ignore), Err(DtlsError::Reassembly(Refused::TooLarge { .. }))));
        assert_eq!(hellos.datagram(&record(&fragment(0, 5, 0, &[0; 5]))[..20], &mut ignore), Err(DtlsError::Malformed));
    }
}
