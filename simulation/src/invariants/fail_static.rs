//! Fail-static: a fleet cut off from every node keeps working on its own, on schedule, and
//! comes back when the cut heals.
//!
//! In a seed with a fleet cut (`Fault::IsolateFleet`, longer than the SDKs'
//! `fallback_after`, ending with the heal) three properties are judged:
//!
//! - **call latency**: no call waits on the cluster. Each instance measures, for every call
//!   it makes while cut off, the simulated time from the moment it meant to call to the
//!   moment its breaker decided; the longest must stay within [`CALL_WAIT_BOUND_MS`].
//! - **fail-static modes**: every instance goes [`Mode::Stale`] within `stale_after`, then
//!   [`Mode::LocalOnly`] within `fallback_after`, of the cut (plus [`MODE_SLACK_MS`] for the
//!   SDK's tick and the fleet's sampling), in that order. An instance an earlier fault had
//!   already cut off from its nodes may be further along when the cut begins; it is on
//!   schedule (see `InstanceView::note_mode`).
//! - **cluster return**: every instance is back in [`Mode::Cluster`] within
//!   [`CLUSTER_RETURN_BOUND_MS`] of the heal.
//!
//! [`Mode::Stale`]: switchyard_sdk::Mode::Stale
//! [`Mode::LocalOnly`]: switchyard_sdk::Mode::LocalOnly
//! [`Mode::Cluster`]: switchyard_sdk::Mode::Cluster

use crate::fleet::InstanceView;

use super::Violation;

/// The longest a call may wait for its admission while the fleet is cut off, ms.
pub const CALL_WAIT_BOUND_MS: u64 = 50;
/// Slack on each mode deadline, ms.
pub const MODE_SLACK_MS: u64 = 1_000;
/// After the cut heals, every instance must be in cluster mode within this bound, ms.
pub const CLUSTER_RETURN_BOUND_MS: u64 = 8_000;

/// The SDKs' fail-static timers, as the fleet configures them.
#[derive(Debug, Clone, Copy)]
pub struct ModeTimers {
    /// `stale_after`, ms.
    pub stale_after_ms: u64,
    /// `fallback_after`, ms.
    pub fallback_after_ms: u64,
}

/// Counts and the reports already made.
#[derive(Debug, Default)]
pub struct FailStatic {
    latency_reported: bool,
    calls_judged: u64,
    modes_judged: u64,
    returns_judged: u64,
}

impl FailStatic {
    /// Judges the calls made while cut off so far (each instance's longest wait).
    pub fn observe_calls(&mut self, views: &[InstanceView], out: &mut Vec<Violation>) {
        self.calls_judged = views.iter().map(|v| v.calls_while_cut).sum();
        if self.latency_reported {
            return;
        }
        for (i, v) in views.iter().enumerate() {
            let (waited_ms, at_ms) = v.longest_wait_while_cut;
            if waited_ms > CALL_WAIT_BOUND_MS {
                self.latency_reported = true;
                out.push(Violation::CallLatency {
                    instance: i as u64,
                    waited_ms,
                    bound_ms: CALL_WAIT_BOUND_MS,
                    at_ms,
                });
                return;
            }
        }
    }

    /// At the heal: every instance went stale, then local-only, on schedule after the cut
    /// began at `cut_at_ms`.
    pub fn modes_verdict(
        &mut self,
        views: &[InstanceView],
        cut_at_ms: u64,
        timers: ModeTimers,
        out: &mut Vec<Violation>,
    ) {
        let stale_by = cut_at_ms + timers.stale_after_ms + MODE_SLACK_MS;
        let local_by = cut_at_ms + timers.fallback_after_ms + MODE_SLACK_MS;
        for (i, v) in views.iter().enumerate() {
            self.modes_judged += 1;
            let what = match (v.stale_at_ms, v.local_only_at_ms) {
                (None, _) => Some(format!("never went stale (due by {stale_by} ms)")),
                (Some(s), _) if s > stale_by => {
                    Some(format!("went stale at {s} ms (due by {stale_by} ms)"))
                }
                (_, None) => Some(format!("never went local-only (due by {local_by} ms)")),
                (Some(s), Some(l)) if l < s => {
                    Some(format!("went local-only at {l} ms, before stale at {s} ms"))
                }
                (_, Some(l)) if l > local_by => {
                    Some(format!("went local-only at {l} ms (due by {local_by} ms)"))
                }
                _ => None,
            };
            if let Some(what) = what {
                out.push(Violation::FailStaticModes {
                    instance: i as u64,
                    what,
                });
                return;
            }
        }
    }

    /// [`CLUSTER_RETURN_BOUND_MS`] after the heal: every instance is back in cluster mode.
    pub fn return_verdict(&mut self, views: &[InstanceView], out: &mut Vec<Violation>) {
        self.returns_judged += views.len() as u64;
        let lagging: Vec<String> = views
            .iter()
            .enumerate()
            .filter(|(_, v)| v.back_in_cluster_at_ms.is_none())
            .map(|(i, v)| format!("app{i}: {:?}", v.mode))
            .take(5)
            .collect();
        if !lagging.is_empty() {
            out.push(Violation::ClusterReturn {
                bound_ms: CLUSTER_RETURN_BOUND_MS,
                lagging,
            });
        }
    }

    /// `(calls judged, instances judged for modes, instances judged for the return)`.
    pub fn evaluated(&self) -> (u64, u64, u64) {
        (self.calls_judged, self.modes_judged, self.returns_judged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Cut;
    use switchyard_sdk::Mode;

    const TIMERS: ModeTimers = ModeTimers {
        stale_after_ms: 2_500,
        fallback_after_ms: 5_000,
    };

    fn on_schedule() -> InstanceView {
        InstanceView {
            calls_while_cut: 40,
            longest_wait_while_cut: (0, 0),
            stale_at_ms: Some(3_400),
            local_only_at_ms: Some(5_900),
            back_in_cluster_at_ms: Some(9_000),
            ..InstanceView::default()
        }
    }

    #[test]
    fn a_fleet_that_degrades_on_schedule_and_returns_passes() {
        let mut check = FailStatic::default();
        let mut out = Vec::new();
        let fleet = [on_schedule(), on_schedule()];
        check.observe_calls(&fleet, &mut out);
        check.modes_verdict(&fleet, 1_000, TIMERS, &mut out);
        check.return_verdict(&fleet, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(check.evaluated(), (80, 2, 2));
    }

    #[test]
    fn a_call_that_waits_on_the_cluster_is_caught() {
        let mut check = FailStatic::default();
        let mut out = Vec::new();
        let mut slow = on_schedule();
        slow.longest_wait_while_cut = (1_200, 4_000);
        check.observe_calls(&[on_schedule(), slow], &mut out);
        assert!(
            matches!(
                &out[..],
                [Violation::CallLatency {
                    instance: 1,
                    waited_ms: 1_200,
                    ..
                }]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn an_instance_that_never_falls_back_is_caught() {
        let mut check = FailStatic::default();
        let mut out = Vec::new();
        let mut stuck = on_schedule();
        stuck.local_only_at_ms = None;
        check.modes_verdict(&[stuck], 1_000, TIMERS, &mut out);
        assert!(
            matches!(&out[..], [Violation::FailStaticModes { what, .. }] if what.contains("never went local-only")),
            "{out:?}"
        );
    }

    #[test]
    fn an_instance_already_cut_off_when_the_fleet_cut_begins_is_on_schedule() {
        // Seed 1738 of the soak: an earlier fault had cut this instance off from its nodes,
        // so it was local-only by the first sample of the fleet cut (at 1 000 ms).
        let mut early = InstanceView::default();
        early.note_mode(Cut::None, Mode::Stale, 950);
        early.note_mode(Cut::Since(1_000), Mode::LocalOnly, 1_000);
        early.note_mode(Cut::HealedAt(8_000), Mode::Cluster, 9_000);
        assert_eq!(
            (early.stale_at_ms, early.local_only_at_ms),
            (Some(1_000), Some(1_000))
        );
        let mut check = FailStatic::default();
        let mut out = Vec::new();
        check.modes_verdict(&[on_schedule(), early], 1_000, TIMERS, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn an_instance_that_skips_stale_during_the_cut_is_caught() {
        let mut skipper = InstanceView::default();
        skipper.note_mode(Cut::Since(1_000), Mode::Cluster, 1_000);
        skipper.note_mode(Cut::Since(1_000), Mode::LocalOnly, 1_050);
        assert_eq!(skipper.stale_at_ms, None);
        let mut check = FailStatic::default();
        let mut out = Vec::new();
        check.modes_verdict(&[skipper], 1_000, TIMERS, &mut out);
        assert!(
            matches!(&out[..], [Violation::FailStaticModes { what, .. }] if what.contains("never went stale")),
            "{out:?}"
        );
    }

    #[test]
    fn an_instance_left_out_of_cluster_mode_is_caught() {
        let mut check = FailStatic::default();
        let mut out = Vec::new();
        let mut out_of_it = on_schedule();
        out_of_it.back_in_cluster_at_ms = None;
        out_of_it.mode = Mode::LocalOnly;
        check.return_verdict(&[on_schedule(), out_of_it], &mut out);
        assert!(
            matches!(&out[..], [Violation::ClusterReturn { lagging, .. }] if lagging == &vec!["app1: LocalOnly".to_string()]),
            "{out:?}"
        );
    }
}
