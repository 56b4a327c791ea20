//! Retries: exponential backoff with full jitter, bounded by a fleet retry budget.
//!
//! Why a budget and not only a maximum attempt count: "retry 3 times" multiplies load by
//! up to 4 exactly when the dependency is struggling, and every layer of a call graph
//! multiplies again (a retry storm). A budget caps retries at a fraction of recent
//! traffic (`retry_percent`, default 20 %), plus a small floor so a quiet service can
//! still retry (`min_retries_per_sec`). This is the design of tower's `retry::budget`
//! and of Finagle before it.
//!
//! Why a *fleet* budget: per-process budgets bound each process to `retry_percent` of its own
//! traffic, but the floor is multiplied by the fleet (a hundred quiet replicas with a floor of
//! 10 retries/s may send 1 000 retries/s at a dependency that gets almost no first attempts),
//! and a replica that happens to take the failing requests cannot use the budget its healthy
//! peers earn and never spend. So the fleet shares one budget per breaker:
//!
//! ```text
//!   fleet may retry   = floor · window + retry_percent · A − R      (the pool)
//!   this instance may = pool / n + retry_percent · a' − r'
//! ```
//!
//! where `A` and `R` are the fleet's first attempts and retries in the breaker's window and
//! `n` the instances retrying in it, as the cluster last pushed them (figures reported by
//! every SDK with its outcome deltas and summed in the replicated state), and `a'`, `r'` this
//! instance's own first attempts and retries the figures cannot include yet. Each instance
//! spends from its share of what is left, so the fleet as a whole stays within the pool plus
//! `retry_percent` of its new traffic, the floor is split across the fleet instead of being
//! multiplied by it, and an instance whose peers do not retry may use their share as the
//! figures come back. The cluster pushes the figures only when they drift (see
//! `switchyard_core::FleetRetries`); the own counts are what keep slightly old figures sound.
//!
//! **When the fleet budget applies.** Only for a retry through a breaker of a client in
//! [`crate::Mode::Cluster`] whose latest decision carries fleet figures with at least one
//! retrying instance. Otherwise (a stale or local-only client, a node that predates fleet
//! figures, a breaker without retry data yet, a [`RetryBudget`] used without a breaker) the
//! per-process budget decides, exactly as without a cluster, over the same window of this
//! process's deposits and withdrawals (which are always kept). No call waits for the cluster.
//! [`crate::Breaker::retry_budget_source`] and the `switchyard_sdk_retry_budget_source` metric
//! say which applies.
//!
//! Why full jitter: backoff without jitter makes every client that failed together retry
//! together. Full jitter draws the delay uniformly in `[0, min(cap, base · 2^attempt)]`.
//! The random source is a tiny splitmix64 generator seeded from the instance id, so the
//! SDK needs no `rand` dependency and a test can fix the seed.
//!
//! The budget's window is kept in time slots indexed by the agent's coarse clock, so
//! depositing and withdrawing never read the OS clock. A deposit is two relaxed increments
//! (the budget's slot and the breaker's stripe); a withdrawal reads a few atomics more, and
//! neither locks nor allocates.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use switchyard_core::hash;

use crate::Breaker;
use crate::clock::CoarseClock;
use crate::fleet_retry::FleetFigures;
use crate::mode::duration_ms;

/// Which budget decided a retry: the fleet's (through the cluster) or this process's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryBudgetSource {
    /// The fleet budget, from the cluster's figures for the breaker.
    Fleet = 0,
    /// The per-process budget.
    Local = 1,
}

impl RetryBudgetSource {
    /// Both sources, for metrics that export one series per source.
    pub const ALL: [RetryBudgetSource; 2] = [RetryBudgetSource::Fleet, RetryBudgetSource::Local];

    /// `fleet` or `local`, as in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryBudgetSource::Fleet => "fleet",
            RetryBudgetSource::Local => "local",
        }
    }
}

impl fmt::Display for RetryBudgetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small, lock-free pseudo-random generator (splitmix64). Not cryptographic.
#[derive(Debug)]
pub struct SmallRng {
    state: AtomicU64,
}

impl SmallRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from a string (e.g. the instance id), FNV-1a hashed.
    pub fn from_str_seed(s: &str) -> Self {
        Self::new(hash::fnv1a64(s.as_bytes()))
    }

    /// The next 64 random bits.
    pub fn next_u64(&self) -> u64 {
        hash::splitmix64(self.state.fetch_add(hash::SPLITMIX64_GAMMA, Relaxed))
    }

    /// A value uniform in `0..=max` (tiny modulo bias, irrelevant for jitter).
    pub fn below_or_eq(&self, max: u64) -> u64 {
        if max == u64::MAX {
            self.next_u64()
        } else {
            self.next_u64() % (max + 1)
        }
    }
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay cap before jitter for the first retry. Default 50 ms.
    pub base: Duration,
    /// Largest delay cap. Default 2 s.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            max: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The delay cap before retry number `retry` (0 for the first retry):
    /// `min(max, base · 2^retry)`.
    pub fn cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A delay drawn uniformly in `[0, cap(retry)]`.
    pub fn delay(&self, retry: u32, rng: &SmallRng) -> Duration {
        let cap_us = crate::latency::duration_us(self.cap(retry));
        Duration::from_micros(rng.below_or_eq(cap_us))
    }
}

/// Options of a [`RetryBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudgetOptions {
    /// How long a deposit counts. Default 10 s.
    pub ttl: Duration,
    /// Retries allowed per second regardless of traffic. Default 10.
    pub min_retries_per_sec: u32,
    /// Retries allowed as a percentage of calls in the window. Default 20.
    pub retry_percent: u32,
}

impl Default for RetryBudgetOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 10,
            retry_percent: 20,
        }
    }
}

/// Number of time slots the budget window is cut into.
const BUDGET_SLOTS: usize = 10;

#[derive(Debug, Default)]
struct BudgetSlot {
    /// The slot number (`now / slot_ms`) these counts belong to.
    epoch: AtomicU64,
    deposits: AtomicU64,
    withdrawals: AtomicU64,
}

/// A token budget for retries shared by many calls (see the module docs).
///
/// Every first attempt deposits; every retry must withdraw. Through a breaker
/// ([`deposit_for`](RetryBudget::deposit_for), [`try_withdraw_for`](RetryBudget::try_withdraw_for),
/// as [`crate::Guard`] does) the counts are reported to the cluster and the fleet budget
/// applies when it can; [`deposit`](RetryBudget::deposit) and
/// [`try_withdraw`](RetryBudget::try_withdraw) use the per-process budget alone. Concurrent
/// withdrawals may overshoot the budget by the number of racing threads; the bound is
/// approximate by design (no lock).
pub struct RetryBudget {
    options: RetryBudgetOptions,
    clock: CoarseClock,
    slot_ms: u64,
    slots: [BudgetSlot; BUDGET_SLOTS],
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("options", &self.options)
            .field("balance", &self.balance())
            .finish()
    }
}

impl RetryBudget {
    /// A budget whose window follows `clock` (use [`crate::Client::coarse_clock`]).
    pub fn new(options: RetryBudgetOptions, clock: CoarseClock) -> Self {
        let slot_ms = (duration_ms(options.ttl) / BUDGET_SLOTS as u64).max(1);
        Self {
            options,
            clock,
            slot_ms,
            slots: Default::default(),
        }
    }

    /// The options.
    pub fn options(&self) -> RetryBudgetOptions {
        self.options
    }

    fn current_slot(&self) -> &BudgetSlot {
        let epoch = self.clock.now_ms() / self.slot_ms + 1; // +1: epoch 0 means "never used"
        let slot = &self.slots[(epoch % BUDGET_SLOTS as u64) as usize];
        let seen = slot.epoch.load(Relaxed);
        if seen != epoch
            && seen < epoch
            && slot
                .epoch
                .compare_exchange(seen, epoch, Relaxed, Relaxed)
                .is_ok()
        {
            slot.deposits.store(0, Relaxed);
            slot.withdrawals.store(0, Relaxed);
        }
        slot
    }

    /// Counts one call (a first attempt).
    pub fn deposit(&self) {
        self.current_slot().deposits.fetch_add(1, Relaxed);
    }

    /// Retries the per-process budget still allows now.
    pub fn balance(&self) -> i64 {
        let now_epoch = self.clock.now_ms() / self.slot_ms + 1;
        let (mut deposits, mut withdrawals) = (0u64, 0u64);
        for slot in &self.slots {
            let epoch = slot.epoch.load(Relaxed);
            if epoch != 0 && epoch + BUDGET_SLOTS as u64 > now_epoch {
                deposits += slot.deposits.load(Relaxed);
                withdrawals += slot.withdrawals.load(Relaxed);
            }
        }
        let reserve = u64::from(self.options.min_retries_per_sec)
            .saturating_mul(duration_ms(self.options.ttl))
            / 1_000;
        let earned = deposits.saturating_mul(u64::from(self.options.retry_percent)) / 100;
        i64::try_from(reserve.saturating_add(earned)).unwrap_or(i64::MAX)
            - i64::try_from(withdrawals).unwrap_or(i64::MAX)
    }

    /// Takes one retry from the per-process budget; false when it is exhausted.
    pub fn try_withdraw(&self) -> bool {
        if self.balance() < 1 {
            return false;
        }
        self.current_slot().withdrawals.fetch_add(1, Relaxed);
        true
    }

    /// Counts one call (a first attempt) made through `breaker`: in this budget, and in the
    /// breaker's report to the cluster.
    #[inline]
    pub fn deposit_for(&self, breaker: &Breaker) {
        self.deposit();
        breaker.shared.count_first_attempt();
    }

    /// Retries still allowed now for a call through `breaker`, and which budget says so (see
    /// the module docs).
    pub fn balance_for(&self, breaker: &Breaker) -> (i64, RetryBudgetSource) {
        match breaker.shared.fleet.read() {
            Some(figures) => {
                let (first_attempts, retries) = breaker.shared.undrained_retry_counts();
                let own = (
                    figures.since_first_attempts.saturating_add(first_attempts),
                    figures.since_retries.saturating_add(retries),
                );
                (self.fleet_balance(&figures, own), RetryBudgetSource::Fleet)
            }
            None => (self.balance(), RetryBudgetSource::Local),
        }
    }

    /// Takes one retry for a call through `breaker` from the fleet budget or the per-process
    /// one (see the module docs); false when it is exhausted. An allowed retry is counted in
    /// both, so the per-process window stays right for a fall back.
    pub fn try_withdraw_for(&self, breaker: &Breaker) -> bool {
        let (balance, source) = self.balance_for(breaker);
        let allowed = balance >= 1;
        breaker.shared.fleet.count_verdict(source, allowed);
        if allowed {
            self.current_slot().withdrawals.fetch_add(1, Relaxed);
            breaker.shared.count_retry();
        }
        allowed
    }

    /// This instance's share of the fleet pool plus what its own unreported traffic earned:
    /// `pool / n + retry_percent · a' − r'`, computed in units of `1 / (100 n)` retries so the
    /// split loses nothing to rounding until the final floor division.
    fn fleet_balance(
        &self,
        figures: &FleetFigures,
        (own_attempts, own_retries): (u64, u64),
    ) -> i64 {
        let fleet = &figures.fleet;
        let percent = i128::from(self.options.retry_percent);
        let window_ms = if fleet.window_ms > 0 {
            fleet.window_ms
        } else {
            duration_ms(self.options.ttl)
        };
        let n = i128::from(fleet.instances.max(1));
        // floor · window, in hundredths: retries/s · ms / 1000 · 100.
        let reserve = i128::from(self.options.min_retries_per_sec) * i128::from(window_ms) / 10;
        let pool =
            reserve + percent * i128::from(fleet.first_attempts) - 100 * i128::from(fleet.retries);
        let own = percent * i128::from(own_attempts) - 100 * i128::from(own_retries);
        let scaled = pool + n * own;
        let balance = scaled.div_euclid(100 * n);
        i64::try_from(balance).unwrap_or(if balance > 0 { i64::MAX } else { i64::MIN })
    }
}

/// A retry policy for [`crate::Guard`]: attempts, backoff, budget.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Total attempts including the first (1 = no retry). Default 3; at most 10.
    pub attempts_max: u32,
    /// The backoff between attempts.
    pub backoff: Backoff,
    /// The budget every retry withdraws from.
    pub budget: Arc<RetryBudget>,
    /// Jitter source.
    pub rng: Arc<SmallRng>,
}

/// Upper bound on [`Retry::attempts_max`].
pub const RETRY_ATTEMPTS_MAX: u32 = 10;

impl Retry {
    /// Up to `attempts_max` attempts (capped at [`RETRY_ATTEMPTS_MAX`]), default backoff.
    pub fn new(attempts_max: u32, budget: Arc<RetryBudget>, rng: Arc<SmallRng>) -> Self {
        Self {
            attempts_max: attempts_max.clamp(1, RETRY_ATTEMPTS_MAX),
            backoff: Backoff::default(),
            budget,
            rng,
        }
    }

    /// Replaces the backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_exponential_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
        };
        assert_eq!(backoff.cap(0), Duration::from_millis(10));
        assert_eq!(backoff.cap(2), Duration::from_millis(40));
        assert_eq!(backoff.cap(10), Duration::from_millis(100));
        assert_eq!(backoff.cap(u32::MAX), Duration::from_millis(100));
        let rng = SmallRng::new(42);
        let mut distinct = std::collections::BTreeSet::new();
        for retry in 0..8 {
            for _ in 0..100 {
                let d = backoff.delay(retry, &rng);
                assert!(d <= backoff.cap(retry));
                distinct.insert(d);
            }
        }
        assert!(distinct.len() > 100, "delays are spread, not synchronized");
    }

    #[test]
    fn same_seed_same_delays() {
        let (a, b) = (
            SmallRng::from_str_seed("pod-1"),
            SmallRng::from_str_seed("pod-1"),
        );
        let c = SmallRng::from_str_seed("pod-2");
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], c.next_u64());
    }

    #[test]
    fn budget_allows_retry_percent_of_calls_then_refuses() {
        let clock = CoarseClock::new(0);
        let options = RetryBudgetOptions {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 0,
            retry_percent: 20,
        };
        let budget = RetryBudget::new(options, clock.clone());
        assert!(!budget.try_withdraw(), "no calls, no floor: no retry");
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(budget.try_withdraw());
        assert!(budget.try_withdraw());
        assert!(!budget.try_withdraw(), "20 % of 10 calls is 2 retries");
        // phase: the deposits age out of the window, and so do the withdrawals
        clock.advance_to(10_500);
        for _ in 0..5 {
            budget.deposit();
        }
        assert!(budget.try_withdraw(), "new window, 1 retry earned");
        assert!(!budget.try_withdraw());
    }

    #[test]
    fn budget_floor_allows_some_retries_without_traffic() {
        let options = RetryBudgetOptions {
            ttl: Duration::from_secs(1),
            min_retries_per_sec: 3,
            retry_percent: 0,
        };
        let budget = RetryBudget::new(options, CoarseClock::new(0));
        assert_eq!((0..10).filter(|_| budget.try_withdraw()).count(), 3);
    }
}
