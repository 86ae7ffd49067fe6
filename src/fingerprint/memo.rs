//! A per-thread memo of hashed fingerprint parts, keyed by the exact values they are made of.
//!
//! Every hashed part (JA4's b and c, the JA3 and JA3N MD5s) is a pure function of a few lists of
//! u16 values. A proxy sees the same few client builds over and over, so the lists repeat: a memo
//! hit skips building the string and hashing it, which is most of a fingerprint's cost. Chrome's
//! per-connection extension shuffle does not defeat it for JA4, whose lists are sorted.
//!
//! The memo is direct-mapped and small (a fixed number of slots per thread, allocated once). A key
//! is stored whole and compared whole, so a hit is always the value the computation would give;
//! a collision only evicts. Keys longer than a slot are not memoised.

use std::cell::RefCell;

const SLOTS: usize = 128;
/// u16 values per key: a tag, then each list as its length followed by its values.
const MAX_KEY: usize = 160;

/// What a memoised value is; part of the key, so equal lists of different kinds never meet.
#[derive(Clone, Copy)]
#[repr(u16)]
pub(crate) enum Kind {
    Ja4PartB = 1,
    Ja4PartC = 2,
    Ja3 = 3,
    Ja3n = 4,
    /// Sorted part b, keyed by the wire-order cipher list.
    Ja4SortedPartB = 5,
}

#[derive(Clone)]
struct Slot {
    len: usize,
    key: [u16; MAX_KEY],
    value: [u8; 32],
}

thread_local! {
    static MEMO: RefCell<Vec<Slot>> = RefCell::new(vec![Slot { len: 0, key: [0; MAX_KEY], value: [0; 32] }; SLOTS]);
}

/// A key under construction, on the stack.
pub(crate) struct Key {
    values: [u16; MAX_KEY],
    len: usize,
    /// Set when the lists did not fit: the value is then computed, not memoised.
    overflow: bool,
}

impl Key {
    pub(crate) fn new(kind: Kind) -> Self {
        let mut key = Key { values: [0; MAX_KEY], len: 1, overflow: false };
        key.values[0] = kind as u16;
        key
    }

    /// Append one list (its length first, so list boundaries are part of the key).
    pub(crate) fn list(&mut self, values: impl IntoIterator<Item = u16>) -> &mut Self {
        let length_at = self.len;
        self.len += 1;
        let mut count = 0u16;
        for v in values {
            match self.values.get_mut(self.len) {
                Some(slot) if !self.overflow => *slot = v,
                _ => {
                    self.overflow = true;
                    return self;
                }
            }
            self.len += 1;
            count = count.wrapping_add(1);
        }
        match self.values.get_mut(length_at) {
            Some(slot) => *slot = count,
            None => self.overflow = true,
        }
        self
    }

    fn slot_index(&self) -> usize {
        let mut h: u64 = 0;
        for &v in &self.values[..self.len] {
            h = (h.rotate_left(5) ^ u64::from(v)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        (h >> 32) as usize % SLOTS
    }

    /// The memoised value for this key, or `compute()`'s (then remembered).
    pub(crate) fn get_or<const N: usize>(&self, compute: impl FnOnce() -> [u8; N]) -> [u8; N] {
        if self.overflow || N > 32 || self.len > MAX_KEY {
            return compute();
        }
        let index = self.slot_index();
        let key = &self.values[..self.len];
        let hit = MEMO.with(|memo| {
            let memo = memo.borrow();
            let slot = memo.get(index)?;
            (slot.len == key.len() && slot.key[..slot.len] == *key).then(|| {
                let mut out = [0; N];
                out.copy_from_slice(&slot.value[..N]);
                out
            })
        });
        if let Some(value) = hit {
            return value;
        }
        let value = compute();
        MEMO.with(|memo| {
            if let Some(slot) = memo.borrow_mut().get_mut(index) {
                slot.len = key.len();
                slot.key[..key.len()].copy_from_slice(key);
                slot.value[..N].copy_from_slice(&value);
            }
        });
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_return_the_computed_value_and_keys_are_exact() {
        let a = Key::new(Kind::Ja4PartB).list([1, 2, 3]).get_or(|| [7u8; 12]);
        // The key lists the cipher values; the value is whatever the caller derives from them.
        assert_eq!(a, [7; 12]);
        let hit = Key::new(Kind::Ja4PartB).list([1, 2, 3]).get_or(|| -> [u8; 12] { panic!("must hit") });
        assert_eq!(hit, [7; 12]);
        // Same values split differently, or another kind, is another key.
        let split = Key::new(Kind::Ja4PartB).list([1, 2]).list([3]).get_or(|| [8u8; 12]);
        assert_eq!(split, [8; 12]);
        let other_kind = Key::new(Kind::Ja4PartC).list([1, 2, 3]).get_or(|| [9u8; 12]);
        assert_eq!(other_kind, [9; 12]);
    }

    #[test]
    fn oversized_keys_are_computed_every_time() {
        let mut calls = 0;
        for _ in 0..2 {
            Key::new(Kind::Ja3).list(0..1000).get_or(|| {
                calls += 1;
                [0u8; 32]
            });
        }
        assert_eq!(calls, 2);
    }
}
