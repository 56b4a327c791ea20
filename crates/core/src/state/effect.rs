//! What an apply changed: [`Applied`] and its [`Effect`]s, pushed to watchers and returned
//! to the proposer.

use serde::{Deserialize, Serialize};

use crate::{BreakerKey, BreakerState, InstanceId, PolicyTarget, Scope, Tier};

/// What an applied command changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The changes, in the order they happened.
    pub effects: Vec<Effect>,
}

/// One observable change, pushed to watchers and returned to the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// A breaker's effective state changed.
    BreakerChanged {
        /// The breaker.
        key: BreakerKey,
        /// Before.
        from: BreakerState,
        /// After.
        to: BreakerState,
        /// Why.
        reason: String,
    },
    /// A scope's tier changed.
    TierChanged {
        /// The scope.
        scope: Scope,
        /// Before.
        from: Tier,
        /// After.
        to: Tier,
        /// Why.
        reason: String,
    },
    /// A probe permit was granted.
    ProbeGranted {
        /// The breaker.
        key: BreakerKey,
        /// The instance holding it.
        instance: InstanceId,
        /// The permit id to return with `ReleaseProbe`.
        permit_id: u64,
        /// When the lease expires.
        expires_at_ms: u64,
    },
    /// A probe permit was refused (not an error: the breaker is not HALF_OPEN or full).
    ProbeDenied {
        /// The breaker.
        key: BreakerKey,
        /// The asking instance.
        instance: InstanceId,
        /// Why.
        reason: String,
    },
    /// A policy was put or deleted.
    PolicyChanged {
        /// Its subject.
        target: PolicyTarget,
    },
    /// A scope's tier rules were put or deleted.
    TierRulesChanged {
        /// The scope.
        scope: Scope,
    },
    /// A breaker was created (first report, or an override on a new key).
    BreakerCreated {
        /// The breaker.
        key: BreakerKey,
    },
    /// A breaker's fleet retry figures moved enough to be pushed to SDKs (see
    /// [`crate::FleetRetries::worth_pushing`]); its state did not change.
    FleetRetriesChanged {
        /// The breaker.
        key: BreakerKey,
    },
    /// The cluster settings changed.
    SettingsChanged,
}
