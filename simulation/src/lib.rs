//! Deterministic simulation of Switchyard: the real server and SDK code on turmoil, a whole
//! cluster and fleet per seed, faults in a safety phase, healing in a liveness phase, and
//! invariants checked as the run goes.
//!
//! - [`rng`]: [`rng::SimRng`], the one random source, and the FNV digest.
//! - [`scenario`]: [`Scenario`], every parameter of a run drawn from its seed.
//! - [`faults`]: [`faults::Fault`], partitions, crashes, latency, loss, dependency trouble.
//! - [`clock`] / [`net`]: simulated time and turmoil transport for nodes and SDKs.
//! - [`cluster`]: [`cluster::Cluster`], node hosts with their disks kept outside.
//! - [`fleet`]: [`fleet::Fleet`], SDK hosts calling the dependency.
//! - [`dependency`]: [`dependency::Dependency`], the simulated dependency and its tallies.
//! - [`invariants`]: one file per invariant, one [`Violation`] enum.
//! - [`checker`]: [`checker::Checker`], runs the invariants and writes the trace.
//! - [`trace`]: [`trace::Trace`], the run's observations and their digest.
//! - [`run`]: [`run_seed`], one whole run.
//! - [`comparison`]: the fleet comparison, coordinated versus local-only breakers.
//! - [`report`]: the CLI's summary table and JSON.

//!
//! # Determinism
//!
//! Every parameter and every fault comes from the seed ([`rng::SimRng`]); turmoil's network
//! is seeded with it, and with `--cfg tokio_unstable` (the workspace's `.cargo/config.toml`)
//! turmoil seeds each host's tokio runtime, which fixes `tokio::select!`'s branch order.
//! Nothing reads the machine's clock; outputs iterate `BTreeMap`s only; every RPC has a
//! deadline. Election timeouts are pinned per node (see [`scenario`]).
//!
//! One source remains outside our reach with the pinned openraft (0.10.0-alpha.37): its
//! tick loop starts with a random phase drawn from `rand::rng()` (OS-seeded), so heartbeat
//! send times differ by a few milliseconds between runs. Runs of one seed therefore share
//! the scenario, the fault schedule and (almost always) the verdict, and the *controlled
//! trace* ([`RunReport::schedule_digest`]) is identical byte for byte; the full observation
//! trace ([`RunReport::trace_digest`]) usually is, but can drift once a heartbeat lands on
//! a different millisecond. Making openraft's runtime RNG seedable closes this gap.

pub mod checker;
pub mod clock;
pub mod cluster;
pub mod comparison;
pub mod dependency;
pub mod faults;
pub mod fleet;
pub mod invariants;
pub mod net;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod trace;

pub use invariants::Violation;
pub use run::{RunOptions, RunReport, run_seed};
pub use scenario::{Profile, Scenario};
