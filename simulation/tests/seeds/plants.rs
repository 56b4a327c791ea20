//! Every planted bug is caught by its invariant within a few seeds, and the command a failure
//! prints replays it.

use std::sync::Mutex;

use clap::Parser;
use switchyard_simulation::cli::Args;
use switchyard_simulation::fleet::FleetOptions;
use switchyard_simulation::plant::PlantedBug;
use switchyard_simulation::report::Summary;
use switchyard_simulation::{Profile, RunOptions, RunReport, run_seed};

/// The bound: each planted bug is caught within this many seeds.
const SEEDS_MAX: u64 = 20;

fn planted(bug: PlantedBug) -> RunOptions {
    RunOptions {
        profile: Profile::QUICK,
        fleet: FleetOptions {
            local_only: false,
            plant: Some(bug),
        },
    }
}

/// Runs seeds 0, 1, ... with `bug` planted until one breaks the invariant that must catch
/// it; that seed's report and the seeds it took.
fn first_catch(bug: PlantedBug) -> Option<(RunReport, u64)> {
    (0..SEEDS_MAX).find_map(|seed| {
        let report = run_seed(seed, planted(bug));
        let caught = report
            .violations
            .iter()
            .any(|v| v.invariant() == Some(bug.caught_by()));
        caught.then_some((report, seed + 1))
    })
}

#[test]
fn every_planted_bug_is_caught_by_its_invariant_within_a_few_seeds() {
    // Goal: no checker is a no-op. Each bug breaks what one invariant guards; that invariant
    // must report it, with the seed, within SEEDS_MAX seeds (two bugs at a time, one per core).
    let queue = Mutex::new(PlantedBug::ALL.to_vec());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some(bug) = queue.lock().expect("queue").pop() {
                    let caught = first_catch(bug);
                    results.lock().expect("results").push((bug, caught));
                }
            });
        }
    });
    let mut missed = Vec::new();
    for (bug, caught) in results.into_inner().expect("results") {
        let Some((report, seeds)) = caught else {
            missed.push(format!(
                "{bug}: {} did not catch it in {SEEDS_MAX} seeds",
                bug.caught_by().name()
            ));
            continue;
        };
        let by = report
            .violations
            .iter()
            .find(|v| v.invariant() == Some(bug.caught_by()))
            .expect("first_catch returns a report with the violation");
        println!(
            "{bug}: caught at seed {} ({seeds} seeds): {by}",
            report.seed
        );
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

#[test]
fn the_printed_reproduce_command_replays_a_planted_failure() {
    // Goal: a failure's command names everything the run used (profile, --quick, --plant):
    // parsed as the CLI parses it, it gives back the same options and the same trace.
    let bug = PlantedBug::IgnoreOpen;
    let (report, _) = first_catch(bug).expect("the planted bug is caught");
    let options = planted(bug);
    let summary = Summary::new(
        report.seed,
        std::slice::from_ref(&report),
        &options,
        std::time::Duration::from_secs(1),
    );
    let command = &summary.failures[0].reproduce;
    assert_eq!(summary.failures[0].seed, report.seed);
    assert!(
        command.starts_with("cargo run -p switchyard-simulation --profile sim -- "),
        "{command}"
    );
    let (_, flags) = command.split_once(" -- ").expect("flags after --");
    let args = Args::try_parse_from(
        std::iter::once("switchyard-simulation").chain(flags.split_whitespace()),
    )
    .expect("the command parses");
    assert_eq!(args.reproduce, Some(report.seed));
    let replayed = run_seed(report.seed, args.run_options().expect("valid flags"));
    assert_eq!(replayed.trace_digest, report.trace_digest, "{command}");
    assert_eq!(replayed.violations, report.violations, "{command}");
}
