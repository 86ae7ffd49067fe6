//! Reassembly by offset: the buffer behind QUIC's CRYPTO stream and DTLS handshake fragments.
//!
//! Both protocols deliver pieces of one handshake message tagged with their offset, in any order,
//! possibly overlapping or repeated. [`OffsetBuffer`] places each piece and tells how many bytes
//! from offset 0 are contiguous. It is bounded: a piece reaching past the cap is refused, so a
//! hostile offset cannot make it allocate, and so is a piece that would leave more than
//! [`MAX_RANGES`] separate ranges, so a hostile pattern of gaps cannot grow the bookkeeping.

/// Separate ranges held at once. A real handshake arrives in a few pieces, each range costs 16
/// bytes, and 1-byte pieces with gaps between them would otherwise need thousands.
pub const MAX_RANGES: usize = 64;

/// Why a piece was refused; the stream cannot be completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("fragment ends at byte {end}, past the {cap}-byte reassembly limit")]
    TooLarge { end: u64, cap: usize },
    #[error("more than {MAX_RANGES} separate fragments held at once")]
    TooFragmented,
}

impl Refused {
    /// The summary label.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::TooLarge { .. } => "too_large",
            Refused::TooFragmented => "too_fragmented",
        }
    }
}

/// Pieces of one byte stream placed at their offsets; see the module docs.
#[derive(Debug)]
pub struct OffsetBuffer {
    cap: usize,
    data: Vec<u8>,
    /// Covered ranges `[start, end)`, sorted and disjoint (touching ranges are merged).
    covered: Vec<(usize, usize)>,
}

impl OffsetBuffer {
    /// An empty buffer accepting bytes up to offset `cap`.
    pub fn new(cap: usize) -> Self {
        Self { cap, data: Vec::new(), covered: Vec::new() }
    }

    /// Place `bytes` at `offset`. Overlapping bytes are overwritten: a retransmission carries the
    /// same bytes, and a peer that lies about them only spoils its own fingerprint.
    pub fn insert(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Refused> {
        let end = offset.saturating_add(bytes.len() as u64);
        let too_large = Refused::TooLarge { end, cap: self.cap };
        let end = usize::try_from(end).map_err(|_| too_large)?;
        if end > self.cap {
            return Err(too_large);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let start = end - bytes.len();
        // Merge every range that overlaps or touches [start, end) into one.
        let first = self.covered.partition_point(|&(_, e)| e < start);
        let last = self.covered.partition_point(|&(s, _)| s <= end);
        if first == last && self.covered.len() >= MAX_RANGES {
            return Err(Refused::TooFragmented);
        }
        if self.data.len() < end {
            // Grow as a Vec would, but never past the cap.
            let wanted = end.max(self.data.capacity() * 2).min(self.cap);
            self.data.reserve_exact(wanted - self.data.len());
            self.data.resize(end, 0);
        }
        self.data[start..end].copy_from_slice(bytes);
        self.cover(first, last, start, end);
        Ok(())
    }

    /// Replace the ranges `first..last` (those overlapping or touching `[start, end)`) by their union.
    fn cover(&mut self, first: usize, last: usize, start: usize, end: usize) {
        let (mut lo, mut hi) = (start, end);
        if let Some(&(s, _)) = self.covered.get(first).filter(|_| first < last) {
            lo = lo.min(s);
        }
        if let Some(&(_, e)) = last.checked_sub(1).filter(|&l| l >= first).and_then(|l| self.covered.get(l)) {
            hi = hi.max(e);
        }
        self.covered.splice(first..last, [(lo, hi)]);
    }

    /// The bytes contiguous from offset 0 (empty until offset 0 arrived).
    pub fn contiguous(&self) -> &[u8] {
        match self.covered.first() {
            Some(&(0, end)) => self.data.get(..end).unwrap_or_default(),
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_and_overlapping_pieces() {
        let mut b = OffsetBuffer::new(100);
        b.insert(6, b"ghij").unwrap();
        assert_eq!(b.contiguous(), b"");
        b.insert(2, b"cdef").unwrap();
        assert_eq!(b.contiguous(), b"");
        b.insert(0, b"abc").unwrap();
        assert_eq!(b.contiguous(), b"abcdefghij");
        b.insert(4, b"ef").unwrap();
        b.insert(20, b"x").unwrap();
        assert_eq!(b.contiguous(), b"abcdefghij");
        b.insert(10, b"klmnopqrst").unwrap();
        assert_eq!(b.contiguous(), b"abcdefghijklmnopqrstx");
        assert_eq!(b.covered, vec![(0, 21)]);
    }

    #[test]
    fn gaps_stay_separate() {
        let mut b = OffsetBuffer::new(100);
        b.insert(10, b"a").unwrap();
        b.insert(30, b"b").unwrap();
        b.insert(20, b"c").unwrap();
        assert_eq!(b.covered, vec![(10, 11), (20, 21), (30, 31)]);
        b.insert(11, &[0; 18]).unwrap();
        assert_eq!(b.covered, vec![(10, 29), (30, 31)]);
        b.insert(29, &[0]).unwrap();
        assert_eq!(b.covered, vec![(10, 31)], "touching ranges merge");
    }

    #[test]
    fn refuses_pieces_past_the_cap() {
        let mut b = OffsetBuffer::new(16);
        assert_eq!(b.insert(10, &[0; 7]), Err(Refused::TooLarge { end: 17, cap: 16 }));
        assert!(b.insert(u64::MAX, &[1]).is_err());
        assert!(b.insert(10, &[0; 6]).is_ok());
        assert!(b.data.capacity() <= 16);
    }

    #[test]
    fn refuses_too_many_separate_ranges() {
        let mut b = OffsetBuffer::new(1000);
        for i in 0..MAX_RANGES {
            b.insert(2 * i as u64 + 1, b"x").unwrap();
        }
        assert_eq!(b.insert(500, b"y"), Err(Refused::TooFragmented));
        // A piece that joins existing ranges is still taken, and fills the gaps.
        b.insert(1, &[0; 2 * MAX_RANGES]).unwrap();
        assert_eq!(b.covered, vec![(1, 2 * MAX_RANGES + 1)]);
        b.insert(0, b"z").unwrap();
        assert_eq!(b.contiguous().len(), 2 * MAX_RANGES + 1);
    }
}
