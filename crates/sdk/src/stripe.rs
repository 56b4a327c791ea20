//! Striped counters: per-thread slots so concurrent callers do not share a cache line.
//!
//! Why stripes: a single `AtomicU64` incremented by two cores moves its cache line
//! back and forth on every call (50–100 ns per increment under contention, versus
//! ~5 ns uncontended). Each breaker therefore keeps a small power-of-two array of
//! cache-line-padded slots; a thread picks its slot from a per-thread number assigned
//! once, on its first call, from a global counter. Two threads on one breaker land on
//! different slots and never contend. The agent sums (swaps) all slots every report
//! interval, which is rare and off the hot path.
//!
//! Threads beyond the stripe count share slots; that is still correct (the slots are
//! atomics), only slower.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

/// Upper bound on stripes per breaker (more than this buys nothing on common machines
/// and costs memory per breaker).
pub const STRIPES_MAX: usize = 16;

/// Aligns `T` to 128 bytes: two 64-byte lines, because Intel's adjacent-line
/// prefetcher pulls lines in pairs and would otherwise re-introduce false sharing.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CachePadded<T>(pub T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

static NEXT_THREAD_NUMBER: AtomicU32 = AtomicU32::new(0);

thread_local! {
    // `const` init without a destructor: access compiles to a TLS offset read,
    // with no lazy-init registration and no allocation.
    static THREAD_NUMBER: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// This thread's stripe number (not yet masked to a stripe count). Assigned on the
/// first call in each thread; every later call is one thread-local read.
#[inline]
pub fn thread_number() -> u32 {
    THREAD_NUMBER.with(|n| {
        let v = n.get();
        if v != u32::MAX {
            return v;
        }
        let assigned = NEXT_THREAD_NUMBER.fetch_add(1, Ordering::Relaxed) & (u32::MAX >> 1);
        n.set(assigned);
        assigned
    })
}

/// The stripe count to use on this machine: the available parallelism rounded up to
/// a power of two, at most [`STRIPES_MAX`].
pub fn default_stripes() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .next_power_of_two()
        .clamp(1, STRIPES_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_number_is_stable_within_a_thread_and_differs_across_threads() {
        let here = thread_number();
        assert_eq!(here, thread_number());
        let there = std::thread::spawn(thread_number).join().expect("thread");
        assert_ne!(here, there);
    }

    #[test]
    fn padding_is_two_cache_lines() {
        assert_eq!(std::mem::align_of::<CachePadded<u8>>(), 128);
        assert!(default_stripes().is_power_of_two());
        assert!(default_stripes() <= STRIPES_MAX);
    }
}
