//! One direction of a TCP connection, put back in order.
//!
//! [`TcpStream`] takes segments as captured (any order, retransmitted, overlapping, or starting
//! mid-stream) and hands the in-order bytes to a sink exactly once. Only the start of a stream
//! matters for a ClientHello, so it keeps out-of-order data only within the first `window` bytes
//! and refuses more than `window` bytes or [`MAX_AHEAD_SEGMENTS`] segments of it: memory per
//! direction is bounded whatever arrives.

use std::collections::BTreeMap;

/// Out-of-order segments kept per direction. A ClientHello spans a dozen segments; without a count,
/// thousands of 1-byte segments would each cost an allocation and a tree entry.
pub const MAX_AHEAD_SEGMENTS: usize = 64;

/// One direction's reassembly state; see the module docs.
#[derive(Debug)]
pub struct TcpStream {
    /// Sequence number of stream offset 0 (the byte after the SYN), once known.
    base: Option<u32>,
    /// Stream offset of the next byte the sink expects.
    next: u32,
    /// Segments that arrived ahead of `next`, by stream offset.
    ahead: BTreeMap<u32, Vec<u8>>,
    ahead_bytes: usize,
    window: u32,
}

/// Where an in-order stream stands: all a direction with nothing kept needs to go on later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    base: Option<u32>,
    next: u32,
}

/// The reassembly gave up on a direction: more out-of-order data than it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("more out-of-order TCP data than the {0} bytes in {MAX_AHEAD_SEGMENTS} segments kept")]
pub struct Overflow(pub u32);

impl TcpStream {
    /// A direction that keeps out-of-order bytes only within the first `window` stream bytes.
    pub fn new(window: u32) -> Self {
        Self { base: None, next: 0, ahead: BTreeMap::new(), ahead_bytes: 0, window }
    }

    /// A direction that goes on from `at` (see [`TcpStream::park`]).
    pub fn resume(window: u32, at: Position) -> Self {
        Self { base: at.base, next: at.next, ..Self::new(window) }
    }

    /// Where the stream stands, when nothing is kept out of order: [`TcpStream::resume`] goes on
    /// from there exactly as this stream would.
    pub fn park(&self) -> Option<Position> {
        self.ahead.is_empty().then_some(Position { base: self.base, next: self.next })
    }

    /// Take one segment; every byte that became in-order is passed to `sink`, in order. The sink
    /// returns `false` once it wants no more bytes.
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        payload: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), Overflow> {
        if syn {
            // A SYN (even a late one) fixes offset 0; data already delivered stays delivered.
            if self.base.is_none() {
                self.base = Some(seq.wrapping_add(1));
            }
            return self.data(seq.wrapping_add(1), payload, sink);
        }
        if payload.is_empty() {
            return Ok(());
        }
        // A capture that starts mid-stream: offset 0 is the first data seen.
        self.base.get_or_insert(seq);
        self.data(seq, payload, sink)
    }

    fn data(&mut self, seq: u32, payload: &[u8], sink: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), Overflow> {
        let Some(base) = self.base else { return Ok(()) };
        if payload.is_empty() {
            return Ok(());
        }
        // Offsets within 2 GiB behind `base` are old data (retransmissions before offset 0).
        let start = seq.wrapping_sub(base);
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let (start, payload) = if start > u32::MAX / 2 {
            let skip = start.wrapping_neg();
            match payload.get(skip as usize..) {
                Some(rest) if !rest.is_empty() && skip < len => (0, rest),
                _ => return Ok(()),
            }
        } else {
            (start, payload)
        };
        if start > self.next {
            return self.keep_ahead(start, payload);
        }
        if self.deliver(start, payload, sink) {
            self.drain(sink);
        }
        Ok(())
    }

    /// Pass the part of `payload` (at `start` <= `next`) beyond `next` to the sink.
    fn deliver(&mut self, start: u32, payload: &[u8], sink: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        let skip = (self.next - start) as usize;
        let Some(new) = payload.get(skip..).filter(|n| !n.is_empty()) else {
            return true;
        };
        self.next = self.next.saturating_add(u32::try_from(new.len()).unwrap_or(u32::MAX));
        sink(new)
    }

    /// Deliver the kept segments that became in-order.
    fn drain(&mut self, sink: &mut dyn FnMut(&[u8]) -> bool) {
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let (start, bytes) = entry.remove_entry();
            self.ahead_bytes -= bytes.len();
            if !self.deliver(start, &bytes, sink) {
                break;
            }
        }
    }

    /// Out-of-order segments are waiting.
    pub fn has_ahead(&self) -> bool {
        !self.ahead.is_empty()
    }

    fn keep_ahead(&mut self, start: u32, payload: &[u8]) -> Result<(), Overflow> {
        if start >= self.window {
            return Ok(());
        }
        let kept = self.ahead.get(&start).map_or(0, Vec::len);
        if payload.len() <= kept {
            return Ok(());
        }
        let too_many = kept == 0 && self.ahead.len() >= MAX_AHEAD_SEGMENTS;
        if too_many || self.ahead_bytes - kept + payload.len() > self.window as usize {
            return Err(Overflow(self.window));
        }
        self.ahead_bytes = self.ahead_bytes - kept + payload.len();
        self.ahead.insert(start, payload.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stream: &mut TcpStream, segments: &[(u32, bool, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(seq, syn, payload) in segments {
            stream
                .segment(seq, syn, payload, &mut |b| {
                    out.extend_from_slice(b);
                    true
                })
                .unwrap();
        }
        out
    }

    #[test]
    fn reorders_retransmissions_and_overlaps() {
        let mut s = TcpStream::new(1000);
        let out = run(
            &mut s,
            &[
                (99, true, b""),
                (106, false, b"ghij"),
                (103, false, b"defg"),
                (100, false, b"abc"),
                (100, false, b"abcd"),
                (108, false, b"ijklm"),
            ],
        );
        assert_eq!(out, b"abcdefghijklm");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = TcpStream::new(1000);
        let out = run(&mut s, &[(u32::MAX - 1, true, b""), (1, false, b"cd"), (u32::MAX, false, b"ab")]);
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn mid_stream_start_and_old_data() {
        let mut s = TcpStream::new(1000);
        let out = run(&mut s, &[(5000, false, b"xyz"), (4990, false, b"0123456789"), (4998, false, b"89xyz!")]);
        assert_eq!(out, b"xyz!");
    }

    #[test]
    fn sink_can_stop_and_window_is_bounded() {
        let mut s = TcpStream::new(8);
        assert_eq!(s.segment(0, true, b"", &mut |_| true), Ok(()));
        // Beyond the window: dropped silently.
        assert_eq!(s.segment(100, false, b"far", &mut |_| true), Ok(()));
        assert_eq!(s.segment(4, false, b"abcd", &mut |_| true), Ok(()));
        assert_eq!(s.segment(3, false, b"abcdef", &mut |_| true), Err(Overflow(8)));
        let mut calls = 0;
        s.segment(1, false, b"xy", &mut |_| {
            calls += 1;
            false
        })
        .unwrap();
        assert_eq!(calls, 1, "a sink that stops gets no drained segments");
    }

    #[test]
    fn parked_and_resumed_streams_go_on() {
        let mut s = TcpStream::new(1000);
        assert_eq!(run(&mut s, &[(99, true, b""), (100, false, b"abc")]), b"abc");
        let mut resumed = TcpStream::resume(1000, s.park().unwrap());
        assert_eq!(run(&mut resumed, &[(101, false, b"bcde"), (103, false, b"def")]), b"def");
        run(&mut resumed, &[(110, false, b"ahead")]);
        assert_eq!(resumed.park(), None, "out-of-order data is kept, so nothing to park");
    }

    #[test]
    fn out_of_order_segments_are_counted() {
        let mut s = TcpStream::new(10_000);
        s.segment(0, true, b"", &mut |_| true).unwrap();
        for i in 0..MAX_AHEAD_SEGMENTS as u32 {
            assert_eq!(s.segment(10 + 2 * i, false, b"x", &mut |_| true), Ok(()));
        }
        // A longer copy of a kept segment replaces it; one more segment is refused.
        assert_eq!(s.segment(10, false, b"xx", &mut |_| true), Ok(()));
        assert_eq!(s.segment(5000, false, b"x", &mut |_| true), Err(Overflow(10_000)));
    }
}
