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
            ciphers: hello.cipher_suites.iter().filter(|&c| !is_grease(c)).collect(),
            extensions: hello.extensions.kinds().filter(|&k| !is_grease(k)).collect(),
            groups: hello.supported_groups.iter().flat_map(|g| g.iter()).filter(|&g| !is_grease(g)).collect(),
            signatures: hello.signature_algorithms.iter().flat_map(|l| l.iter()).filter(|&s| !is_grease(s)).collect(),
        }
    }
}
