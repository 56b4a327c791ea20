//! `switchyard bench`: measurement harnesses that print a table (and `--json`).
//!
//! Each harness starts what it measures for real: node processes of this very binary on free
//! loopback ports with their own sled directories, driven over gRPC. Figures are only
//! meaningful relative to a reference measured in the same session on the same machine (see
//! `docs/benchmarks.md`).
//!
//! - [`cluster`]: a throwaway N-node cluster of child processes.
//! - [`stats`]: latency percentiles.
//! - [`writes`]: admin writes/s and commit latency at several client counts.
//! - [`ingest`]: fleet reports/s into the cluster under its back-pressure, report latency,
//!   leader CPU and memory, calls accounted end to end; `--curve` over fleet sizes and intervals.
//! - [`failover`]: the unavailability window after SIGKILL of the leader under write load.
//! - [`fleet`]: coordinated versus local-only breakers at an outage (the headline).
//! - [`partitions`]: rejoin time after network cuts (Linux network namespaces; needs root).
//! - [`override_writers`]: failing-over override writers the cluster benches load it with.
//! - [`sdk`]: the SDK hot path per call.
//! - [`stability`]: leader changes and write latency with the CPU saturated by other processes.

pub mod accounting;
pub mod cluster;
pub mod failover;
pub mod fleet;
pub mod ingest;
pub mod override_writers;
pub mod partitions;
pub mod sdk;
pub mod stability;
pub mod stats;
pub mod writes;

use clap::{Args, Subcommand};

/// `switchyard bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The SDK hot path: allow + record per call, 1 and 2 threads on one breaker.
    Sdk(sdk::SdkArgs),
    /// Fleet reports into a local 3-node cluster (`--curve`: over fleet sizes and intervals).
    Ingest(ingest::IngestArgs),
    /// Admin writes at 1, 16 and 64 concurrent clients.
    Writes(writes::WritesArgs),
    /// SIGKILL the leader under write load; measure the unavailability window.
    Failover(failover::FailoverArgs),
    /// A fleet of SDKs through an outage, coordinated versus local-only breakers.
    Fleet(fleet::FleetArgs),
    /// Busy-loop processes saturate the CPU while clients write: leader changes, write p99,
    /// longest write gap.
    Stability(stability::StabilityArgs),
    /// Cut a node off the network (Linux network namespaces, needs root) and measure how long
    /// it takes to rejoin after the heal.
    Partitions(partitions::PartitionsArgs),
}

/// Options every harness shares.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Print the results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Nodes in the benchmark cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nodes: u8,
}

/// Runs one harness.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Sdk(args) => sdk::run(args),
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Writes(args) => writes::run(args).await,
        BenchCommand::Failover(args) => failover::run(args).await,
        BenchCommand::Fleet(args) => fleet::run(args).await,
        BenchCommand::Stability(args) => stability::run(args).await,
        BenchCommand::Partitions(args) => partitions::run(args).await,
    }
}

/// Progress on stderr, so `--json` output on stdout stays clean.
pub fn progress(message: impl AsRef<str>) {
    eprintln!("[bench] {}", message.as_ref());
}
