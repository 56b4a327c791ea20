//! `switchyard-simulation`: run seeds, replay one, or print the fleet comparison.
//!
//! ```text
//! cargo run -p switchyard-simulation --profile sim -- --seeds 200 [--start S] [--jobs 2] [--quick] [--plant NAME] [--json]
//! cargo run -p switchyard-simulation --profile sim -- --reproduce SEED [--quick] [--plant NAME]
//! cargo run -p switchyard-simulation --profile sim -- --plant list
//! cargo run -p switchyard-simulation --profile sim -- --fleet-comparison [--json]
//! cargo run -p switchyard-simulation --profile sim -- --false-trips [--minutes 60] [--json]
//! cargo run -p switchyard-simulation --profile sim -- --trade-off [--minutes 10] [--json]
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use switchyard_simulation::cli::Args;
use switchyard_simulation::plant::PlantedBug;
use switchyard_simulation::report::{Summary, reproduce_command};
use switchyard_simulation::{RunReport, comparison, false_trips, run_seed};

/// Below this many seeds an invariant that never evaluated is only reported; from here on
/// (CI runs 200) it fails the run, since its passes checked nothing.
const SEEDS_THAT_MUST_EVALUATE_EVERY_INVARIANT: u64 = 100;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.lists_plants() {
        print!("{}", PlantedBug::table());
        return Ok(());
    }
    let options = match args.run_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
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
                            reproduce_command(seed, &options)
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
    let summary = Summary::new(args.start, &reports, &options, started.elapsed());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.table(&reports));
    }
    if !summary.failures.is_empty() {
        std::process::exit(1)
    }
    let never = summary.never_evaluated();
    if args.seeds >= SEEDS_THAT_MUST_EVALUATE_EVERY_INVARIANT && !never.is_empty() {
        eprintln!(
            "error: {} seeds never evaluated {}: their passes checked nothing",
            args.seeds,
            never.join(", ")
        );
        std::process::exit(1)
    }
    Ok(())
}
