//! The reader and the parser make no heap allocation (a counting global allocator watches), and
//! neither do the per-connection fingerprints of ordinary hellos.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, HelloReader, Transport};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds GlobalAlloc's contract;
// the only addition is a counter. (The library itself forbids unsafe code; this is a test binary.)
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn reader_parser_and_binding_do_not_allocate() {
    let Some(dir) = vectors() else { return };
    let rows = jsonl(&dir.join("clienthellos.jsonl"));
    // The counter itself works: one allocation is seen as one.
    assert_eq!(allocations_in(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(64)))), 1);
    let mut reader = HelloReader::with_buffer(16384, Vec::with_capacity(16384));
    let mut checked = 0;
    for row in rows.iter().filter(|r| r["transport"] == "tcp") {
        let message = hex::decode(row["handshake_hex"].as_str().unwrap()).unwrap();
        let stream = records(&message, 700);
        reader.reset();
        let count = allocations_in(|| {
            for chunk in stream.chunks(300) {
                reader.feed(chunk).unwrap();
            }
            let hello = ClientHello::parse(reader.message().unwrap(), Transport::Tcp).unwrap();
            std::hint::black_box(hello.extensions.iter().count());
        });
        assert_eq!(count, 0, "reader + parse allocated for {}", row["seen_in"]);
        let hello = ClientHello::parse(&message, Transport::Tcp).unwrap();
        let ordinary = hello.cipher_suites.len() <= 48 && hello.extensions.iter().count() <= 48;
        if ordinary {
            // The first call on a thread allocates that thread's memo, once.
            fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec);
            let count = allocations_in(|| {
                std::hint::black_box(fingerprint::binding(&hello, Transport::Tcp, AlpnMode::Spec));
            });
            assert_eq!(count, 0, "binding fingerprints allocated for {}", row["seen_in"]);
        }
        checked += 1;
    }
    assert!(checked > 80);
}
