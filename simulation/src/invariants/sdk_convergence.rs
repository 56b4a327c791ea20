//! Liveness: after healing, within a bound, every SDK shows the cluster's decision.
//!
//! "Shows" means: the SDK is in [`Mode::Cluster`], its breaker's decision index is at least
//! the index of the cluster's last decision change for the breaker, and its admission is
//! what that decision implies (OPEN rejects, HALF_OPEN admits probes only, CLOSED defers
//! to the local breaker).

use switchyard_core::BreakerState;
use switchyard_sdk::{Admission, Mode};

use crate::fleet::InstanceView;

use super::Violation;

/// Whether (and when) the fleet converged after healing.
#[derive(Debug, Default)]
pub struct SdkConvergence {
    /// When every instance first agreed with the cluster, ms.
    pub reached_at_ms: Option<u64>,
    lagging: Vec<String>,
    evaluated: u64,
}

fn agrees(view: &InstanceView, state: BreakerState, updated_index: u64) -> bool {
    let admission_ok = match state {
        BreakerState::Open => view.admission == Admission::RejectClusterOpen,
        BreakerState::HalfOpen => view.admission == Admission::ClusterProbe,
        BreakerState::ForcedOpen => view.admission == Admission::RejectForcedOpen,
        _ => !matches!(
            view.admission,
            Admission::RejectClusterOpen | Admission::ClusterProbe | Admission::RejectForcedOpen
        ),
    };
    view.mode == Mode::Cluster && view.decision_index >= updated_index && admission_ok
}

impl SdkConvergence {
    /// Compares the fleet's `views` with the cluster's decision `(state, updated_index)`.
    pub fn observe(
        &mut self,
        views: &[InstanceView],
        cluster: Option<(BreakerState, u64)>,
        at_ms: u64,
    ) {
        if self.reached_at_ms.is_some() {
            return;
        }
        self.evaluated += 1;
        let Some((state, updated_index)) = cluster else {
            self.lagging = vec!["the cluster has no decision for the breaker".into()];
            return;
        };
        self.lagging = views
            .iter()
            .enumerate()
            .filter(|(_, v)| !agrees(v, state, updated_index))
            .map(|(i, v)| {
                format!(
                    "app{i}: {:?} index {} {:?} (cluster {state:?} at {updated_index})",
                    v.mode, v.decision_index, v.admission
                )
            })
            .collect();
        if self.lagging.is_empty() {
            self.reached_at_ms = Some(at_ms);
        }
    }

    /// At the end of the bound: the violation if the fleet never converged.
    pub fn verdict(&self, bound_ms: u64, out: &mut Vec<Violation>) {
        if self.reached_at_ms.is_none() {
            let mut lagging = self.lagging.clone();
            lagging.truncate(5);
            out.push(Violation::SdkConvergence { bound_ms, lagging });
        }
    }
}

impl SdkConvergence {
    /// Checks of the whole fleet against the cluster's decision.
    pub fn evaluated(&self) -> u64 {
        self.evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(mode: Mode, index: u64, admission: Admission) -> InstanceView {
        InstanceView {
            mode,
            decision_index: index,
            admission,
            ..InstanceView::default()
        }
    }

    #[test]
    fn a_fleet_showing_the_clusters_decision_passes() {
        let mut check = SdkConvergence::default();
        let fleet = [
            view(Mode::Cluster, 12, Admission::RejectClusterOpen),
            view(Mode::Cluster, 14, Admission::RejectClusterOpen),
        ];
        check.observe(&fleet, Some((BreakerState::Open, 12)), 500);
        let mut out = Vec::new();
        check.verdict(10_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(check.reached_at_ms, Some(500));
    }

    #[test]
    fn an_instance_behind_the_decision_is_caught() {
        let mut check = SdkConvergence::default();
        let fleet = [
            view(Mode::Cluster, 12, Admission::RejectClusterOpen),
            view(Mode::Cluster, 3, Admission::Allow),
        ];
        check.observe(&fleet, Some((BreakerState::Open, 12)), 500);
        let mut out = Vec::new();
        check.verdict(10_000, &mut out);
        assert!(
            matches!(&out[..], [Violation::SdkConvergence { lagging, .. }] if lagging.len() == 1 && lagging[0].starts_with("app1")),
            "{out:?}"
        );
        assert_eq!(check.evaluated(), 1);
    }
}
