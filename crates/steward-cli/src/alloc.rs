//! A global allocator that counts live heap bytes, so `steward bench host`
//! can report memory per idle service exactly rather than from RSS, which
//! moves in pages and keeps freed memory. Written by hand because it is a
//! dozen lines over the real allocator and the crates that do this are
//! unmaintained or pull in far more.
//!
//! The real allocator is mimalloc, not the system's: a worker allocates and
//! frees small objects per job on several threads (claimed rows, payloads,
//! outcomes, task state), where glibc's malloc showed as about a fifth of a
//! `perf` profile of `steward bench jobs`; with mimalloc the no-op
//! processing rate rose 5–22 % in three paired runs (docs/performance.md).
//! This is the binary's choice; a library user picks their own allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

// Named `System` so the forwarding below reads as it did over the system
// allocator; it is mimalloc.
use mimalloc::MiMalloc as System;
use std::sync::atomic::{AtomicUsize, Ordering};

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// mimalloc plus a live-bytes counter.
pub struct Counting;

/// Bytes currently allocated on the heap by this process.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

// SAFETY: every call is forwarded unchanged to mimalloc; the
// counter is only arithmetic on the sizes it was given.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}
