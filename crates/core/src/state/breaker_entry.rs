//! [`BreakerEntry`]: one breaker in the state, with its SLA ledger and bookkeeping.

use serde::{Deserialize, Serialize};

use crate::sla::BreakerLedger;
use crate::{Breaker, FleetRetries};

/// One breaker with what the state keeps beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BreakerEntry {
    pub(super) breaker: Breaker,
    pub(super) ledger: BreakerLedger,
    pub(super) updated_index: u64,
    /// The breaker's entry in the deadline index: its `next_deadline_ms` when last indexed.
    /// Derived with the index, and rebuilt with it on load.
    #[serde(skip)]
    pub(super) indexed_deadline_ms: Option<u64>,
    /// The fleet retry figures last pushed to SDKs (by an effect), and when.
    pub(super) retries_pushed: FleetRetries,
    pub(super) retries_pushed_at_ms: u64,
    /// Set while a tick ingests deltas, cleared before apply returns.
    #[serde(skip)]
    pub(super) touched: bool,
    /// Set while a tick ingests deltas with retry figures, cleared before apply returns.
    #[serde(skip)]
    pub(super) touched_retries: bool,
}
