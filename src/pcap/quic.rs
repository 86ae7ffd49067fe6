//! QUIC client Initials: key derivation, header and packet protection removal, CRYPTO reassembly.
//!
//! A QUIC ClientHello travels in the CRYPTO frames of the client's Initial packets, which are
//! encrypted with keys anyone can derive from the Destination Connection ID of the client's first
//! Initial (RFC 9001 §5.2 for QUIC v1, RFC 9369 §3.3 for v2: each version has its own salt, its own
//! HKDF labels and, for v2, its own long-header type bits). [`ClientInitials`] follows one client
//! flow: it keeps the keys from the first Initial, opens every later Initial (coalesced packets,
//! any packet number order) and places CRYPTO data by offset until the handshake message from
//! offset 0 is complete. Only the message is produced here; parsing it belongs to `hello`.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use super::reassembly::{OffsetBuffer, Refused};

const VERSION_1: u32 = 0x0000_0001;
const VERSION_2: u32 = 0x6b33_43cf;
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f,
    0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e,
    0xd9,
];
/// RFC 9000 §17.2: connection IDs are at most 20 bytes in versions 1 and 2.
const MAX_CID_LEN: usize = 20;
const SAMPLE_LEN: usize = 16;
const TAG_LEN: usize = 16;
const CLIENT_HELLO: u8 = 1;

/// Why a datagram or flow yields no ClientHello.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    #[error("not a QUIC v1/v2 Initial packet")]
    NotInitial,
    #[error("QUIC packet shorter than its header says")]
    Truncated,
    #[error("QUIC Initial did not decrypt with keys from the client's first Destination Connection ID")]
    Decrypt,
    #[error("malformed frame in a QUIC Initial")]
    Frame,
    #[error("the CRYPTO stream does not start with a ClientHello (type {0})")]
    NotClientHello(u8),
    #[error(transparent)]
    Reassembly(#[from] Refused),
}

impl QuicError {
    /// The summary label for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            QuicError::NotInitial => "quic_not_initial",
            QuicError::Decrypt => "quic_decrypt",
            QuicError::Reassembly(refused) => refused.reason(),
            QuicError::Truncated | QuicError::Frame | QuicError::NotClientHello(_) => "malformed",
        }
    }
}

/// The two QUIC versions whose Initial protection is specified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    fn from_wire(v: u32) -> Option<Self> {
        match v {
            VERSION_1 => Some(Version::V1),
            VERSION_2 => Some(Version::V2),
            _ => None,
        }
    }

    fn salt(self) -> &'static [u8] {
        match self {
            Version::V1 => &SALT_V1,
            Version::V2 => &SALT_V2,
        }
    }

    /// The (key, iv, hp) HKDF labels: RFC 9369 §3.3.2 renamed them for v2.
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Version::V1 => [b"quic key", b"quic iv", b"quic hp"],
            Version::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }

    /// The 2-bit long-header packet type of an Initial (RFC 9369 §3.2 moved it for v2).
    fn initial_type(self) -> u8 {
        match self {
            Version::V1 => 0b00,
            Version::V2 => 0b01,
        }
    }

    /// The Retry type, the one long-header packet without a Length field.
    fn retry_type(self) -> u8 {
        match self {
            Version::V1 => 0b11,
            Version::V2 => 0b00,
        }
    }
}

/// True when `datagram` starts with a QUIC v1/v2 long-header Initial: the cheap test that routes a
/// UDP flow to [`ClientInitials`] whatever its port.
pub fn is_initial(datagram: &[u8]) -> bool {
    match (datagram.first(), datagram.get(1..5)) {
        (Some(&first), Some(v)) if first & 0xc0 == 0xc0 => {
            let version = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            Version::from_wire(version).is_some_and(|v| (first >> 4) & 0b11 == v.initial_type())
        }
        _ => false,
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(secret: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) {
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    let full_len = u8::try_from(b"tls13 ".len() + label.len()).unwrap_or(u8::MAX);
    let info: [&[u8]; 6] = [&len, &[full_len], b"tls13 ", label, &[0], &[]];
    // Output lengths here are 12..32 bytes, far below HKDF's 255 * 32 limit: expand cannot fail.
    if secret.expand_multi_info(&info, out).is_err() {
        out.fill(0);
    }
}

/// The client's Initial packet protection keys (RFC 9001 §5.2).
pub struct InitialKeys {
    aead: Aes128Gcm,
    iv: [u8; 12],
    hp: Aes128,
    /// Kept for the RFC test vectors.
    #[cfg(test)]
    raw: ([u8; 16], [u8; 12], [u8; 16]),
}

impl InitialKeys {
    /// Derive the client keys from the first Initial's Destination Connection ID.
    pub fn client(version: Version, dcid: &[u8]) -> Self {
        let (_, initial) = Hkdf::<Sha256>::extract(Some(version.salt()), dcid);
        let mut client_secret = [0u8; 32];
        expand_label(&initial, b"client in", &mut client_secret);
        let secret = Hkdf::<Sha256>::from_prk(&client_secret).unwrap_or(initial);
        let [key_label, iv_label, hp_label] = version.labels();
        let (mut key, mut iv, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
        expand_label(&secret, key_label, &mut key);
        expand_label(&secret, iv_label, &mut iv);
        expand_label(&secret, hp_label, &mut hp);
        Self {
            aead: Aes128Gcm::new(&key.into()),
            iv,
            hp: Aes128::new(&hp.into()),
            #[cfg(test)]
            raw: (key, iv, hp),
        }
    }

    /// The header protection mask for a 16-byte sample (RFC 9001 §5.4.3).
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; 16] {
        let mut block = (*sample).into();
        self.hp.encrypt_block(&mut block);
        block.into()
    }
}

/// A cursor over packet bytes that reports running off the end instead of panicking.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A QUIC variable-length integer (RFC 9000 §16).
    fn varint(&mut self) -> Option<u64> {
        let first = *self.bytes.get(self.at)?;
        let len = 1usize << (first >> 6);
        let raw = self.take(len)?;
        Some(raw.iter().skip(1).fold(u64::from(first & 0x3f), |v, &b| v << 8 | u64::from(b)))
    }

    fn varint_len(&mut self) -> Option<usize> {
        self.varint().and_then(|v| usize::try_from(v).ok())
    }

    fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// RFC 9000 §A.3: the full packet number closest to the next expected one.
fn decode_packet_number(largest: Option<u64>, truncated: u64, bits: u32) -> u64 {
    let expected = largest.map_or(0, |l| l + 1);
    let window = 1u64 << bits;
    let half = window / 2;
    let candidate = (expected & !(window - 1)) | truncated;
    if candidate + half <= expected && candidate < (1 << 62) - window {
        candidate + window
    } else if candidate > expected + half && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

/// One client flow's Initials; see the module docs.
pub struct ClientInitials {
    keys: Option<(Version, InitialKeys)>,
    largest_pn: Option<u64>,
    crypto: OffsetBuffer,
}

impl ClientInitials {
    /// A flow whose ClientHello may be at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self { keys: None, largest_pn: None, crypto: OffsetBuffer::new(max_len) }
    }

    /// Open every Initial in one UDP datagram and collect its CRYPTO data. Other long-header
    /// packets coalesced with it are skipped; a short-header packet ends the datagram. `scratch`
    /// holds one decrypted packet at a time: one buffer shared by every flow, so a flow holds only
    /// its CRYPTO stream.
    pub fn datagram(&mut self, datagram: &[u8], scratch: &mut Vec<u8>) -> Result<(), QuicError> {
        let mut rest = datagram;
        let mut opened = false;
        while let Some(&first) = rest.first() {
            if first & 0x80 == 0 {
                break;
            }
            match self.packet(rest, scratch) {
                Ok((used, was_initial)) => {
                    opened |= was_initial;
                    rest = rest.get(used..).unwrap_or_default();
                }
                // Trailing junk after a good packet (padding of a datagram) is no error.
                Err(_) if opened => break,
                Err(e) => return Err(e),
            }
        }
        if opened {
            Ok(())
        } else {
            Err(QuicError::NotInitial)
        }
    }

    /// The complete ClientHello message from CRYPTO offset 0, once all of it arrived.
    pub fn message(&self) -> Result<Option<&[u8]>, QuicError> {
        let bytes = self.crypto.contiguous();
        let Some(header) = bytes.get(..4) else {
            return Ok(None);
        };
        if header[0] != CLIENT_HELLO {
            return Err(QuicError::NotClientHello(header[0]));
        }
        let total = 4 + (usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]));
        Ok(bytes.get(..total))
    }

    /// One long-header packet at the start of `bytes`: returns its length and whether it was an
    /// Initial that decrypted.
    fn packet(&mut self, bytes: &[u8], scratch: &mut Vec<u8>) -> Result<(usize, bool), QuicError> {
        let mut c = Cursor::new(bytes);
        let first = c.u8().ok_or(QuicError::Truncated)?;
        let version = c.take(4).ok_or(QuicError::Truncated)?;
        let version = u32::from_be_bytes([version[0], version[1], version[2], version[3]]);
        let version = Version::from_wire(version).ok_or(QuicError::NotInitial)?;
        let dcid_len = usize::from(c.u8().ok_or(QuicError::Truncated)?);
        if dcid_len > MAX_CID_LEN {
            return Err(QuicError::NotInitial);
        }
        let dcid = c.take(dcid_len).ok_or(QuicError::Truncated)?;
        let scid_len = usize::from(c.u8().ok_or(QuicError::Truncated)?);
        c.take(scid_len).ok_or(QuicError::Truncated)?;
        let packet_type = (first >> 4) & 0b11;
        if packet_type == version.retry_type() {
            return Err(QuicError::NotInitial);
        }
        let is_initial = packet_type == version.initial_type();
        if is_initial {
            let token_len = c.varint_len().ok_or(QuicError::Truncated)?;
            c.take(token_len).ok_or(QuicError::Truncated)?;
        }
        let length = c.varint_len().ok_or(QuicError::Truncated)?;
        let pn_offset = c.at;
        let end = pn_offset.checked_add(length).filter(|&e| e <= bytes.len()).ok_or(QuicError::Truncated)?;
        if !is_initial {
            return Ok((end, false));
        }
        let keys = match &self.keys {
            Some((v, keys)) if *v == version => keys,
            Some(_) => return Ok((end, false)),
            None => &self.keys.insert((version, InitialKeys::client(version, dcid))).1,
        };
        let packet = bytes.get(..end).ok_or(QuicError::Truncated)?;
        let pn = open(keys, packet, pn_offset, self.largest_pn, scratch)?;
        self.largest_pn = Some(self.largest_pn.map_or(pn, |l| l.max(pn)));
        read_frames(scratch, &mut self.crypto)?;
        Ok((end, true))
    }
}

/// Remove header protection and decrypt `packet` (which ends at its Length) into `plain`.
/// Returns the full packet number.
fn open(
    keys: &InitialKeys,
    packet: &[u8],
    pn_offset: usize,
    largest_pn: Option<u64>,
    plain: &mut Vec<u8>,
) -> Result<u64, QuicError> {
    let sample: [u8; SAMPLE_LEN] = packet
        .get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(QuicError::Truncated)?;
    let mask = keys.mask(&sample);
    plain.clear();
    plain.extend_from_slice(packet);
    // The sample lies past the packet number, so every index below is inside `plain`.
    plain[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(plain[0] & 0b11) + 1;
    let header_len = pn_offset + pn_len;
    let mut truncated = 0u64;
    for i in 0..pn_len {
        let byte = plain[pn_offset + i] ^ mask[1 + i];
        plain[pn_offset + i] = byte;
        truncated = truncated << 8 | u64::from(byte);
    }
    let pn = decode_packet_number(largest_pn, truncated, 8 * pn_len as u32);
    let mut nonce = keys.iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    if plain.len() < header_len + TAG_LEN {
        return Err(QuicError::Truncated);
    }
    let (aad, body) = plain.split_at_mut(header_len);
    let (ciphertext, tag) = body.split_at_mut(body.len() - TAG_LEN);
    keys.aead
        .decrypt_in_place_detached(Nonce::from_slice(&nonce), aad, ciphertext, Tag::from_slice(tag))
        .map_err(|_| QuicError::Decrypt)?;
    let plain_len = plain.len() - TAG_LEN;
    plain.truncate(plain_len);
    plain.drain(..header_len);
    Ok(pn)
}

/// Walk the frames of a decrypted Initial, placing CRYPTO data. RFC 9000 §17.2.2 allows only
/// PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE in an Initial; anything else is malformed.
fn read_frames(payload: &[u8], crypto: &mut OffsetBuffer) -> Result<(), QuicError> {
    let mut c = Cursor::new(payload);
    while !c.is_empty() {
        let frame = c.varint().ok_or(QuicError::Frame)?;
        match frame {
            0x00 | 0x01 => {}
            0x02 | 0x03 => {
                let _largest = c.varint().ok_or(QuicError::Frame)?;
                let _delay = c.varint().ok_or(QuicError::Frame)?;
                let ranges = c.varint().ok_or(QuicError::Frame)?;
                let _first = c.varint().ok_or(QuicError::Frame)?;
                for _ in 0..ranges {
                    c.varint().ok_or(QuicError::Frame)?;
                    c.varint().ok_or(QuicError::Frame)?;
                }
                if frame == 0x03 {
                    for _ in 0..3 {
                        c.varint().ok_or(QuicError::Frame)?;
                    }
                }
            }
            0x06 => {
                let offset = c.varint().ok_or(QuicError::Frame)?;
                let len = c.varint_len().ok_or(QuicError::Frame)?;
                let data = c.take(len).ok_or(QuicError::Frame)?;
                crypto.insert(offset, data)?;
            }
            0x1c => {
                c.varint().ok_or(QuicError::Frame)?;
                c.varint().ok_or(QuicError::Frame)?;
                let len = c.varint_len().ok_or(QuicError::Frame)?;
                c.take(len).ok_or(QuicError::Frame)?;
            }
            _ => return Err(QuicError::Frame),
        }
    }
    Ok(())
}

/// The frame walk and CRYPTO reassembly on an arbitrary "decrypted" payload, for fuzzing.
pub(super) fn fuzz_frames(payload: &[u8]) {
    let mut initials = ClientInitials::new(crate::hello::DEFAULT_MAX_LEN);
    if read_frames(payload, &mut initials.crypto).is_ok() {
        let _ = initials.message();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    const RFC_DCID: &str = "8394c8f03e515708";

    #[test]
    fn rfc9001_appendix_a1_client_keys() {
        let keys = InitialKeys::client(Version::V1, &unhex(RFC_DCID));
        assert_eq!(hex::encode(keys.raw.0), "1f369613dd76d5467730efcbe3b1a22d");
        assert_eq!(hex::encode(keys.raw.1), "fa044b2f42a3fd3b46fb255c");
        assert_eq!(hex::encode(keys.raw.2), "9f50449e04a0e810283a1e9933adedd2");
    }

    #[test]
    fn rfc9001_appendix_a2_header_protection_mask() {
        let keys = InitialKeys::client(Version::V1, &unhex(RFC_DCID));
        let sample: [u8; 16] = unhex("d1b1c98dd7689fb8ec11d242b123dc9b").try_into().unwrap();
        assert_eq!(hex::encode(&keys.mask(&sample)[..5]), "437b9aec36");
    }

    #[test]
    fn rfc9369_appendix_a1_client_keys() {
        let keys = InitialKeys::client(Version::V2, &unhex(RFC_DCID));
        assert_eq!(hex::encode(keys.raw.0), "8b1a0bc121284290a29e0971b5cd045d");
        assert_eq!(hex::encode(keys.raw.1), "91f73e2351d8fa91660e909f");
        assert_eq!(hex::encode(keys.raw.2), "45b95e15235d6f45a6b19cbcb0294ba9");
    }

    #[test]
    fn packet_number_decoding() {
        // RFC 9000 §A.3's example.
        assert_eq!(decode_packet_number(Some(0xa82f30ea), 0x9b32, 16), 0xa82f9b32);
        assert_eq!(decode_packet_number(None, 0, 8), 0);
        assert_eq!(decode_packet_number(Some(3), 2, 8), 2);
    }

    #[test]
    fn varints() {
        for (bytes, value) in
            [("c2197c5eff14e88c", 151_288_809_941_952_652u64), ("9d7f3e7d", 494_878_333), ("7bbd", 15_293), ("25", 37)]
        {
            assert_eq!(Cursor::new(&unhex(bytes)).varint(), Some(value));
        }
        assert_eq!(Cursor::new(&[0x40]).varint(), None);
    }

    /// Build a client Initial the way a client would, so the opening path is checked end to end.
    pub(crate) fn seal_initial(version: Version, dcid: &[u8], pn: u32, frames: &[u8]) -> Vec<u8> {
        let keys = InitialKeys::client(version, dcid);
        let first = 0xc0 | version.initial_type() << 4 | 0b11; // 4-byte packet number
        let mut packet = vec![first];
        let wire = match version {
            Version::V1 => VERSION_1,
            Version::V2 => VERSION_2,
        };
        packet.extend_from_slice(&wire.to_be_bytes());
        packet.push(dcid.len() as u8);
        packet.extend_from_slice(dcid);
        packet.extend_from_slice(&[0, 0]); // empty SCID, empty token
        let length = 4 + frames.len() + TAG_LEN;
        packet.extend_from_slice(&(0x4000u16 | length as u16).to_be_bytes());
        let pn_offset = packet.len();
        packet.extend_from_slice(&pn.to_be_bytes());
        let mut nonce = keys.iv;
        for (n, p) in nonce[4..].iter_mut().zip(u64::from(pn).to_be_bytes()) {
            *n ^= p;
        }
        let mut body = frames.to_vec();
        let tag = keys.aead.encrypt_in_place_detached(Nonce::from_slice(&nonce), &packet, &mut body).unwrap();
        packet.extend_from_slice(&body);
        packet.extend_from_slice(&tag);
        let sample: [u8; 16] = packet[pn_offset + 4..pn_offset + 20].try_into().unwrap();
        let mask = keys.mask(&sample);
        packet[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            packet[pn_offset + i] ^= mask[1 + i];
        }
        packet
    }

    pub(crate) fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06, 0x80 | (offset >> 24) as u8, (offset >> 16) as u8, (offset >> 8) as u8, offset as u8];
        f.extend_from_slice(&(0x4000u16 | data.len() as u16).to_be_bytes());
        f.extend_from_slice(data);
        f
    }

    fn hello(body_len: usize) -> Vec<u8> {
        let mut m = vec![1, 0, (body_len >> 8) as u8, body_len as u8];
        m.extend((0..body_len).map(|i| i as u8));
        m
    }

    #[test]
    fn crypto_out_of_order_across_coalesced_and_separate_packets() {
        for version in [Version::V1, Version::V2] {
            let dcid = unhex(RFC_DCID);
            let m = hello(1500);
            // Packet 0: the tail then the middle, padded; packet 1 (separate datagram): the head.
            let mut frames0 = crypto_frame(1000, &m[1000..]);
            frames0.extend(crypto_frame(400, &m[400..1000]));
            frames0.extend([0u8; 30]);
            let p0 = seal_initial(version, &dcid, 0, &frames0);
            let mut p1 = seal_initial(version, &[9; 8], 1, &crypto_frame(0, &m[..400]));
            let mut initials = ClientInitials::new(16 * 1024);
            initials.datagram(&p0, &mut Vec::new()).unwrap();
            assert_eq!(initials.message(), Ok(None));
            // A later Initial carries the server's chosen DCID but keeps the first keys.
            assert_eq!(initials.datagram(&p1, &mut Vec::new()), Err(QuicError::Decrypt));
            p1 = seal_initial(version, &dcid, 1, &crypto_frame(0, &m[..400]));
            let mut coalesced = p1.clone();
            coalesced.extend(seal_initial(version, &dcid, 2, &[1, 0, 0]));
            initials.datagram(&coalesced, &mut Vec::new()).unwrap();
            assert_eq!(initials.message(), Ok(Some(m.as_slice())), "{version:?}");
        }
    }

    #[test]
    fn detection_and_junk() {
        let p = seal_initial(Version::V2, &[1, 2, 3, 4], 0, &crypto_frame(0, &hello(10)));
        assert!(is_initial(&p));
        assert!(!is_initial(&seal_initial(Version::V1, &[1], 0, &[1])[..4]));
        let mut initials = ClientInitials::new(100);
        assert_eq!(initials.datagram(&p[..p.len() - 1], &mut Vec::new()), Err(QuicError::Truncated));
        assert_eq!(initials.datagram(&[0xc0, 0, 0, 0, 1, 21], &mut Vec::new()), Err(QuicError::NotInitial));
        let mut too_far = ClientInitials::new(100);
        let far = seal_initial(Version::V1, &[1], 0, &crypto_frame(95, &[0; 10]));
        assert!(matches!(
            too_far.datagram(&far, &mut Vec::new()),
            Err(QuicError::Reassembly(Refused::TooLarge { .. }))
        ));
    }
}
