//! The hello's cipher suite, extension type, supported group and signature algorithm lists
//! without GREASE, read once per hello: JA3 and every JA4 form are written, and memoised, from
//! these.

use smallvec::SmallVec;

use super::is_grease;
use crate::hello::ClientHello;

pub(crate) type Values = SmallVec<[u16; 48]>;

/// GREASE-free lists in wire order.
pub(crate) struct Lists {
    pub(crate) ciphers: Values,
    pub(crate) extensions: Values,
    /// Of the first supported_groups extension.
    pub(crate) groups: Values,
    /// Of the first signature_algorithms extension.
    pub(crate) signatures: Values,
}

impl Lists {
    pub(crate) fn of(hello: &ClientHello) -> Self {
        Self {
            ciphers: without_grease(hello.cipher_suites.iter()),
            extensions: without_grease(hello.extensions.kinds()),
            groups: without_grease(hello.supported_groups.iter().flat_map(|g| g.iter())),
            signatures: without_grease(hello.signature_algorithms.iter().flat_map(|l| l.iter())),
        }
    }
}

/// `values` without GREASE, pushed one by one: measured the cheapest of the forms tried
/// (`collect` of a filtered iterator, `collect` then `retain`) with `fingerprint_instructions`.
#[inline]
fn without_grease(values: impl Iterator<Item = u16>) -> Values {
    let mut kept = Values::new();
    for value in values {
        if !is_grease(value) {
            kept.push(value);
        }
    }
    kept
}
