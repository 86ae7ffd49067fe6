//! PROXY protocol header parser: any bytes, whole or in two pieces, never panic; a complete header
//! never claims more bytes than it was given, and splitting the input never changes the result.
#![no_main]

use helloguard::proxy::proxy_protocol::{parse, Parsed, MAX_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Ok(Parsed::Complete { consumed, .. }) = whole {
        assert!(consumed <= data.len() && consumed <= MAX_HEADER);
        // The same header with anything after it parses the same.
        assert_eq!(parse(&data[..consumed]), whole);
    }
    // A prefix of a valid header asks for more (or is already invalid), never a different header.
    if let Some(cut) = data.len().checked_sub(1) {
        if let Ok(Parsed::Complete { header, .. }) = parse(&data[..cut]) {
            assert!(matches!(whole, Ok(Parsed::Complete { header: h, .. }) if h == header));
        }
    }
});
