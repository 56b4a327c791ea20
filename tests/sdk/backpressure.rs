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
    eventually(
        Duration::from_secs(20),
        "every recorded call applied",
        || {
            let http = http.clone();
            async move {
                let applied = metric(&scrape(&http), "switchyard_breaker_sla_calls", "pressure/");
                (applied == recorded).then_some(())
            }
        },
    )
    .await;
}
