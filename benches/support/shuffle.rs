//! Captured ClientHellos (one TLS record each) with their extensions put in another order, as
//! Chrome and rustls clients do on every connection: the same client build, another JA3.

/// `records` with its extensions in the order `seed` picks (a Fisher-Yates shuffle driven by a
/// linear congruential generator; lengths are unchanged).
pub fn shuffle_extensions(records: &[u8], seed: u64) -> Vec<u8> {
    // record header 5 + handshake header 4 + version 2 + random 32, then the session id, the
    // cipher suites and the compression methods, each behind its length.
    let mut at = 43;
    at += 1 + usize::from(records[at]);
    at += 2 + usize::from(u16::from_be_bytes([records[at], records[at + 1]]));
    at += 1 + usize::from(records[at]);
    let start = at + 2;
    let end = start + usize::from(u16::from_be_bytes([records[at], records[at + 1]]));
    let mut extensions = Vec::new();
    let mut next = start;
    while next < end {
        let len = 4 + usize::from(u16::from_be_bytes([records[next + 2], records[next + 3]]));
        extensions.push(&records[next..next + len]);
        next += len;
    }
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    for i in (1..extensions.len()).rev() {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((state >> 33) % (i as u64 + 1)).expect("small");
        extensions.swap(i, j);
    }
    let mut out = records[..start].to_vec();
    out.extend(extensions.concat());
    out.extend_from_slice(&records[end..]);
    out
}
