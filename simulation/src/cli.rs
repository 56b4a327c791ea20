//! The command line of `switchyard-simulation`, in the library so that a test can parse the
//! reproduce command a failure prints and check that it replays the same run.

use clap::Parser;

use crate::fleet::FleetOptions;
use crate::plant::PlantedBug;
use crate::run::RunOptions;
use crate::scenario::Profile;

/// Deterministic simulation of Switchyard clusters and fleets under faults.
#[derive(Debug, Parser)]
#[command(name = "switchyard-simulation")]
pub struct Args {
    /// Run this many seeds.
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Replay one seed and print its trace.
    #[arg(long)]
    pub reproduce: Option<u64>,
    /// Print the fleet comparison (coordinated versus local-only breakers).
    #[arg(long)]
    pub fleet_comparison: bool,
    /// Count fleet trips under noise (20 %, 35 % baselines, one sick instance), defaults.
    #[arg(long)]
    pub false_trips: bool,
    /// The confidence trade-off: onset ratio and fleet trips at 35 % and 45 % baselines.
    #[arg(long)]
    pub trade_off: bool,
    /// Simulated minutes of each `--false-trips` / `--trade-off` noise run.
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    /// Only this `--false-trips` case (0: 20 % baseline, 1: 35 %, 2: one sick instance), or
    /// only this `--trade-off` level (its index in 0 %, 95, 99, 99.9, 99.99, 99.999 %), so
    /// long runs can go in parallel processes.
    #[arg(long)]
    pub only: Option<usize>,
    /// Seeds run in parallel (one thread each; a run is single-threaded).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Use the short test profile.
    #[arg(long)]
    pub quick: bool,
    /// Plant a test-only bug (the run must then fail); `--plant list` names them.
    #[arg(long)]
    pub plant: Option<String>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// Whether `--plant list` was asked for.
    pub fn lists_plants(&self) -> bool {
        self.plant.as_deref() == Some("list")
    }

    /// The run options the flags name, or why they name none.
    pub fn run_options(&self) -> Result<RunOptions, String> {
        let plant = self.plant.as_deref().map(PlantedBug::parse).transpose()?;
        Ok(RunOptions {
            profile: if self.quick {
                Profile::QUICK
            } else {
                Profile::STANDARD
            },
            fleet: FleetOptions {
                local_only: false,
                plant,
            },
        })
    }
}
