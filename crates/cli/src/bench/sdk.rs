//! `switchyard bench sdk`: the SDK hot path, per guarded call.
//!
//! Measures `allow()` + `record()` on one breaker, uncontended and with several threads on the
//! same breaker, next to a bare `AtomicU64::fetch_add` as the floor. The comparison with the
//! `failsafe` and `recloser` crates runs in the criterion bench (`cargo bench -p
//! switchyard-sdk`), where all of them are measured in one run.

use clap::Args;
use switchyard_sdk::bench::{HotPathBenchOptions, run_hot_path};

use super::progress;
use crate::output::Table;

/// `switchyard bench sdk`
#[derive(Debug, Clone, Args)]
pub struct SdkArgs {
    /// Calls per thread per row.
    #[arg(long, default_value_t = 20_000_000)]
    pub iterations: u64,
    /// Threads for the contended rows.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the harness.
pub fn run(args: SdkArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.iterations >= 1_000, "--iterations: at least 1000");
    anyhow::ensure!(
        (1..=64).contains(&args.threads),
        "--threads: between 1 and 64"
    );
    progress(format!(
        "{} calls per thread, 1 and {} thread(s) on one breaker",
        args.iterations, args.threads
    ));
    let rows = run_hot_path(HotPathBenchOptions {
        iterations: args.iterations,
        threads: args.threads,
    });
    if args.json {
        let json: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name, "threads": r.threads,
                    "iterations": r.iterations, "ns_per_call": r.ns_per_call,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        let mut table = Table::new(&["ROW", "THREADS", "CALLS/THREAD", "NS/CALL"]);
        for r in &rows {
            table.row(vec![
                r.name.clone(),
                r.threads.to_string(),
                r.iterations.to_string(),
                format!("{:.1}", r.ns_per_call),
            ]);
        }
        print!("{}", table.render());
    }
    Ok(())
}
