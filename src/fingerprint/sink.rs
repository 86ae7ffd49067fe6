//! Where fingerprint strings go: into a hasher or into text, through the same writers.
//!
//! Every fingerprint is "a string, or a hash of that string". The writers here produce the string
//! once, byte by byte, into a [`Sink`]: a [`String`] for the raw forms, or a [`Hashing`] sink that
//! stages bytes on the stack and hands the hasher whole blocks, so the hashed forms never build the
//! string. Numbers are formatted through lookup tables rather than `format!`, which a prototype
//! found to cost as much as the hashing.

use md5::{Digest, Md5};

/// A hash function fed in large updates.
pub(crate) trait Hasher {
    fn start() -> Self;
    fn update(&mut self, bytes: &[u8]);
    /// The digest into `out` (as many bytes as fit).
    fn finish_into(self, out: &mut [u8]);
}

impl Hasher for Md5 {
    fn start() -> Self {
        Md5::new()
    }
    fn update(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
    fn finish_into(self, out: &mut [u8]) {
        let digest = self.finalize();
        out.iter_mut().zip(digest.iter()).for_each(|(o, d)| *o = *d);
    }
}

/// SHA-256 through ring, which uses the CPU's SHA extensions where present.
pub(crate) struct Sha256(ring::digest::Context);

impl Hasher for Sha256 {
    fn start() -> Self {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }
    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish_into(self, out: &mut [u8]) {
        let digest = self.0.finish();
        out.iter_mut().zip(digest.as_ref()).for_each(|(o, d)| *o = *d);
    }
}

/// Receives the bytes of a fingerprint string.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);

    /// Write the first `len` bytes of a small fixed-size piece. A hashing sink copies all `N`
    /// bytes at once (a fixed-size move, no `memcpy` call) and advances by `len`.
    #[inline]
    fn put_prefix<const N: usize>(&mut self, bytes: [u8; N], len: usize) {
        self.put(&bytes[..len.min(N)]);
    }
}

impl Sink for String {
    fn put(&mut self, bytes: &[u8]) {
        // Only ASCII is ever written (digits, hex, separators, ALPN code characters).
        self.extend(bytes.iter().map(|&b| char::from(b)));
    }
}

const STAGE: usize = 256;

/// A hasher behind a stack buffer: the digest sees few, large updates.
pub(crate) struct Hashing<D: Hasher> {
    digest: D,
    stage: [u8; STAGE],
    len: usize,
    /// Whether any byte was written: an empty string hashes to zeros in JA4 (§3.4).
    written: bool,
}

impl<D: Hasher> Hashing<D> {
    pub(crate) fn new() -> Self {
        Self { digest: D::start(), stage: [0; STAGE], len: 0, written: false }
    }

    /// Whether anything was written, and the digest (first `out.len()` bytes) into `out`.
    fn finish(mut self, out: &mut [u8]) -> bool {
        self.digest.update(&self.stage[..self.len]);
        self.digest.finish_into(out);
        self.written
    }
}

impl<D: Hasher> Sink for Hashing<D> {
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

    // Always inlined: as a call it spent more on saving registers than on the copy.
    #[inline(always)]
    fn put_prefix<const N: usize>(&mut self, bytes: [u8; N], len: usize) {
        let len = len.min(N);
        if self.len + N > STAGE {
            self.digest.update(&self.stage[..self.len]);
            self.len = 0;
        }
        match self.stage.get_mut(self.len..self.len + N) {
            Some(slot) => {
                slot.copy_from_slice(&bytes);
                self.len += len;
                self.written |= len > 0;
            }
            // Only when N exceeds the stage itself, which no caller does.
            None => self.put(&bytes[..len]),
        }
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
    let mut digest = [0; 16];
    sink.finish(&mut digest);
    let mut out = [0; 32];
    hex_into(&digest, &mut out);
    out
}

/// JA4's `h12`: the first 12 hex characters of SHA-256, or twelve zeros for an empty string.
pub(crate) fn sha256_h12(sink: Hashing<Sha256>) -> [u8; 12] {
    let mut digest = [0; 6];
    let mut out = [b'0'; 12];
    if sink.finish(&mut digest) {
        hex_into(&digest, &mut out);
    }
    out
}

/// Byte -> its two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut table = [[0; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [HEX[i >> 4], HEX[i & 0x0f]];
        i += 1;
    }
    table
};

/// `v` as four lowercase hex digits.
#[inline]
pub(crate) fn hex4(v: u16) -> [u8; 4] {
    let [hi, lo] = v.to_be_bytes();
    let ([a, b], [c, d]) = (HEX_PAIRS[usize::from(hi)], HEX_PAIRS[usize::from(lo)]);
    [a, b, c, d]
}

/// Write `values` as 4-digit hex joined with `,`.
pub(crate) fn put_hex4_list(sink: &mut impl Sink, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        let [a, b, c, d] = hex4(v);
        if i == 0 {
            sink.put_prefix([a, b, c, d], 4);
        } else {
            sink.put_prefix([b',', a, b, c, d], 5);
        }
    }
}

/// Two-digit pairs "00".."99": decimal formatting two digits per step.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// [`PAIRS`] as little-endian words: the pair for `n` is one load.
const PAIR_WORDS: [u16; 100] = {
    let mut table = [0; 100];
    let mut i = 0;
    while i < 100 {
        table[i] = u16::from_le_bytes([PAIRS[2 * i], PAIRS[2 * i + 1]]);
        i += 1;
    }
    table
};

/// `separator` (if any) then `v` in decimal, left-aligned; returns the bytes and their count.
///
/// Without a loop or a branch per digit: all five digits are laid out in a word, most significant
/// first, and the leading zeros shifted out.
#[inline]
pub(crate) fn decimal(v: u16, separator: Option<u8>) -> ([u8; 8], usize) {
    let n = usize::from(v);
    let digits = 1 + usize::from(n >= 10) + usize::from(n >= 100) + usize::from(n >= 1000) + usize::from(n >= 10000);
    let (high, low) = (n / 100, n % 100);
    let (top, middle) = (high / 100, high % 100);
    let all_five = (b'0' as usize + top) as u64 | u64::from(PAIR_WORDS[middle]) << 8 | u64::from(PAIR_WORDS[low]) << 24;
    let mut word = all_five >> (8 * (5 - digits));
    let mut len = digits;
    if let Some(sep) = separator {
        word = word << 8 | u64::from(sep);
        len += 1;
    }
    (word.to_le_bytes(), len)
}

/// Write `values` in decimal joined with `-`.
pub(crate) fn put_decimal_list(sink: &mut impl Sink, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        let (bytes, len) = decimal(v, (i > 0).then_some(b'-'));
        sink.put_prefix(bytes, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_std_for_every_u16() {
        for v in 0..=u16::MAX {
            let (digits, len) = decimal(v, None);
            assert_eq!(std::str::from_utf8(&digits[..len]).unwrap(), v.to_string());
            let (digits, len) = decimal(v, Some(b'-'));
            assert_eq!(std::str::from_utf8(&digits[..len]).unwrap(), format!("-{v}"));
        }
    }

    #[test]
    fn hex4_matches_std() {
        for v in [0u16, 0x2f, 0x1301, 0xfe0d, 0xffff] {
            assert_eq!(std::str::from_utf8(&hex4(v)).unwrap(), format!("{v:04x}"));
        }
    }

    #[test]
    fn fixed_size_puts_equal_slice_puts() {
        let mut by_prefix = Hashing::<Sha256>::new();
        let mut by_slice = Hashing::<Sha256>::new();
        let mut text = String::new();
        for v in 0..2000u16 {
            let (bytes, len) = decimal(v, Some(b'-'));
            by_prefix.put_prefix(bytes, len);
            by_slice.put(&bytes[..len]);
            text.put_prefix(bytes, len);
        }
        let expected = sha2::Sha256::digest(text.as_bytes());
        let (mut a, mut b) = ([0; 32], [0; 32]);
        by_prefix.finish(&mut a);
        by_slice.finish(&mut b);
        assert_eq!((a.as_slice(), b.as_slice()), (expected.as_slice(), expected.as_slice()));
    }

    #[test]
    fn hashing_sink_equals_hashing_the_string() {
        let text: String = (0..1000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        for split in [1, 5, 255, 256, 257, 600] {
            let mut sink = Hashing::<Sha256>::new();
            text.as_bytes().chunks(split).for_each(|c| sink.put(c));
            let mut digest = [0; 32];
            sink.finish(&mut digest);
            assert_eq!(digest.as_slice(), sha2::Sha256::digest(text.as_bytes()).as_slice(), "split {split}");
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
