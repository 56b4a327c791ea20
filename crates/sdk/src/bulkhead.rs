//! A concurrency bulkhead: at most `limit` calls in flight; the next one is refused at once.
//!
//! Why reject instead of queue: a queue in front of a slow dependency only converts its
//! slowness into the caller's latency and memory. A bulkhead keeps a slow dependency from
//! holding every worker of the service; the refusal is immediate and says so
//! ([`BulkheadFull`], or `RejectReason::Bulkhead` through [`crate::Guard`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The bulkhead was full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead `{name}` is full: {limit} calls already in flight")]
pub struct BulkheadFull {
    /// The bulkhead's name.
    pub name: Arc<str>,
    /// Its limit.
    pub limit: u32,
}

#[derive(Debug)]
struct Inner {
    name: Arc<str>,
    limit: u32,
    in_flight: AtomicU32,
    rejected: AtomicU64,
}

/// A concurrency limit shared by its clones.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

/// One admitted call; frees its slot when dropped.
#[derive(Debug)]
#[must_use = "the slot is freed when the permit is dropped"]
pub struct BulkheadPermit {
    inner: Arc<Inner>,
}

impl Drop for BulkheadPermit {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::Release);
    }
}

impl Bulkhead {
    /// A bulkhead named `name` admitting at most `limit` concurrent calls (at least 1).
    pub fn new(name: &str, limit: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: Arc::from(name),
                limit: limit.max(1),
                in_flight: AtomicU32::new(0),
                rejected: AtomicU64::new(0),
            }),
        }
    }

    /// Takes a slot, or fails at once when `limit` calls are in flight.
    pub fn try_acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        let inner = &self.inner;
        let admitted = inner
            .in_flight
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n < inner.limit).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            Ok(BulkheadPermit {
                inner: Arc::clone(inner),
            })
        } else {
            inner.rejected.fetch_add(1, Ordering::Relaxed);
            Err(BulkheadFull {
                name: Arc::clone(&inner.name),
                limit: inner.limit,
            })
        }
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u32 {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> u32 {
        self.inner.limit
    }

    /// Calls refused so far.
    pub fn rejected_total(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_bulkhead_rejects_immediately_and_frees_on_drop() {
        let bulkhead = Bulkhead::new("ml-fraud", 2);
        let a = bulkhead.try_acquire().expect("1st");
        let b = bulkhead.try_acquire().expect("2nd");
        let full = bulkhead.try_acquire().expect_err("3rd is over the limit");
        assert_eq!(full.limit, 2);
        assert_eq!(
            full.to_string(),
            "bulkhead `ml-fraud` is full: 2 calls already in flight"
        );
        assert_eq!(bulkhead.in_flight(), 2);
        assert_eq!(bulkhead.rejected_total(), 1);
        drop(a);
        let c = bulkhead.try_acquire().expect("a slot was freed");
        drop((b, c));
        assert_eq!(bulkhead.in_flight(), 0);
    }
}
