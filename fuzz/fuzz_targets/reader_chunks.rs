//! Arbitrary bytes, arbitrarily chunked, give exactly the one-shot result.
#![no_main]

use helloguard::hello::{HelloReader, Progress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, cuts) = input;
    let mut whole = HelloReader::new(4096);
    let one_shot = whole.feed(&data);

    let mut chunked = HelloReader::new(4096);
    let mut at = 0;
    let mut result = Ok(Progress::NeedMore);
    let mut sizes = cuts.iter().map(|&c| usize::from(c) + 1).chain(std::iter::repeat(usize::MAX));
    while at < data.len() {
        let end = at.saturating_add(sizes.next().unwrap_or(usize::MAX)).min(data.len());
        result = chunked.feed(&data[at..end]);
        match result {
            Ok(Progress::NeedMore) => at = end,
            Ok(Progress::Complete { consumed }) => {
                at += consumed;
                break;
            }
            Err(_) => break,
        }
    }
    match (&one_shot, &result) {
        (Ok(Progress::Complete { consumed }), Ok(Progress::Complete { .. })) => {
            assert_eq!(*consumed, at, "same end of the hello");
            assert_eq!(whole.message(), chunked.message());
        }
        (Ok(Progress::NeedMore), Ok(Progress::NeedMore)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("one-shot {a:?} but chunked {b:?}"),
    }
});
