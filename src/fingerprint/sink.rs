//! Where fingerprint strings go: into a hasher or into text, through the same writers.
//!
//! Every fingerprint is "a string, or a hash of that string". The writers here produce the string
//! once, byte by byte, into a [`Sink`]: a [`String`] for the raw forms, or a [`Hashing`] sink that
//! stages bytes on the stack and hands the hasher whole blocks, so the hashed forms never build the
//! string. Numbers are formatted through lookup tables rather than `format!`, which a prototype
//! found to cost as much as the hashing.

use md5::Md5;
use sha2::{Digest, Sha256};

/// Receives the bytes of a fingerprint string.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for String {
    fn put(&mut self, bytes: &[u8]) {
        // Only ASCII is ever written (digits, hex, separators, ALPN code characters).
        self.extend(bytes.iter().map(|&b| char::from(b)));
    }
}

const STAGE: usize = 256;

/// A hasher behind a stack buffer: the digest sees few, large updates.
pub(crate) struct Hashing<D: Digest> {
    digest: D,
    stage: [u8; STAGE],
    len: usize,
    /// Whether any byte was written: an empty string hashes to zeros in JA4 (§3.4).
    written: bool,
}

impl<D: Digest> Hashing<D> {
    pub(crate) fn new() -> Self {
        Self {
            digest: D::new(),
            stage: [0; STAGE],
            len: 0,
            written: false,
        }
    }

    fn finish(mut self) -> (bool, sha2::digest::Output<D>) {
        self.digest.update(&self.stage[..self.len]);
        (self.written, self.digest.finalize())
    }
}

impl<D: Digest> Sink for Hashing<D> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.written |= !bytes.is_empty();
        if self.len + bytes.len() > STAGE {
            self.digest.update(&self.stage[..self.len]);
            self.len = 0;
            if bytes.len() > STAGE {
                self.digest.update(bytes);
                return;
            }
        }
        self.stage[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes` into `out` (which is twice as long).
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
}

/// The MD5 of what was written, as 32 lowercase hex characters.
pub(crate) fn md5_hex(sink: Hashing<Md5>) -> [u8; 32] {
    let (_, digest) = sink.finish();
    let mut out = [0; 32];
    hex_into(&digest, &mut out);
    out
}

/// JA4's `h12`: the first 12 hex characters of SHA-256, or twelve zeros for an empty string.
pub(crate) fn sha256_h12(sink: Hashing<Sha256>) -> [u8; 12] {
    let (written, digest) = sink.finish();
    let mut out = [b'0'; 12];
    if written {
        hex_into(&digest[..6], &mut out);
    }
    out
}

/// `v` as four lowercase hex digits.
#[inline]
pub(crate) fn hex4(v: u16) -> [u8; 4] {
    let [hi, lo] = v.to_be_bytes();
    let mut out = [0; 4];
    hex_into(&[hi, lo], &mut out);
    out
}

/// Write `values` as 4-digit hex joined with `,`.
pub(crate) fn put_hex4_list(sink: &mut impl Sink, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        let digits = hex4(v);
        if i == 0 {
            sink.put(&digits);
        } else {
            sink.put(&[b',', digits[0], digits[1], digits[2], digits[3]]);
        }
    }
}

/// Two-digit pairs "00".."99": decimal formatting two digits per step.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `v` in decimal; returns the buffer and where the digits start.
#[inline]
pub(crate) fn decimal(v: u16) -> ([u8; 5], usize) {
    let mut out = [0u8; 5];
    let mut at = 5;
    let mut n = usize::from(v);
    while n >= 100 {
        let pair = (n % 100) * 2;
        n /= 100;
        at -= 2;
        out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        at -= 2;
        out[at..at + 2].copy_from_slice(&PAIRS[n * 2..n * 2 + 2]);
    } else {
        at -= 1;
        out[at] = b'0' + n as u8;
    }
    (out, at)
}

/// Write `values` in decimal joined with `-`.
pub(crate) fn put_decimal_list(sink: &mut impl Sink, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            sink.put(b"-");
        }
        let (digits, start) = decimal(v);
        sink.put(&digits[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_std_for_every_u16() {
        for v in 0..=u16::MAX {
            let (digits, start) = decimal(v);
            assert_eq!(
                std::str::from_utf8(&digits[start..]).unwrap(),
                v.to_string()
            );
        }
    }

    #[test]
    fn hex4_matches_std() {
        for v in [0u16, 0x2f, 0x1301, 0xfe0d, 0xffff] {
            assert_eq!(std::str::from_utf8(&hex4(v)).unwrap(), format!("{v:04x}"));
        }
    }

    #[test]
    fn hashing_sink_equals_hashing_the_string() {
        let text: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for split in [1, 5, 255, 256, 257, 600] {
            let mut sink = Hashing::<Sha256>::new();
            text.as_bytes().chunks(split).for_each(|c| sink.put(c));
            let (_, digest) = sink.finish();
            assert_eq!(
                digest.as_slice(),
                Sha256::digest(text.as_bytes()).as_slice(),
                "split {split}"
            );
        }
    }

    #[test]
    fn empty_string_hashes_to_zeros() {
        assert_eq!(&sha256_h12(Hashing::new()), b"000000000000");
        let mut sink = Hashing::<Sha256>::new();
        sink.put(b"0000");
        assert_eq!(&sha256_h12(sink), b"9af15b336e6a");
    }
}
