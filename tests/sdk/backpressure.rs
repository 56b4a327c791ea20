//! Back-pressure near the leader's tick-buffer limit: a fleet whose reports fill
//! three quarters of `pending_deltas_max` every tick is asked for a wider report interval,
//! reports less often with every call still counted, and no report is refused.

use std::time::Duration;

use switchyard_sdk::{Client, Outcome};

use crate::support::{Cluster, eventually, metric, metric_f64, scrape};

const INSTANCES: usize = 10;
const BREAKERS: usize = 30;
/// 10 instances x 30 breakers every 100 ms offer 300 deltas per tick: 0.75 of this limit, past
/// the half at which back-pressure starts (a limit that the first busy tick passes outright
/// would refuse the reports sent before the first advice reaches the fleet).
const PENDING_MAX: &str = "400";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_over_the_tick_buffer_limit_reports_less_often_and_is_never_refused() {
    let cluster = Cluster::start(3, &["--limit-pending-deltas-max", PENDING_MAX]);
    let leader = cluster.wait_leader(Duration::from_secs(15)).await;
    let leader_grpc = cluster.nodes[&leader].grpc.clone();
    // phase: the fleet joins one instance every 150 ms (as deployments roll out), all
    // reporting to the leader, every breaker called every 10 ms
    let mut clients = Vec::new();
    let mut recorded = 0u64;
    for i in 0..INSTANCES {
        let client = Client::builder()
            .endpoints([leader_grpc.as_str()])
            .instance_id(format!("busy-{i}"))
            .report_interval(Duration::from_millis(100))
            .build()
            .expect("sdk client");
        let breakers: Vec<_> = (0..BREAKERS)
            .map(|b| client.breaker(&format!("pressure/b{b}")).unwrap())
            .collect();
        clients.push((client, breakers));
        for _ in 0..15 {
            for (_, breakers) in &clients {
                for b in breakers {
                    let p = b.allow().expect("closed");
                    b.record(p, Outcome::Success, Duration::from_millis(1));
                    recorded += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // phase: the whole fleet for 3 s more
    for _ in 0..300 {
        for (_, breakers) in &clients {
            for b in breakers {
                let p = b.allow().expect("closed");
                b.record(p, Outcome::Success, Duration::from_millis(1));
                recorded += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The interval widened on every instance, and nothing was refused on either side.
    for (client, _) in &clients {
        let stats = client.stats();
        assert!(
            stats.report_interval_ms > 100,
            "{}: still at {} ms",
            client.instance_id(),
            stats.report_interval_ms
        );
        assert_eq!(stats.reports_refused, 0, "{}", client.instance_id());
        assert_eq!(stats.reports_dropped, 0, "{}", client.instance_id());
    }
    let http = cluster.nodes[&leader].http.clone();
    let text = scrape(&http);
    assert_eq!(
        metric(
            &text,
            "switchyard_report_deltas_refused_total",
            "pending_deltas_max"
        ),
        0
    );
    assert!(
        metric_f64(&text, "switchyard_report_interval_advised_seconds", "") > 0.1,
        "{text}"
    );

    // Every recorded call reaches the state machine (the last ones with the next report).
    wait_applied(&http, "pressure/", recorded).await;
}

/// Waits until the state machine behind `http` has applied `recorded` calls of the breakers
/// whose keys start with `prefix`.
async fn wait_applied(http: &str, prefix: &str, recorded: u64) {
    eventually(
        Duration::from_secs(20),
        "every recorded call applied",
        || async move {
            let applied = metric(&scrape(http), "switchyard_breaker_sla_calls", prefix);
            (applied == recorded).then_some(())
        },
    )
    .await;
}

/// A PSI file whose `some` stall time grows by `share` of wall time while `on` holds, written
/// every 20 ms (whole-file renames, so a node never reads half a line).
struct FakePressure {
    path: std::path::PathBuf,
    share_permille: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakePressure {
    fn start(dir: &std::path::Path) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let path = dir.join("cpu.pressure");
        let share_permille = std::sync::Arc::new(AtomicU64::new(0));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let write = |path: &std::path::Path, total_us: u64| {
            let tmp = path.with_extension("tmp");
            std::fs::write(
                &tmp,
                format!(
                    "some avg10=0.00 avg60=0.00 avg300=0.00 total={total_us}\n\
                     full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                ),
            )
            .unwrap();
            std::fs::rename(&tmp, path).unwrap();
        };
        write(&path, 0);
        let (p, share, halt) = (path.clone(), share_permille.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut total_us = 0u64;
            let mut last = std::time::Instant::now();
            while !halt.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                let elapsed_us = last.elapsed().as_micros() as u64;
                last = std::time::Instant::now();
                total_us += elapsed_us * share.load(Ordering::Relaxed) / 1000;
                write(&p, total_us);
            }
        });
        Self {
            path,
            share_permille,
            stop,
        }
    }

    fn set(&self, share: f64) {
        self.share_permille.store(
            (share * 1000.0) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

impl Drop for FakePressure {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Breakers of the busy instance: 900 deltas a report every 50 ms, 18 000 a second, over the
/// 10 000 a node must take before its CPU counts (and under the 1 000 breakers `/metrics`
/// shows, which the final count reads).
const BUSY_BREAKERS: usize = 900;
/// The busy instance's report interval.
const BUSY_INTERVAL: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_short_of_cpu_asks_for_coarser_reports_up_to_16_ticks_and_lets_go() {
    // Goal: CPU pressure over `cpu_pressure_max_percent` widens the fleet's interval (never
    // past 16 ticks) once reports are a real part of the nodes' work, loses no evidence, and
    // the interval comes back when the pressure goes.
    let files = tempfile::tempdir().unwrap();
    let pressure = FakePressure::start(files.path());
    let file = pressure.path.to_str().unwrap().to_owned();
    let cluster = Cluster::start(
        3,
        &[
            "--cpu-pressure-file",
            &file,
            "--limit-cpu-pressure-max-percent",
            "50",
        ],
    );
    let leader = cluster.wait_leader(Duration::from_secs(15)).await;
    let http = cluster.nodes[&leader].http.clone();
    let endpoints = cluster.endpoints();
    let client = |id: &str, interval: Duration| {
        Client::builder()
            .endpoints(endpoints.split(','))
            .instance_id(id)
            .report_interval(interval)
            .build()
            .expect("sdk client")
    };
    let light = client("cpu-light", Duration::from_millis(100));
    let light_breaker = light.breaker("cpu/light").unwrap();
    let busy = client("cpu-busy", BUSY_INTERVAL);
    let busy_breakers: Vec<_> = (0..BUSY_BREAKERS)
        .map(|b| busy.breaker(&format!("cpu/b{b}")).unwrap())
        .collect();
    let mut recorded = 0u64;
    let mut call = |breakers: &[&switchyard_sdk::Breaker]| {
        for b in breakers {
            let p = b.allow().expect("closed");
            b.record(p, Outcome::Success, Duration::from_millis(1));
        }
        recorded += breakers.len() as u64;
    };
    let busy_refs: Vec<&switchyard_sdk::Breaker> = busy_breakers.iter().collect();

    // phase: 0.95 of the time stalled, but a light fleet: its reports are not what loads the
    // CPU, so nothing is asked
    pressure.set(0.95);
    for _ in 0..20 {
        call(&[&light_breaker]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(light.stats().report_interval_ms, 100);

    // phase: a busy fleet at 0.3 stalled, under the limit: nothing asked either (once the
    // nodes' smoothed figure has come down from 0.95)
    pressure.set(0.3);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..40 {
        call(&busy_refs);
        tokio::time::sleep(BUSY_INTERVAL).await;
    }
    assert_eq!(busy.stats().report_interval_ms, 50);
    assert_eq!(
        metric_f64(
            &scrape(&http),
            "switchyard_report_interval_advised_seconds",
            ""
        ),
        0.0
    );

    // phase: the busy fleet at 0.95 stalled for 5 s: widened, to 16 ticks at most
    pressure.set(0.95);
    let mut widest = 0;
    for _ in 0..100 {
        call(&busy_refs);
        widest = widest.max(busy.stats().report_interval_ms);
        tokio::time::sleep(BUSY_INTERVAL).await;
    }
    assert_eq!(widest, 1_600, "CPU pressure alone stops at 16 ticks");
    let text = scrape(&http);
    assert!(
        metric_f64(&text, "switchyard_cpu_pressure_ratio", "") > 0.9,
        "{text}"
    );
    assert_eq!(busy.stats().reports_refused, 0);

    // phase: the pressure goes; within a few calm periods the SDK is back at its own interval
    pressure.set(0.0);
    eventually(Duration::from_secs(30), "back to 50 ms", || {
        call(&busy_refs);
        let interval = busy.stats().report_interval_ms;
        async move { (interval == 50).then_some(()) }
    })
    .await;

    // Every recorded call reached the state machine.
    wait_applied(&http, "cpu/", recorded).await;
}

#[test]
fn a_pressure_file_that_cannot_be_read_stops_the_node_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(crate::support::binary())
        .args(["serve", "--node-id", "1", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .arg("--cpu-pressure-file")
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`cpu_pressure_file`"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}
