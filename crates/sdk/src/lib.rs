//! The Switchyard SDK: guard calls to a dependency with a breaker whose state the whole
//! fleet shares, without ever waiting on the cluster.
//!
//! The hot path ([`Breaker::allow`], [`Breaker::record`]) is a few atomic operations on
//! local memory. A background agent flushes aggregated outcomes to the cluster, follows
//! its decisions over `Watch`, runs a local breaker with the same policy, and publishes
//! the effective decision to the hot path. When the cluster is unreachable the SDK is
//! fail-static ([`Mode`]): it keeps the last decisions, then falls back to the local
//! breakers alone.
//!
//! Modules, one main type each:
//!
//! - `client` — [`Client`], [`ClientBuilder`], [`ClientOptions`]: the entry point.
//! - `breaker` — [`Breaker`], [`Permit`], [`Rejected`]: the hot path.
//! - `breaker_shared` — the counters and probe pools a breaker shares with the agent
//!   (crate-internal).
//! - `decision` — [`decide`], [`Admission`], [`RejectReason`]: the decision rule.
//! - `mode` — [`Mode`], [`ModeTracker`]: Cluster → Stale → LocalOnly.
//! - `outcome` — [`Outcome`], [`Classifier`]: what counts as a failure (user closure).
//! - `guard` — [`Guard`]: breaker + timeout + retry + bulkhead around one call.
//! - `retry` — [`Retry`], [`RetryBudget`], [`Backoff`], [`SmallRng`]: retries under a fleet
//!   retry budget (the per-process budget when the cluster cannot say).
//! - `fleet_retry` — the fleet retry figures a breaker publishes to the budget (crate-internal).
//! - `bulkhead` — [`Bulkhead`]: a concurrency limit that rejects at once.
//! - `fallback` — [`Fallback`]: try A, then B, then C, skipping open breakers.
//! - `layer` — [`SwitchyardLayer`]: a tower `Layer`.
//! - `wrapped_call` — the one wrapped-call primitive (allow → time → classify → record)
//!   that `Breaker::call`, `Guard`, `Fallback` and the layer share (crate-internal).
//! - [`otel`] — OpenTelemetry spans around guarded calls (off by default, free when off).
//! - `metrics` — [`SdkMetrics`]: Prometheus metrics (`switchyard_sdk_*`).
//! - `report_queue` — [`ReportQueue`]: the bounded, drop-oldest report queue.
//! - `clock` — [`clock::Clock`], [`clock::CoarseClock`]: why the hot path never reads the OS clock,
//!   and the raw TSC timer of the wrapped-call paths.
//! - `stripe` — why counters are striped per thread (crate-internal).
//! - `latency` — the sketch's bucket index without a logarithm (crate-internal).
//! - `agent_state` / `agent` — the background agent: its pure state machine and its loops.
//! - `probe_ledger` — the probe permits the agent handed to the hot path (crate-internal).
//! - `wire` — wire ↔ domain conversions (crate-internal).
//! - `error` — [`Error`], [`CallError`].
//! - `bench` — the hot-path loops behind `switchyard bench sdk`: internal, behind the
//!   hidden `bench` feature the CLI turns on.

#![warn(missing_docs)]

mod agent;
mod agent_state;
#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench;
mod breaker;
mod breaker_shared;
mod bulkhead;
mod client;
pub mod clock;
mod credentials;
mod decision;
mod error;
mod fallback;
mod fleet_retry;
mod guard;
mod latency;
mod layer;
mod metrics;
mod mode;
pub mod otel;
mod outcome;
mod probe_ledger;
mod report_queue;
pub mod report_route;
mod retry;
mod stripe;
mod wrapped_call;

pub use agent_state::ScopeInfo;
pub use breaker::{Breaker, Permit, PermitKind, Rejected};
pub use bulkhead::{Bulkhead, BulkheadFull, BulkheadPermit};
pub use client::{Client, ClientBuilder, ClientOptions, ClientStats, ENDPOINTS_ENV, limits};
pub use credentials::{CLIENT_TOKEN_ENV, ClientTls};
pub use decision::{Admission, RejectReason, decide};
pub use error::{CallError, Error};
pub use fallback::{Attempt, AttemptOutcome, Decided, FALLBACK_STEPS_MAX, Fallback, FallbackError};
pub use guard::Guard;
pub use latency::{LATENCY_RECORDED_MAX_US, LATENCY_SLOTS};
pub use layer::{ResponseFuture, SwitchyardLayer, SwitchyardService};
pub use metrics::{KeyLabels, ModeLabels, RejectLabels, RetryLabels, SdkMetrics};
pub use mode::{Mode, ModeOptions, ModeTracker};
pub use outcome::{Classifier, ErrorIsFailure, Outcome};
pub use report_queue::{Dropped, REPORT_QUEUE_MAX_DEFAULT, ReportQueue};
pub use retry::{
    Backoff, RETRY_ATTEMPTS_MAX, Retry, RetryBudget, RetryBudgetOptions, RetryBudgetSource,
    SmallRng,
};
pub use switchyard_core::{BreakerState, Policy, Tier, WindowSpec};
