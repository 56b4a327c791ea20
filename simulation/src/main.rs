//! `switchyard-simulation`: run seeds, replay one, or print the fleet comparison.
//!
//! ```text
//! cargo run -p switchyard-simulation --release -- --seeds 200 [--start S] [--jobs 2] [--json]
//! cargo run -p switchyard-simulation --release -- --reproduce SEED
//! cargo run -p switchyard-simulation --release -- --fleet-comparison [--json]
//! cargo run -p switchyard-simulation --release -- --false-trips [--minutes 60] [--json]
//! cargo run -p switchyard-simulation --release -- --trade-off [--minutes 10] [--json]
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use switchyard_simulation::report::{Summary, reproduce_command};
use switchyard_simulation::{Profile, RunOptions, RunReport, comparison, false_trips, run_seed};

/// Deterministic simulation of Switchyard clusters and fleets under faults.
#[derive(Debug, Parser)]
#[command(name = "switchyard-simulation")]
struct Args {
    /// Run this many seeds.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Replay one seed and print its trace.
    #[arg(long)]
    reproduce: Option<u64>,
    /// Print the fleet comparison (coordinated versus local-only breakers).
    #[arg(long)]
    fleet_comparison: bool,
    /// Count fleet trips under noise (20 %, 35 % baselines, one sick instance), defaults.
    #[arg(long)]
    false_trips: bool,
    /// The confidence trade-off: onset ratio and fleet trips at 35 % and 45 % baselines.
    #[arg(long)]
    trade_off: bool,
    /// Simulated minutes of each `--false-trips` / `--trade-off` noise run.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Only this `--false-trips` case (0: 20 % baseline, 1: 35 %, 2: one sick instance), or
    /// only this `--trade-off` level (its index in 0 %, 95, 99, 99.9, 99.99, 99.999 %), so
    /// long runs can go in parallel processes.
    #[arg(long)]
    only: Option<usize>,
    /// Seeds run in parallel (one thread each; a run is single-threaded).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Use the short test profile.
    #[arg(long)]
    quick: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let profile = if args.quick {
        Profile::QUICK
    } else {
        Profile::STANDARD
    };
    let options = RunOptions {
        profile,
        ..RunOptions::default()
    };
    if args.fleet_comparison {
        let rows = comparison::run_all(|line| eprintln!("{line}"));
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", comparison::table(&rows));
        }
        return Ok(());
    }
    if args.false_trips || args.trade_off {
        let progress = |line: String| eprintln!("{line}");
        if args.false_trips {
            let rows = false_trips::run_default(args.minutes, args.only, progress);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", false_trips::table(&rows));
            }
        }
        if args.trade_off {
            let rows = false_trips::run_trade_off(args.minutes, args.only, progress);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", false_trips::trade_off_table(&rows));
            }
        }
        return Ok(());
    }
    if let Some(seed) = args.reproduce {
        let report = run_seed(seed, options);
        print!("{}", report.trace);
        println!("trace digest {:016x}", report.trace_digest);
        if report.passed() {
            println!("seed {seed}: every invariant held");
            return Ok(());
        }
        for v in &report.violations {
            println!("seed {seed}: VIOLATION {v}");
        }
        std::process::exit(1);
    }
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Mutex::new(Vec::<RunReport>::new()));
    let workers: Vec<_> = (0..args.jobs.max(1))
        .map(|_| {
            let next = Arc::clone(&next);
            let done = Arc::clone(&done);
            let total = args.seeds;
            let start = args.start;
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let seed = start + i;
                    let report = run_seed(seed, options);
                    if !report.passed() {
                        eprintln!(
                            "seed {seed} FAILED: {}\n  reproduce: {}",
                            report.violations[0],
                            reproduce_command(seed)
                        );
                    }
                    let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
                    done.push(report);
                    let n = done.len() as u64;
                    if n.is_multiple_of(10) || n == total {
                        let elapsed = started.elapsed().as_secs_f64();
                        let rate = n as f64 / elapsed.max(1e-9);
                        let eta = (total - n) as f64 / rate.max(1e-9);
                        let failed = done.iter().filter(|r| !r.passed()).count();
                        eprintln!(
                            "[{n}/{total}] {failed} failed, {rate:.2} seeds/s, eta {eta:.0} s"
                        );
                        let _ = std::io::stderr().flush();
                    }
                }
            })
        })
        .collect();
    for w in workers {
        if w.join().is_err() {
            anyhow::bail!("a worker thread panicked");
        }
    }
    let mut reports = std::mem::take(&mut *done.lock().unwrap_or_else(|p| p.into_inner()));
    reports.sort_by_key(|r| r.seed);
    let summary = Summary::new(args.start, &reports, started.elapsed());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.table(&reports));
    }
    if summary.failures.is_empty() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}
