//! Fingerprints of a [`ClientHello`]: JA3, JA3N, the JA4 family and `ja4_stable`.
//!
//! The normative rules are `../shared/FINGERPRINTS.md`. The hashed forms are fixed-size ASCII
//! values computed without building their strings ([`Md5Hex`], [`Ja4`]); the raw strings are
//! built only when asked ([`All`], or the `*_full`/`*_r` functions). [`binding`] is what the proxy
//! computes once per connection; [`all`] is what the replay and the CLI print.
//!
//! `ja4_stable` is JA4 without padding, session_ticket, pre_shared_key and early_data: the key
//! helloguard binds sessions to. It is not a public JA4 and always travels under its own name.
//! [`Binding::ja4_stable_v1`] is the value the earlier rule (which kept session_ticket) gave the
//! same client, so bindings stored under it are still recognised (CONTRACT §3).

mod ja3;
mod ja4;
mod lists;
mod memo;
mod report;
mod sink;

pub use report::{report, InputError, Report};

use std::fmt;

pub use crate::hello::is_grease;
use crate::hello::{ClientHello, Transport};
use ja4::{Ja4Input, Variant};
use lists::Lists;

/// How the ALPN characters of JA4 part a are formed (FINGERPRINTS.md §3.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlpnMode {
    /// The written JA4 spec: hex digits of the first and last byte when they are not alphanumeric.
    #[default]
    Spec,
    /// FoxIO's tools: `99` when the first or last byte is non-ASCII.
    Compat,
}

macro_rules! ascii_value {
    ($(#[$doc:meta])* $name:ident, $len:literal) => {
        $(#[$doc])*
        ///
        /// Checked as text once, when built, so that reading it as `&str` (for every header, audit
        /// line and comparison of every request on the connection) costs nothing.
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(arrayvec::ArrayString<$len>);

        impl $name {
            /// Always ASCII here: hex digits, decimal digits, `_` and ALPN code characters.
            fn from_ascii(bytes: &[u8; $len]) -> Self {
                Self(arrayvec::ArrayString::from_byte_string(bytes).unwrap_or_default())
            }

            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

ascii_value!(
    /// An MD5 as 32 lowercase hex characters (JA3, JA3N).
    Md5Hex,
    32
);
ascii_value!(
    /// A hashed JA4-shaped value `a_b_c` (36 characters): `ja4`, `ja4_o`, `ja4_stable`.
    Ja4,
    36
);

/// What the proxy binds on and forwards, computed once per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub ja3: Md5Hex,
    pub ja4: Ja4,
    pub ja4_stable: Ja4,
    /// `ja4_stable` under the earlier rule, session_ticket counted as offered (see
    /// [`ja4_stable_v1_with_ticket`]); only ever compared, never forwarded or stored.
    pub ja4_stable_v1: Ja4,
}

/// `ja4`, `ja4_stable` and the earlier rule's value, which the proxy memoises together (they
/// share their inputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ja4Pair {
    ja4: Ja4,
    ja4_stable: Ja4,
    ja4_stable_v1: Ja4,
}

/// Every form, as printed by `helloguard fingerprint` and `helloguard replay`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct All {
    pub ja3: Md5Hex,
    pub ja3_full: String,
    pub ja3n: Md5Hex,
    pub ja4: Ja4,
    pub ja4_r: String,
    pub ja4_o: Ja4,
    pub ja4_ro: String,
    pub ja4_stable: Ja4,
}

/// JA3: MD5 of the JA3 string.
pub fn ja3(hello: &ClientHello) -> Md5Hex {
    ja3::hash(hello, &Lists::of(hello), ja3::Order::Wire)
}

/// The JA3 string.
pub fn ja3_full(hello: &ClientHello) -> String {
    ja3::text(hello, &Lists::of(hello), ja3::Order::Wire)
}

/// JA3N: MD5 of the JA3 string with the extensions sorted numerically.
pub fn ja3n(hello: &ClientHello) -> Md5Hex {
    ja3::hash(hello, &Lists::of(hello), ja3::Order::Sorted)
}

/// The JA3N string.
pub fn ja3n_full(hello: &ClientHello) -> String {
    ja3::text(hello, &Lists::of(hello), ja3::Order::Sorted)
}

/// JA4 (sorted, hashed).
pub fn ja4(hello: &ClientHello, transport: Transport, alpn: AlpnMode) -> Ja4 {
    let input = Ja4Input::new(hello, transport, alpn);
    sorted_hashed(&input, Variant::Public)
}

/// `ja4_stable`: JA4 without padding, session_ticket, pre_shared_key and early_data
/// (FINGERPRINTS.md §5).
pub fn ja4_stable(hello: &ClientHello, transport: Transport, alpn: AlpnMode) -> Ja4 {
    let input = Ja4Input::new(hello, transport, alpn);
    sorted_hashed(&input, Variant::Stable)
}

/// The earlier `ja4_stable` rule (`ja4_stable_v1`, which kept session_ticket 0x0023) applied to
/// this hello with session_ticket counted as offered: for a hello that has it, its
/// `ja4_stable_v1`; for one without (NSS drops it when it resumes), the `ja4_stable_v1` it would
/// have with it. A binding stored under the earlier rule equals this value exactly when CONTRACT
/// §3 upgrades it.
pub fn ja4_stable_v1_with_ticket(hello: &ClientHello, transport: Transport, alpn: AlpnMode) -> Ja4 {
    let input = Ja4Input::new(hello, transport, alpn);
    sorted_hashed(&input, Variant::StableV1WithTicket)
}

/// JA4_o (wire order, hashed).
pub fn ja4_o(hello: &ClientHello, transport: Transport, alpn: AlpnMode) -> Ja4 {
    let input = Ja4Input::new(hello, transport, alpn);
    let lists = input.lists();
    input.hashed(input.part_a(Variant::Public), &lists.ciphers, &lists.extensions)
}

/// JA4_r (sorted, raw).
pub fn ja4_r(hello: &ClientHello, transport: Transport, alpn: AlpnMode) -> String {
    let input = Ja4Input::new(hello, transport, alpn);
    input.raw(input.part_a(Variant::Public), &input.sorted_ciphers(), &input.sorted_extensions(Variant::Public))
}

/// JA4_ro (wire order, raw).
pub fn ja4_ro(hello: &ClientHello, transport: Transport, alpn: AlpnMode) -> String {
    let input = Ja4Input::new(hello, transport, alpn);
    let lists = input.lists();
    input.raw(input.part_a(Variant::Public), &lists.ciphers, &lists.extensions)
}

fn sorted_hashed(input: &Ja4Input, variant: Variant) -> Ja4 {
    let c = input.hash_c(&input.sorted_extensions(variant));
    ja4::assemble(input.part_a(variant), input.hash_sorted_b(), c)
}

/// The per-connection set: `ja3`, `ja4`, `ja4_stable`. The two JA4s are memoised together on
/// their inputs with the extensions as a set, which a client that shuffles its extensions
/// repeats; JA3 depends on the wire order and has its own memo.
pub fn binding(hello: &ClientHello, transport: Transport, alpn: AlpnMode) -> Binding {
    let input = Ja4Input::new(hello, transport, alpn);
    let pair = input.pair_key().ja4_pair_or(|| ja4_pair(&input));
    let ja3 = ja3::hash(hello, input.lists(), ja3::Order::Wire);
    Binding { ja3, ja4: pair.ja4, ja4_stable: pair.ja4_stable, ja4_stable_v1: pair.ja4_stable_v1 }
}

/// `ja4` and `ja4_stable`, sharing part b, and part c too when the hello has none of the
/// extensions `ja4_stable` leaves out.
fn ja4_pair(input: &Ja4Input) -> Ja4Pair {
    let b = input.hash_sorted_b();
    let public = input.sorted_extensions(Variant::Public);
    let ja4 = ja4::assemble(input.part_a(Variant::Public), b, input.hash_c(&public));
    let stable_extensions = input.sorted_extensions(Variant::Stable);
    let ja4_stable = if stable_extensions.len() == public.len() {
        ja4
    } else {
        ja4::assemble(input.part_a(Variant::Stable), b, input.hash_c(&stable_extensions))
    };
    let v1_extensions = input.sorted_extensions(Variant::StableV1WithTicket);
    let ja4_stable_v1 = ja4::assemble(input.part_a(Variant::StableV1WithTicket), b, input.hash_c(&v1_extensions));
    Ja4Pair { ja4, ja4_stable, ja4_stable_v1 }
}

/// Every form, from one reading of the hello's lists (as `ja4_r`, `ja4_o`, … would give them).
/// Memoised per thread on everything the forms are made of: a repeat client build costs a
/// lookup and a copy of the strings.
pub fn all(hello: &ClientHello, transport: Transport, alpn: AlpnMode) -> All {
    let input = Ja4Input::new(hello, transport, alpn);
    input.all_key().all_or(|| all_of(hello, &input))
}

fn all_of(hello: &ClientHello, input: &Ja4Input) -> All {
    let pair = ja4_pair(input);
    let a = input.part_a(Variant::Public);
    let lists = input.lists();
    let (wire_ciphers, wire_extensions) = (&lists.ciphers, &lists.extensions);
    All {
        ja3: ja3::hash(hello, lists, ja3::Order::Wire),
        ja3_full: ja3::text(hello, lists, ja3::Order::Wire),
        ja3n: ja3::hash(hello, lists, ja3::Order::Sorted),
        ja4: pair.ja4,
        ja4_r: input.raw(a, &input.sorted_ciphers(), &input.sorted_extensions(Variant::Public)),
        ja4_o: input.hashed(a, wire_ciphers, wire_extensions),
        ja4_ro: input.raw(a, wire_ciphers, wire_extensions),
        ja4_stable: pair.ja4_stable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values_are_exactly_sixteen() {
        let grease: Vec<u16> = (0..=u16::MAX).filter(|&v| is_grease(v)).collect();
        assert_eq!(grease.len(), 16);
        assert_eq!(grease.first(), Some(&0x0a0a));
        assert_eq!(grease.last(), Some(&0xfafa));
    }

    #[test]
    fn memoised_forms_are_the_computed_ones() {
        let hellos: [&[u8]; 2] =
            [include_bytes!("../../pcaps/hellos/curl.bin"), include_bytes!("../../pcaps/hellos/chromium.bin")];
        // The second round finds every key in the memo: a key missing an input (the transport
        // letter, say) would hand one hello's forms to another.
        for _round in 0..2 {
            for records in hellos {
                for transport in [Transport::Tcp, Transport::Quic] {
                    let hello = ClientHello::parse(&records[5..], transport).unwrap();
                    for alpn in [AlpnMode::Spec, AlpnMode::Compat] {
                        let computed = all_of(&hello, &Ja4Input::new(&hello, transport, alpn));
                        assert_eq!(all(&hello, transport, alpn), computed);
                    }
                }
            }
        }
    }

    #[test]
    fn alpn_codes_follow_the_spec_table() {
        // FINGERPRINTS.md §3.3 table.
        let table: [(&[u8], &str); 12] = [
            (b"\xab", "ab"),
            (b"\x20", "20"),
            (b"\xab\xcd", "ad"),
            (b"\x20\x61", "21"),
            (b"\x30\xab", "3b"),
            (b"\x61\x20", "60"),
            (b"\x30\x31\xab\xcd", "3d"),
            (b"\x30\xab\xcd\x31", "01"),
            (b"h", "hh"),
            (b"h2", "h2"),
            (b"http/1.1", "h1"),
            (b"", "00"),
        ];
        for (value, code) in table {
            assert_eq!(ja4::alpn_code(Some(value), AlpnMode::Spec), code.as_bytes(), "{value:?}");
        }
        assert_eq!(&ja4::alpn_code(None, AlpnMode::Spec), b"00");
        assert_eq!(&ja4::alpn_code(Some(b"\xba\xad"), AlpnMode::Compat), b"99");
        assert_eq!(&ja4::alpn_code(Some(b"\x20\x61"), AlpnMode::Compat), b"21");
    }
}
