//! Back-pressure on fleet reports: the report interval the cluster asks SDKs for.
//!
//! Why ask instead of refuse: a refused report is evidence the fleet loses at the moment the
//! fleet is busiest. When ingest nears a limit the cluster answers every Report with
//! `report_interval_ms`, and SDKs report no more often than that while they keep aggregating
//! locally: the same calls arrive in fewer, larger reports, and load is shed by coarser
//! reports instead of failed RPCs.
//!
//! The load is the fill of the bounded buffers (`pending_deltas_max`): on the leader, the
//! deltas one tick takes; on a follower, the deltas one forward batch takes. Both are
//! observed once per tick (or forward period) rather than per report, so every reporter sees
//! the same advice whatever its phase within a tick. The advice is the tick interval times
//! 2^level:
//!
//! - over [`RAISE_AT`] of the limit the level rises by as many doublings as bring the fill back
//!   to it, at once (SDKs then need one advised interval to follow, so the level is not raised
//!   again within two advised intervals unless the fill passes [`URGENT_AT`]);
//! - under [`LOWER_BELOW`] for [`CALM_MS`] it falls one level (hysteresis: a level down at
//!   most doubles the load, which stays under [`RAISE_AT`]);
//! - between the two it holds.
//!
//! The node's CPU is a second load ([`pressure_fill`]): when the share of time its tasks waited
//! for a core (see [`crate::cpu_pressure`]) passes `limits.cpu_pressure_max_percent`, the same
//! rules widen the interval, by at most [`CPU_LEVEL_MAX`] doublings. Fewer, larger reports cost
//! the node less CPU for the same evidence. The cap is lower than the buffers' because the CPU
//! signal cannot tell what keeps the cores busy: a busy neighbour should not slow the fleet's
//! evidence past 16 ticks, enough to halve the reports of a fleet that reports every second
//! (with the default tick). The CPU starts pacing only on a node that takes at least
//! [`CPU_PACING_DELTAS_PER_S_MIN`]: under it, reports are too small a part of its work for
//! coarser ones to relieve its CPU, and pacing would only delay the fleet's evidence. Once
//! pacing, the pressure alone decides (the coarser reports take fewer deltas by design); it
//! lets go when the pressure falls under 40 % of the limit, as a buffer's fill does.
//!
//! Separately, an instance that uses more than half its `report_rate_per_instance_max` in a
//! second is asked to report at most at half that rate ([`rate_advice_ms`]).

use std::sync::Mutex;

/// Fill of a buffer (deltas taken / limit) over which the interval widens.
pub const RAISE_AT: f64 = 0.5;
/// Fill over which the level rises even right after a rise.
pub const URGENT_AT: f64 = 0.9;
/// Fill under which, held for [`CALM_MS`], the level falls by one.
pub const LOWER_BELOW: f64 = 0.2;
/// How long the fill must stay under [`LOWER_BELOW`] before the level falls by one.
pub const CALM_MS: u64 = 3_000;
/// The highest level: 2^6 = 64 tick intervals (6.4 s at the default 100 ms tick).
pub const LEVEL_MAX: u32 = 6;
/// The highest level CPU pressure alone asks for: 2^4 = 16 tick intervals (1.6 s at the
/// default tick), so it still reaches fleets that report every second.
pub const CPU_LEVEL_MAX: u32 = 4;

/// The pacing state of one buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacingState {
    /// Doublings of the tick interval asked for (0: no advice).
    pub level: u32,
    /// When the level last rose.
    pub raised_at_ms: u64,
    /// Since when the fill has been under [`LOWER_BELOW`].
    pub calm_since_ms: Option<u64>,
}

/// The next state after observing `fill` at `now_ms`, at most `level_max` (see the module
/// docs).
pub fn next_state(
    state: PacingState,
    fill: f64,
    now_ms: u64,
    tick_ms: u64,
    level_max: u32,
) -> PacingState {
    let mut next = state;
    if fill > RAISE_AT {
        next.calm_since_ms = None;
        let settled =
            now_ms.saturating_sub(state.raised_at_ms) >= 2 * advice_ms(state.level, tick_ms);
        if state.level == 0 || settled || fill >= URGENT_AT {
            let doublings = (fill / RAISE_AT).log2().ceil().max(1.0) as u32;
            next.level = (state.level + doublings).min(level_max);
            if next.level != state.level {
                next.raised_at_ms = now_ms;
            }
        }
    } else if fill < LOWER_BELOW {
        let since = *next.calm_since_ms.get_or_insert(now_ms);
        if state.level > 0 && now_ms.saturating_sub(since) >= CALM_MS {
            next.level = state.level - 1;
            next.calm_since_ms = Some(now_ms);
        }
    } else {
        next.calm_since_ms = None;
    }
    next
}

/// The interval asked for at `level`: 0 (no advice) at level 0.
pub fn advice_ms(level: u32, tick_ms: u64) -> u64 {
    if level == 0 {
        0
    } else {
        tick_ms << level.min(LEVEL_MAX)
    }
}

/// The CPU's load on the scale of a buffer's fill: `cpu_pressure_max_percent` maps to
/// [`RAISE_AT`], so a smoothed stall share over it widens the interval and one under 40 % of it
/// ([`LOWER_BELOW`] / [`RAISE_AT`]) for [`CALM_MS`] narrows it. 0 when the limit is 0 (off).
pub fn pressure_fill(share: f64, max_percent: u32) -> f64 {
    if max_percent == 0 {
        return 0.0;
    }
    share * 100.0 / f64::from(max_percent) * RAISE_AT
}

/// Deltas a second a node must take (into its ticks as leader, its forward batches as
/// follower) before its CPU pressure paces reports: 1 000 a tick at the default tick, about 2 %
/// of a core on the leader at the cost measured in docs/benchmarks.md (about 5 000 instructions
/// a delta), so under it pacing could not relieve the CPU.
pub const CPU_PACING_DELTAS_PER_S_MIN: f64 = 10_000.0;

/// The CPU's load on a buffer's scale for a node that took `deltas_per_s`, `pacing` already
/// or not: [`pressure_fill`], or 0 when not pacing yet under [`CPU_PACING_DELTAS_PER_S_MIN`].
pub fn cpu_fill(share: f64, max_percent: u32, deltas_per_s: f64, pacing: bool) -> f64 {
    if !pacing && deltas_per_s < CPU_PACING_DELTAS_PER_S_MIN {
        return 0.0;
    }
    pressure_fill(share, max_percent)
}

/// The interval asked of an instance that made `calls` Report calls this second, against a
/// limit of `rate_max` per second: none under half the limit, else the interval of half the
/// limit's rate.
pub fn rate_advice_ms(calls: u32, rate_max: u32) -> u64 {
    if rate_max == 0 || u64::from(calls) * 2 <= u64::from(rate_max) {
        0
    } else {
        2_000u64.div_ceil(u64::from(rate_max))
    }
}

/// The pacing of one node's buffer, observed once per tick or forward period.
#[derive(Debug)]
pub struct Pacing {
    state: Mutex<PacingState>,
    tick_ms: u64,
    level_max: u32,
}

impl Pacing {
    /// Pacing in steps of `tick_ms`.
    pub fn new(tick_ms: u64) -> Self {
        Self::capped(tick_ms, LEVEL_MAX)
    }

    /// Pacing in steps of `tick_ms` up to `level_max` (at most [`LEVEL_MAX`]).
    pub fn capped(tick_ms: u64, level_max: u32) -> Self {
        Self {
            state: Mutex::default(),
            tick_ms,
            level_max: level_max.min(LEVEL_MAX),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacingState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Observes `taken` deltas out of a buffer of `limit` at `now_ms`.
    pub fn observe(&self, taken: usize, limit: u32, now_ms: u64) {
        self.observe_fill(taken as f64 / f64::from(limit.max(1)), now_ms);
    }

    /// Observes a load of `fill` (on the scale of a buffer's fill) at `now_ms`.
    pub fn observe_fill(&self, fill: f64, now_ms: u64) {
        let mut state = self.lock();
        *state = next_state(*state, fill, now_ms, self.tick_ms, self.level_max);
    }

    /// Whether an interval is asked for now.
    pub fn is_pacing(&self) -> bool {
        self.lock().level > 0
    }

    /// The interval asked for now, ms (0: none).
    pub fn advice_ms(&self) -> u64 {
        advice_ms(self.lock().level, self.tick_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: u64 = 100;

    fn run(fills: &[(f64, u64)]) -> Vec<u32> {
        let mut state = PacingState::default();
        fills
            .iter()
            .map(|&(fill, at)| {
                state = next_state(state, fill, at, TICK, LEVEL_MAX);
                state.level
            })
            .collect()
    }

    #[test]
    fn below_half_the_limit_nothing_is_asked() {
        assert_eq!(run(&[(0.0, 0), (0.3, 100), (0.5, 200)]), vec![0, 0, 0]);
        assert_eq!(advice_ms(0, TICK), 0);
    }

    #[test]
    fn over_half_the_limit_the_interval_doubles_as_often_as_the_fill_needs() {
        // 0.6 of the limit: one doubling brings it to 0.3; 1.5 (a backlog over the limit): two
        // doublings bring it to 0.375, under half the limit.
        assert_eq!(run(&[(0.6, 0)]), vec![1]);
        assert_eq!(run(&[(1.5, 0)]), vec![2]);
        assert_eq!(advice_ms(1, TICK), 200);
        assert_eq!(advice_ms(2, TICK), 400);
    }

    #[test]
    fn a_rise_waits_two_advised_intervals_for_the_fleet_to_follow_unless_urgent() {
        // Level 1 (200 ms) at t=0; still 0.6 at 100 and 300 ms: not raised before 400 ms.
        assert_eq!(
            run(&[(0.6, 0), (0.6, 100), (0.6, 300), (0.6, 400)]),
            vec![1, 1, 1, 2]
        );
        // Urgent: 0.95 right after a rise raises again.
        assert_eq!(run(&[(0.6, 0), (0.95, 100)]), vec![1, 2]);
    }

    #[test]
    fn the_level_falls_one_step_per_calm_period_and_holds_in_between() {
        let mut fills = vec![(1.5, 0)];
        // Between the thresholds: held however long.
        fills.extend((1..=50).map(|i| (0.3, i * 100)));
        let levels = run(&fills);
        assert!(levels.iter().all(|l| *l == 2), "{levels:?}");
        // Calm: one level down after CALM_MS, the next after another CALM_MS.
        let mut state = PacingState {
            level: 2,
            raised_at_ms: 0,
            calm_since_ms: None,
        };
        let mut at = 10_000;
        state = next_state(state, 0.1, at, TICK, LEVEL_MAX);
        assert_eq!(state.level, 2);
        at += CALM_MS - 1;
        state = next_state(state, 0.1, at, TICK, LEVEL_MAX);
        assert_eq!(state.level, 2, "not before the calm period");
        at += 1;
        state = next_state(state, 0.1, at, TICK, LEVEL_MAX);
        assert_eq!(state.level, 1);
        state = next_state(state, 0.1, at + CALM_MS, TICK, LEVEL_MAX);
        assert_eq!(state.level, 0);
        // A busy observation in between restarts the calm period.
        let mut state = PacingState {
            level: 2,
            raised_at_ms: 0,
            calm_since_ms: None,
        };
        state = next_state(state, 0.1, 0, TICK, LEVEL_MAX);
        state = next_state(state, 0.3, CALM_MS / 2, TICK, LEVEL_MAX);
        state = next_state(state, 0.1, CALM_MS, TICK, LEVEL_MAX);
        assert_eq!(state.level, 2);
    }

    #[test]
    fn the_level_never_passes_its_maximum() {
        let fills: Vec<(f64, u64)> = (0..100).map(|i| (100.0, i * 100_000)).collect();
        assert_eq!(run(&fills).last(), Some(&LEVEL_MAX));
        assert_eq!(advice_ms(LEVEL_MAX, TICK), 6_400);
    }

    #[test]
    fn cpu_pressure_over_its_limit_widens_and_stops_at_its_own_maximum() {
        // 75 %: a smoothed share of 0.8 is over it, 0.7 holds, 0.29 (under 40 % of it) calms.
        assert!(pressure_fill(0.8, 75) > RAISE_AT);
        assert!(pressure_fill(0.7, 75) < RAISE_AT && pressure_fill(0.7, 75) > LOWER_BELOW);
        assert!(pressure_fill(0.29, 75) < LOWER_BELOW);
        assert_eq!(pressure_fill(1.0, 0), 0.0, "0 turns it off");
        // Only a node with enough reports to relieve counts its CPU.
        assert_eq!(cpu_fill(1.0, 75, 9_999.0, false), 0.0);
        assert_eq!(cpu_fill(1.0, 75, 10_000.0, false), pressure_fill(1.0, 75));
        // Once pacing, coarser reports take fewer deltas by design: the pressure decides.
        assert_eq!(cpu_fill(1.0, 75, 100.0, true), pressure_fill(1.0, 75));
        // Full pressure for a minute: four doublings and no more.
        let pacing = Pacing::capped(TICK, CPU_LEVEL_MAX);
        for i in 0..600 {
            pacing.observe_fill(pressure_fill(1.0, 75), i * 100);
        }
        assert_eq!(pacing.advice_ms(), 1_600);
        // A buffer's pacing goes on to its own maximum.
        let pacing = Pacing::new(TICK);
        for i in 0..600 {
            pacing.observe_fill(pressure_fill(1.0, 75), i * 100);
        }
        assert_eq!(pacing.advice_ms(), 6_400);
    }

    #[test]
    fn an_instance_over_half_its_rate_is_asked_for_half_the_rate() {
        assert_eq!(rate_advice_ms(50, 100), 0);
        assert_eq!(rate_advice_ms(51, 100), 20);
        assert_eq!(rate_advice_ms(4, 3), 667);
        assert_eq!(rate_advice_ms(1, 0), 0);
    }
}
