//! Planted bugs and observation hooks for the deterministic simulation, and nothing else.
//!
//! The simulation proves each of its invariants by planting a bug the invariant must catch
//! (`switchyard-simulation --plant NAME`). Some of those bugs live in the real code (a store
//! that acknowledges before it flushes, an SDK that accepts an older decision): the code
//! asks [`planted`] at that one spot and misbehaves only when the simulation's thread has
//! planted exactly that bug. The simulation also observes every decision index an SDK
//! applies ([`observe_decision_index`]) rather than sampling them.
//!
//! Why thread-local, behind one process-wide flag: a simulated run is single-threaded (every
//! host of a turmoil run is polled on the thread that steps it), so a thread-local switch
//! reaches exactly the code of one run, and runs side by side in one process (`--jobs 2`,
//! parallel tests) never see each other's bugs. Production never sets the flag: each hook
//! costs one relaxed load of a static `false` and a predicted branch, at places that are off
//! the SDK's hot path (a log append, a vote, an apply, a watch event, a breaker's trip
//! judgement; never `allow()` or `record()`), and changes nothing.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// A bug the simulation can plant in the real code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Plant {
    /// The log store reports an append durable without flushing it.
    AckBeforeFlush = 0,
    /// The log store keeps the vote in memory only: a restart forgets it.
    VoteNotPersisted = 1,
    /// The state machine stamps applied entries with a time of its own.
    NondeterministicApply = 3,
    /// The SDK accepts a watch event older than the decisions it has.
    AcceptOlderIndex = 4,
    /// The SDK drops every watch event after the first.
    IgnoreWatch = 5,
    /// The SDK never falls back to its local breaker.
    NoFallback = 6,
    /// The SDK, once in local-only mode, stays there.
    StickyLocalOnly = 7,
    /// The fleet trip rule counts failures from any number of instances.
    TripIgnoresMinInstances = 8,
    /// The trip rule judges the freshest span and a cold window on their raw rates, without
    /// the confidence bound.
    TripWithoutConfidence = 9,
}

/// The observer of SDK decision indexes: `(instance, index before, index after)`.
pub type DecisionObserver = Box<dyn FnMut(&str, u64, u64)>;

static ANY: AtomicBool = AtomicBool::new(false);

thread_local! {
    static PLANTED: Cell<u32> = const { Cell::new(0) };
    static DECISION_OBSERVER: RefCell<Option<DecisionObserver>> =
        const { RefCell::new(None) };
}

/// Whether the simulation on this thread planted `bug`. Always false in production.
#[inline]
pub fn planted(bug: Plant) -> bool {
    ANY.load(Relaxed) && PLANTED.with(|p| p.get() & (1 << bug as u8) != 0)
}

/// Plants `bugs` (and only those) for the code running on this thread from now on.
pub fn set_planted(bugs: &[Plant]) {
    let mask = bugs.iter().fold(0u32, |m, b| m | 1 << *b as u8);
    if mask != 0 {
        ANY.store(true, Relaxed);
    }
    PLANTED.with(|p| p.set(mask));
}

/// Installs (or, with `None`, removes) this thread's observer of SDK decision indexes:
/// called with `(instance, index before, index after)` each time an SDK applies a watch event.
pub fn set_decision_observer(observer: Option<DecisionObserver>) {
    if observer.is_some() {
        ANY.store(true, Relaxed);
    }
    DECISION_OBSERVER.with(|o| *o.borrow_mut() = observer);
}

/// Reports that SDK `instance` moved its decision index from `from` to `to`.
#[inline]
pub fn observe_decision_index(instance: &str, from: u64, to: u64) {
    if ANY.load(Relaxed) {
        DECISION_OBSERVER.with(|o| {
            if let Ok(mut o) = o.try_borrow_mut()
                && let Some(f) = o.as_mut()
            {
                f(instance, from, to);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bug_is_planted_on_its_own_thread_only() {
        assert!(!planted(Plant::IgnoreWatch));
        set_planted(&[Plant::IgnoreWatch]);
        assert!(planted(Plant::IgnoreWatch));
        assert!(!planted(Plant::AckBeforeFlush));
        std::thread::spawn(|| assert!(!planted(Plant::IgnoreWatch)))
            .join()
            .expect("other thread");
        set_planted(&[]);
        assert!(!planted(Plant::IgnoreWatch));
    }

    #[test]
    fn the_observer_sees_every_reported_index() {
        let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
        let sink = std::rc::Rc::clone(&seen);
        set_decision_observer(Some(Box::new(move |i, a, b| {
            sink.borrow_mut().push((i.to_string(), a, b))
        })));
        observe_decision_index("app-1", 3, 2);
        set_decision_observer(None);
        observe_decision_index("app-1", 2, 4);
        assert_eq!(*seen.borrow(), vec![("app-1".to_string(), 3, 2)]);
    }
}
