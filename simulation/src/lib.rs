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
//! - [`invariants`]: one file per invariant, one [`Violation`] enum, evaluation counts.
//! - [`checker`]: [`checker::Checker`], runs the invariants and writes the trace.
//! - [`plant`]: [`plant::PlantedBug`], the test-only bugs behind `--plant NAME`.
//! - [`trace`]: [`trace::Trace`], the run's observations and their digest.
//! - [`run`]: [`run_seed`], one whole run (its world and faults in `world`).
//! - [`comparison`]: the fleet comparison, coordinated versus local-only breakers.
//! - [`false_trips`]: fleet trips under a noisy baseline or one sick instance (none wanted).
//! - [`report`]: the CLI's summary table, per-invariant counts, JSON, reproduce commands.
//! - [`cli`]: the command line.
//!
//! # Proving the checkers
//!
//! A checker that has never failed proves nothing. Every invariant has a planted bug
//! (`--plant NAME`, `--plant list`) that the simulation catches within a few seeds; the test
//! `every_planted_bug_is_caught_by_its_invariant_within_a_few_seeds` runs them all. Every run
//! counts how many times each invariant evaluated something (cross-node digest comparisons,
//! SDK updates, half-open probes, liveness verdicts...), and the summary shows, per
//! invariant, the seeds in which it never did: a pass that checked nothing is visible, and a
//! batch of 100 seeds or more fails if any invariant never evaluated at all.
//!
//! # Crashes and flushes
//!
//! A node's disk ([`switchyard_store::MemDisk`]) lives outside its host. A flush takes a
//! seed-drawn few ms of simulated time, and writes become durable only when it completes; a
//! crash between a write and the end of its flush loses the write. So an acknowledgement
//! given before a flush completed shows up as an acknowledged entry lost in a crash.
//!
//! # Determinism
//!
//! A seed names a run byte for byte: two runs of one seed leave the same trace, in separate
//! processes or side by side in one (as `--seeds N --jobs 2` runs them). The test
//! `the_same_seed_replays_the_same_trace_byte_for_byte` runs seeds twice at once and compares
//! every line. What that takes:
//!
//! - Every parameter and every fault comes from the seed ([`rng::SimRng`]); turmoil's network
//!   is seeded with it.
//! - With `--cfg tokio_unstable` (the workspace's `.cargo/config.toml`) turmoil seeds each
//!   host's tokio runtime, which fixes `tokio::select!`'s branch order.
//! - openraft's own draws (election timeouts, the phase of its tick loop) come from
//!   `switchyard_store::RaftRuntime`, whose generator each node's seed scope fixes
//!   ([`cluster::raft_seed`]); a draw outside a scope fails the run.
//! - Nothing the runs depend on reads the machine's clock: nodes and SDKs read simulated time
//!   ([`clock`]); the server dates its gRPC responses from that clock
//!   (`switchyard_server::response_date`) instead of letting hyper stamp the system time,
//!   whose turning seconds changed the HTTP/2 bytes on the wire; and channels keep h2's memory
//!   of reset streams off the machine's clock ([`net::RESET_STREAM_MEMORY`]).
//! - A crash is a power loss with every link of the host cut while it stops (see
//!   `World::power_off` in [`run`]): tokio drops a stopped runtime's tasks in an order set by
//!   process-wide task ids, and the FIN and RST segments that order would emit never reach
//!   the network.
//! - Outputs iterate `BTreeMap`s only; every RPC has a deadline.
//!
//! One source is known to remain, out of reach with tonic 0.14: the *server* side of h2 also
//! forgets a stream it reset after one second of the machine's clock, and tonic's server does
//! not let that be set. It shows only when a node gives up on a call before it has read the
//! whole request and more of that request arrives over a second of machine time later; no
//! run of 200 seeds, twice, has shown it.
//!
//! A report also carries the digest of the trace's controlled lines alone (scenario, faults,
//! healing, verdicts): [`RunReport::schedule_digest`].

pub mod checker;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod comparison;
pub mod dependency;
pub mod false_trips;
pub mod faults;
pub mod fleet;
pub mod invariants;
pub mod net;
pub mod plant;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod trace;
mod world;

pub use invariants::Violation;
pub use run::{RunOptions, RunReport, run_seed};
pub use scenario::{Profile, Scenario};
