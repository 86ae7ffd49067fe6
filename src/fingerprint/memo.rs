//! Per-thread memos keyed by the exact values a fingerprint is made of.
//!
//! Every hashed part (JA4's b and c, the JA3 and JA3N MD5s) is a pure function of a few lists of
//! u16 values. A proxy sees the same few client builds over and over, so the lists repeat: a memo
//! hit skips building the string and hashing it, which is most of a fingerprint's cost. Chrome's
//! per-connection extension shuffle does not defeat it for JA4, whose lists are sorted.
//!
//! The same holds for the whole set of forms ([`All`], raw strings included), which is what the
//! replay prints for every hello of a capture: it has a memo of its own, keyed by everything that
//! goes into any form (wire order included, so a client that shuffles its extensions misses it and
//! falls back on the hashed parts' memo). The proxy's `ja4` and `ja4_stable` have one too, keyed
//! by the extensions as a sorted set, so a shuffling client hits it on every connection: in the
//! proxy a hello arrives with the caches cold from the previous handshake, where one lookup costs
//! far less than the several the two values' parts take. JA3 (wire order) keeps a table of its
//! own, so the one-off entries of a shuffling client never evict the parts other clients reuse.
//!
//! A memo is direct-mapped and small (a fixed number of slots per thread, allocated once). A key
//! is stored whole and compared whole, so a hit is always the value the computation would give;
//! a collision only evicts. Keys longer than a slot are not memoised.

use std::cell::RefCell;
use std::thread::LocalKey;

use super::{All, Ja4Pair};

/// Slots of the hashed-parts memo.
const SLOTS: usize = 128;
/// Slots of the [`All`] memo: a capture holds few client builds, and each value owns strings.
const ALL_SLOTS: usize = 64;
/// Slots of the `ja4` + `ja4_stable` memo, and of the JA3/JA3N one.
const PAIR_SLOTS: usize = 64;
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
    /// Every form ([`All`]).
    All = 6,
    /// `ja4` and `ja4_stable` together ([`Ja4Pair`]), keyed by the sorted extension set.
    Ja4Pair = 7,
}

impl Kind {
    /// JA3 and JA3N keep the wire order (or a sort of it), so a shuffling client makes a new one
    /// per connection; they live in a table of their own.
    fn is_ja3(self) -> bool {
        matches!(self, Kind::Ja3 | Kind::Ja3n)
    }
}

#[derive(Clone)]
struct Slot<V> {
    /// 0 while the slot is empty: no key is that short (a key holds at least its kind).
    len: usize,
    key: [u16; MAX_KEY],
    value: V,
}

/// A direct-mapped table of `V`s.
struct Table<V>(Vec<Slot<V>>);

impl<V: Clone> Table<V> {
    /// `slots` empty slots, each holding `empty` until first filled.
    fn new(slots: usize, empty: V) -> Self {
        Table(vec![Slot { len: 0, key: [0; MAX_KEY], value: empty }; slots])
    }

    fn get(&self, index: usize, key: &[u16]) -> Option<&V> {
        let slot = self.0.get(index)?;
        (slot.len == key.len() && slot.key[..slot.len] == *key).then_some(&slot.value)
    }

    fn put(&mut self, index: usize, key: &[u16], value: V) {
        if let Some(slot) = self.0.get_mut(index) {
            slot.len = key.len();
            slot.key[..key.len()].copy_from_slice(key);
            slot.value = value;
        }
    }
}

thread_local! {
    static HASHES: RefCell<Table<[u8; 32]>> = RefCell::new(Table::new(SLOTS, [0; 32]));
    static FORMS: RefCell<Table<Option<All>>> = RefCell::new(Table::new(ALL_SLOTS, None));
    static JA3S: RefCell<Table<[u8; 32]>> = RefCell::new(Table::new(PAIR_SLOTS, [0; 32]));
    static PAIRS: RefCell<Table<Option<Ja4Pair>>> = RefCell::new(Table::new(PAIR_SLOTS, None));
}

/// A key under construction, on the stack.
pub(crate) struct Key {
    kind: Kind,
    values: [u16; MAX_KEY],
    len: usize,
    /// Set when the lists did not fit: the value is then computed, not memoised.
    overflow: bool,
}

impl Key {
    pub(crate) fn new(kind: Kind) -> Self {
        let mut key = Key { kind, values: [0; MAX_KEY], len: 1, overflow: false };
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

    /// Append one list given as a slice (the same key as [`Key::list`] of its values).
    pub(crate) fn slice(&mut self, values: &[u16]) -> &mut Self {
        let (Some(length), Ok(count)) = (self.values.get_mut(self.len), u16::try_from(values.len())) else {
            self.overflow = true;
            return self;
        };
        *length = count;
        match self.values.get_mut(self.len + 1..self.len + 1 + values.len()) {
            Some(slots) if !self.overflow => {
                slots.copy_from_slice(values);
                self.len += 1 + values.len();
            }
            _ => self.overflow = true,
        }
        self
    }

    fn slot_index(&self, slots: usize) -> usize {
        let mut h: u64 = 0;
        for &v in &self.values[..self.len] {
            h = (h.rotate_left(5) ^ u64::from(v)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        (h >> 32) as usize % slots
    }

    /// The memoised hashed part for this key, or `compute()`'s (then remembered).
    pub(crate) fn get_or<const N: usize>(&self, compute: impl FnOnce() -> [u8; N]) -> [u8; N] {
        if N > 32 {
            return compute();
        }
        let narrow = |stored: &[u8; 32]| {
            let mut out = [0; N];
            out.copy_from_slice(&stored[..N]);
            Some(out)
        };
        let widen = |value: &[u8; N]| {
            let mut stored = [0; 32];
            stored[..N].copy_from_slice(value);
            stored
        };
        if self.kind.is_ja3() {
            self.lookup(&JA3S, PAIR_SLOTS, narrow, compute, widen)
        } else {
            self.lookup(&HASHES, SLOTS, narrow, compute, widen)
        }
    }

    /// The memoised forms for this key, or `compute()`'s (then remembered).
    pub(crate) fn all_or(&self, compute: impl FnOnce() -> All) -> All {
        self.lookup(&FORMS, ALL_SLOTS, Option::clone, compute, |all| Some(all.clone()))
    }

    /// The memoised `ja4` + `ja4_stable` for this key, or `compute()`'s (then remembered).
    pub(crate) fn ja4_pair_or(&self, compute: impl FnOnce() -> Ja4Pair) -> Ja4Pair {
        self.lookup(&PAIRS, PAIR_SLOTS, |stored| *stored, compute, |pair| Some(*pair))
    }

    /// `read` the slot this key owns in `table` on a hit; otherwise `compute`, and `store` it there.
    fn lookup<V: Clone + 'static, R>(
        &self,
        table: &'static LocalKey<RefCell<Table<V>>>,
        slots: usize,
        read: impl FnOnce(&V) -> Option<R>,
        compute: impl FnOnce() -> R,
        store: impl FnOnce(&R) -> V,
    ) -> R {
        if self.overflow || self.len > MAX_KEY {
            return compute();
        }
        let index = self.slot_index(slots);
        let key = &self.values[..self.len];
        if let Some(value) = table.with(|t| t.borrow().get(index, key).and_then(read)) {
            return value;
        }
        let value = compute();
        table.with(|t| t.borrow_mut().put(index, key, store(&value)));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::AlpnMode;
    use crate::hello::{ClientHello, Transport};

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
    fn slices_and_lists_make_the_same_key() {
        let mut by_list = Key::new(Kind::Ja3);
        by_list.list([1, 2]).list([]).list([3]);
        let mut by_slice = Key::new(Kind::Ja3);
        by_slice.slice(&[1, 2]).slice(&[]).slice(&[3]);
        assert_eq!(by_list.values[..by_list.len], by_slice.values[..by_slice.len]);
        assert!(Key::new(Kind::Ja3).slice(&[0; MAX_KEY]).overflow);
    }

    #[test]
    fn forms_are_memoised_whole() {
        let records = include_bytes!("../../pcaps/hellos/curl.bin");
        let hello = ClientHello::parse(&records[5..], Transport::Tcp).unwrap();
        let forms = super::super::all(&hello, Transport::Tcp, AlpnMode::Spec);
        let key = || {
            let mut key = Key::new(Kind::All);
            key.list([1, 2, 3]);
            key
        };
        assert_eq!(key().all_or(|| forms.clone()), forms);
        assert_eq!(key().all_or(|| panic!("must hit")), forms);
    }

    #[test]
    fn ja4_pairs_are_memoised_whole_and_equal_the_computed_ones() {
        let records = include_bytes!("../../pcaps/hellos/curl.bin");
        let hello = ClientHello::parse(&records[5..], Transport::Tcp).unwrap();
        let binding = super::super::binding(&hello, Transport::Tcp, AlpnMode::Spec);
        // The per-form functions compute each value through the parts, not the pair memo.
        assert_eq!(binding.ja4, super::super::ja4(&hello, Transport::Tcp, AlpnMode::Spec));
        assert_eq!(binding.ja4_stable, super::super::ja4_stable(&hello, Transport::Tcp, AlpnMode::Spec));
        assert_eq!(binding.ja3, super::super::ja3(&hello));
        let input = crate::fingerprint::ja4::Ja4Input::new(&hello, Transport::Tcp, AlpnMode::Spec);
        let hit = input.pair_key().ja4_pair_or(|| panic!("must hit"));
        assert_eq!((hit.ja4, hit.ja4_stable), (binding.ja4, binding.ja4_stable));
    }

    #[test]
    fn ja3_entries_never_evict_ja4_parts() {
        let part = Key::new(Kind::Ja4PartC).list([5, 6]).get_or(|| [1u8; 12]);
        // Far more one-off JA3 keys (a shuffling client) than either table has slots.
        for n in 0..(4 * SLOTS as u16) {
            Key::new(Kind::Ja3).list([n, n + 1]).get_or(|| [2u8; 32]);
        }
        assert_eq!(Key::new(Kind::Ja4PartC).list([5, 6]).get_or(|| -> [u8; 12] { panic!("evicted") }), part);
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
