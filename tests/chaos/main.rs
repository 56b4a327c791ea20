//! Chaos against real containers: a three-node cluster of the FROM-scratch image on a private
//! docker network, SDK instances and an admin writer running against it from this process,
//! and faults that only containers can inject for real: SIGKILL of a container, a node cut
//! off the network, every node stopped, a rolling restart.
//!
//! Each test prints the windows it measured (election, write unavailability, SDK
//! convergence). Without a docker engine the tests are skipped with a message, unless
//! `SWITCHYARD_REQUIRE_DOCKER` is set (CI sets it), which turns a missing engine into a
//! failure. The image is built once per run by `deploy/docker/build.sh`; the tests run one
//! at a time, since each measures timings that a concurrent cluster would distort.

#[path = "../support/mod.rs"]
mod support;

mod cluster;
mod docker;
mod load;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use cluster::ContainerCluster;
use load::{AdminWriter, Monitor, SdkFleet, WriteLog, breaker_keys, force_open, local_status};
use tokio::sync::{Mutex, MutexGuard};

/// A fresh cluster of containers must elect a leader within this.
const FORM: Duration = Duration::from_secs(30);
/// A new leader after a fault, with containers competing for two cores.
const ELECTION: Duration = Duration::from_secs(15);
/// A decision reaches every SDK instance within this (a watch that went silent is given up
/// after 5 s, then the SDK reconnects elsewhere with backoff).
const SDK_CONVERGENCE: Duration = Duration::from_secs(15);
/// Load runs this long before a fault and after recovery.
const STEADY: Duration = Duration::from_secs(2);
/// How long the leader stays cut off the network.
const LEADER_CUT: Duration = Duration::from_secs(10);
/// How long a follower stays cut off the network.
const FOLLOWER_CUT: Duration = Duration::from_secs(30);
/// A follower back from a cut is caught up within this (generous: `docker network connect`
/// and `docker exec` take their own time; `switchyard bench partitions` measures the real
/// figure).
const REJOIN: Duration = Duration::from_secs(3);
/// The SDK hot path is local: no decision may take longer than this, whatever the cluster does.
const DECISION_MAX: Duration = Duration::from_millis(50);

/// The tests run one at a time (each owns the machine's two cores while it measures).
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Takes the suite's lock, or `None` when the tests are skipped (no docker engine).
async fn begin() -> Option<MutexGuard<'static, ()>> {
    if !docker::engine_available() {
        return None;
    }
    let guard = SERIAL.lock().await;
    // The first test builds the image (minutes when cold); the others find it built.
    tokio::task::block_in_place(docker::image);
    Some(guard)
}

/// Runs a blocking docker step without stalling the load running on this runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Prints the measured windows. Written straight to stderr, not through `eprintln!`, so the
/// figures show in CI logs even when the test passes and libtest captures its output.
fn report(test: &str, lines: &[(&str, String)]) {
    let mut out = std::io::stderr().lock();
    for (name, value) in lines {
        let _ = writeln!(out, "chaos [{test}] {name}: {value}");
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Every acknowledged key is in `keys`.
fn assert_no_acknowledged_write_lost(log: &WriteLog, keys: &[String]) {
    let keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let lost: Vec<&str> = log
        .acked
        .iter()
        .map(|(key, _, _)| key.as_str())
        .filter(|key| !keys.contains(key))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes are lost: {:?}",
        lost.len(),
        log.acked.len(),
        &lost[..lost.len().min(10)]
    );
}

/// Waits until node `id` (reached on its host port) knows a leader and has applied `index`.
async fn wait_caught_up(cluster: &ContainerCluster, id: u64, index: u64, timeout: Duration) {
    let mut admin = load::admin(&cluster.node(id).grpc, Duration::from_secs(1));
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = local_status(&mut admin).await
            && s.leader_id.is_some()
            && s.applied_index >= index
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} did not catch up to index {index} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The SDK instances decided throughout: more decisions than `before`, none slow.
fn assert_sdk_kept_deciding(fleet: &SdkFleet, before: &[u64]) -> (Duration, Duration) {
    let after = fleet.decisions();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(a > b, "SDK instance {i} stopped deciding ({b} → {a})");
    }
    let (slowest, pause) = fleet.slowest_and_longest_pause();
    assert!(
        slowest < DECISION_MAX,
        "an SDK decision took {slowest:?} (the hot path must never wait on the cluster)"
    );
    (slowest, pause)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_leader_under_load_loses_no_acknowledged_write() {
    // Goal: SIGKILL of the leader's container under SDK load: a new leader is elected, no
    // acknowledged admin write is lost, and the SDK instances keep deciding and follow the
    // new leader's decisions.
    let Some(_serial) = begin().await else { return };
    let cluster = ContainerCluster::start("kill", docker::image(), 3);
    let monitor = Monitor::start(&cluster.ids_and_endpoints());
    let started = Instant::now();
    let (formed_at, leader) = monitor.wait_new_leader(started, None, FORM).await;

    // phase: steady load: SDK instances deciding, an operator writing
    let marker = "chaos/marker-after-kill";
    let fleet = SdkFleet::start(&cluster.endpoints(), 4, &[marker]);
    fleet.wait_cluster_mode(FORM).await;
    let writer = AdminWriter::start(&cluster.endpoints());
    writer.wait_ack_after(Instant::now(), FORM).await;
    tokio::time::sleep(STEADY).await;
    let decisions_before = fleet.decisions();

    // phase: SIGKILL the leader's container
    let killed_at = Instant::now();
    blocking(|| cluster.kill(leader));
    let (elected_at, new_leader) = monitor
        .wait_new_leader(killed_at, Some(leader), ELECTION)
        .await;
    writer.wait_ack_after(elected_at, ELECTION).await;

    // phase: a decision made after the failover reaches every SDK instance
    let mut admin = load::admin(&cluster.node(new_leader).grpc, Duration::from_secs(3));
    let marked_at = Instant::now();
    force_open(&mut admin, marker)
        .await
        .expect("a write to the new leader");
    let converged_at = fleet.wait_marker_open(marker, SDK_CONVERGENCE).await;
    tokio::time::sleep(STEADY).await;

    // phase: every acknowledged write is in the new leader's state
    let log = writer.finish().await;
    let keys = breaker_keys(&mut admin, false)
        .await
        .expect("a linearizable read");
    assert_no_acknowledged_write_lost(&log, &keys);
    let (slowest, pause) = assert_sdk_kept_deciding(&fleet, &decisions_before);

    // phase: the killed node restarts from its volume and catches up
    let restarted_at = Instant::now();
    blocking(|| cluster.start_node(leader));
    wait_caught_up(&cluster, leader, log.last_index(), FORM).await;

    report(
        "sigkill-leader",
        &[
            ("cluster formed (first leader)", ms(formed_at - started)),
            (
                "killed leader",
                format!("node {leader}; new leader node {new_leader}"),
            ),
            (
                "election window (kill → new leader)",
                ms(elected_at - killed_at),
            ),
            (
                "write unavailability (longest gap between acknowledged writes)",
                ms(log.longest_gap(killed_at, converged_at)),
            ),
            (
                "SDK convergence (write on new leader → seen by all 4 instances)",
                ms(converged_at - marked_at),
            ),
            (
                "admin writes",
                format!(
                    "{} acknowledged, none lost; {} refused",
                    log.acked.len(),
                    log.refused.len()
                ),
            ),
            (
                "SDK decisions",
                format!(
                    "{:?} per instance; slowest {slowest:?}; longest pause {pause:?}",
                    fleet.decisions()
                ),
            ),
            (
                "killed node caught up after restart",
                ms(restarted_at.elapsed()),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_the_network_commits_nothing_and_converges_after_reconnect() {
    // Goal: disconnect the leader's container from the network: the majority elects a new
    // leader, the isolated node's commit index stops (a write sent to it is not
    // acknowledged), SDK instances move to reachable nodes; after reconnecting, the old
    // leader follows the new one and catches up, and its unacknowledged write is gone.
    let Some(_serial) = begin().await else { return };
    let cluster = ContainerCluster::start("partition", docker::image(), 3);
    let monitor = Monitor::start(&cluster.ids_and_endpoints());
    let (_, leader) = monitor.wait_new_leader(Instant::now(), None, FORM).await;

    // phase: steady load
    let marker = "chaos/marker-during-partition";
    let fleet = SdkFleet::start(&cluster.endpoints(), 4, &[marker]);
    fleet.wait_cluster_mode(FORM).await;
    let writer = AdminWriter::start(&cluster.endpoints());
    writer.wait_ack_after(Instant::now(), FORM).await;
    tokio::time::sleep(STEADY).await;
    let decisions_before = fleet.decisions();
    let reconnects_before = fleet.watch_reconnects();

    // phase: cut the leader off the network
    let cut_at = Instant::now();
    blocking(|| cluster.disconnect(leader));
    let (elected_at, new_leader) = monitor
        .wait_new_leader(cut_at, Some(leader), ELECTION)
        .await;
    writer.wait_ack_after(elected_at, ELECTION).await;

    // phase: the isolated node commits nothing, not even a write sent to it directly
    let isolated_commit = |cluster: &ContainerCluster| -> u64 {
        let status = blocking(|| cluster.exec_status(leader)).expect("status inside the container");
        status["commit_index"].as_u64().expect("commit_index")
    };
    let isolated_before = isolated_commit(&cluster);
    let isolated_write = blocking(|| {
        cluster.exec_cli(
            leader,
            &[
                "breaker",
                "open",
                "chaos/isolated-write",
                "--reason",
                "written to the isolated node",
            ],
        )
    });
    assert!(
        isolated_write.is_err(),
        "the isolated node acknowledged a write: {isolated_write:?}"
    );
    tokio::time::sleep(STEADY).await;
    let isolated_after = isolated_commit(&cluster);
    let majority_commit = monitor.max_commit_index();
    assert_eq!(
        isolated_before, isolated_after,
        "the isolated node's commit index moved"
    );
    assert!(
        majority_commit > isolated_after,
        "the majority did not commit past the isolated node ({majority_commit} ≤ {isolated_after})"
    );

    // phase: SDK instances move to reachable nodes: a decision of the majority reaches all
    let mut admin = load::admin(&cluster.node(new_leader).grpc, Duration::from_secs(3));
    let marked_at = Instant::now();
    force_open(&mut admin, marker)
        .await
        .expect("a write to the new leader");
    let converged_at = fleet.wait_marker_open(marker, SDK_CONVERGENCE).await;
    let moved: usize = fleet
        .watch_reconnects()
        .iter()
        .zip(&reconnects_before)
        .filter(|(after, before)| after > before)
        .count();

    // phase: reconnect after the full cut; the old leader follows the new one and catches up
    tokio::time::sleep((cut_at + LEADER_CUT).saturating_duration_since(Instant::now())).await;
    let reconnected_at = Instant::now();
    blocking(|| cluster.reconnect(leader));
    let target = monitor.max_commit_index();
    let deadline = reconnected_at + FORM;
    let converged_term = loop {
        let status = blocking(|| cluster.exec_status(leader)).unwrap_or_default();
        let follows = status["leader_id"].as_u64() == Some(new_leader);
        let applied = status["applied_index"].as_u64().unwrap_or(0);
        if follows && applied >= target {
            break status["term"].as_u64().unwrap_or(0);
        }
        assert!(
            Instant::now() < deadline,
            "the reconnected node did not converge: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rejoined_at = Instant::now();
    tokio::time::sleep(STEADY).await;

    // phase: nothing acknowledged is lost, and the isolated write never happened
    let log = writer.finish().await;
    let keys = breaker_keys(&mut admin, false)
        .await
        .expect("a linearizable read");
    assert_no_acknowledged_write_lost(&log, &keys);
    assert!(
        !keys.iter().any(|k| k == "chaos/isolated-write"),
        "a write only the isolated node saw was committed"
    );
    let (slowest, pause) = assert_sdk_kept_deciding(&fleet, &decisions_before);

    report(
        "partition-leader",
        &[
            (
                "isolated leader",
                format!("node {leader}; new leader node {new_leader} (term {converged_term})"),
            ),
            (
                "election window (cut → new leader)",
                ms(elected_at - cut_at),
            ),
            (
                "write unavailability (longest gap between acknowledged writes)",
                ms(log.longest_gap(cut_at, converged_at)),
            ),
            (
                "isolated commit index",
                format!("stayed at {isolated_after} while the majority reached {majority_commit}"),
            ),
            (
                "SDK convergence (write on new leader → seen by all 4 instances)",
                format!(
                    "{} ({moved} of 4 instances reconnected their watch)",
                    ms(converged_at - marked_at)
                ),
            ),
            (
                "old leader converged after reconnect",
                ms(rejoined_at - reconnected_at),
            ),
            (
                "admin writes",
                format!(
                    "{} acknowledged, none lost; {} refused",
                    log.acked.len(),
                    log.refused.len()
                ),
            ),
            (
                "SDK decisions",
                format!("slowest {slowest:?}; longest pause {pause:?}"),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_back_from_a_30_s_cut_catches_up_at_once_and_the_leader_stays() {
    // Goal: a follower disconnected from the network for 30 s is caught up within a few
    // seconds of reconnecting (its peers replace their stuck connections to it), its return
    // changes no leader (pre-vote), and a write sent through it during the cut, which timed out
    // at its client, never commits after the heal (the leader refuses a write past its
    // caller's deadline).
    let Some(_serial) = begin().await else { return };
    let cluster = ContainerCluster::start("follower-cut", docker::image(), 3);
    let monitor = Monitor::start(&cluster.ids_and_endpoints());
    let (_, leader) = monitor.wait_new_leader(Instant::now(), None, FORM).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let writer = AdminWriter::start(&cluster.endpoints());
    writer.wait_ack_after(Instant::now(), FORM).await;
    tokio::time::sleep(STEADY).await;

    // phase: cut the follower off; a write through it times out at its client
    let cut_at = Instant::now();
    blocking(|| cluster.disconnect(follower));
    let late_write = blocking(|| {
        cluster.exec_cli_with_timeout(
            follower,
            "1s",
            &[
                "breaker",
                "open",
                "chaos/late-write",
                "--reason",
                "sent through a cut-off node",
            ],
        )
    });
    assert!(
        late_write.is_err(),
        "a write through the cut-off node was acknowledged: {late_write:?}"
    );
    tokio::time::sleep((cut_at + FOLLOWER_CUT).saturating_duration_since(Instant::now())).await;

    // phase: reconnect; the follower applies the majority's commit index within REJOIN
    let target = monitor.max_commit_index();
    let reconnected_at = Instant::now();
    blocking(|| cluster.reconnect(follower));
    let deadline = reconnected_at + REJOIN;
    loop {
        let status = blocking(|| cluster.exec_status(follower)).unwrap_or_default();
        if status["applied_index"].as_u64().unwrap_or(0) >= target {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {follower} did not catch up to index {target} within {REJOIN:?}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let caught_up_at = Instant::now();
    tokio::time::sleep(STEADY).await;

    // phase: the leader did not change, and the late write never committed
    let new_leader = monitor.new_leader_after(reconnected_at, Some(leader));
    assert_eq!(
        new_leader, None,
        "the returning follower changed the leader"
    );
    let elections_after: Vec<_> = monitor
        .elections()
        .into_iter()
        .filter(|(_, end)| *end >= reconnected_at)
        .collect();
    assert!(
        elections_after.is_empty(),
        "an election after the heal: {elections_after:?}"
    );
    let log = writer.finish().await;
    let mut admin = load::admin(&cluster.node(leader).grpc, Duration::from_secs(3));
    let keys = breaker_keys(&mut admin, false)
        .await
        .expect("a linearizable read");
    assert_no_acknowledged_write_lost(&log, &keys);
    assert!(
        !keys.iter().any(|k| k == "chaos/late-write"),
        "a write that timed out at its client committed after the heal"
    );
    report(
        "partition-follower",
        &[
            (
                "cut follower",
                format!("node {follower} for {FOLLOWER_CUT:?}; leader node {leader}"),
            ),
            (
                "caught up after reconnect (includes docker connect/exec)",
                ms(caught_up_at - reconnected_at),
            ),
            (
                "longest gap between acknowledged writes after the heal",
                ms(log.longest_gap(reconnected_at, caught_up_at + STEADY)),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_and_starting_every_node_keeps_the_state() {
    // Goal: SIGTERM every node (a graceful stop, exit code 0), start them again from their
    // volumes: a leader is elected and every acknowledged write is still there.
    let Some(_serial) = begin().await else { return };
    let cluster = ContainerCluster::start("stopall", docker::image(), 3);
    let monitor = Monitor::start(&cluster.ids_and_endpoints());
    let (_, leader) = monitor.wait_new_leader(Instant::now(), None, FORM).await;

    // phase: write some state
    let writer = AdminWriter::start(&cluster.endpoints());
    writer.wait_ack_after(Instant::now(), FORM).await;
    tokio::time::sleep(STEADY).await;
    let log = writer.finish().await;
    assert!(log.refused.is_empty(), "writes refused: {:?}", log.refused);
    let mut admin = load::admin(&cluster.node(leader).grpc, Duration::from_secs(3));
    let keys_before = breaker_keys(&mut admin, false).await.expect("keys");
    let term_before = local_status(&mut admin).await.expect("status").term;

    // phase: stop every node at once, gracefully
    let stops: Vec<(u64, i64, Duration)> = blocking(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = cluster
                .nodes
                .keys()
                .map(|id| {
                    let cluster = &cluster;
                    scope.spawn(move || {
                        let (code, took) = cluster.stop(*id);
                        (*id, code, took)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("stop thread"))
                .collect()
        })
    });
    for (id, code, _) in &stops {
        assert_eq!(*code, 0, "node {id} did not shut down cleanly on SIGTERM");
    }

    // phase: start them all again; the state is intact on every node
    let started_at = Instant::now();
    blocking(|| {
        for id in cluster.nodes.keys() {
            cluster.start_node(*id);
        }
    });
    let (elected_at, new_leader) = monitor.wait_new_leader(started_at, None, FORM).await;
    for id in cluster.nodes.keys() {
        wait_caught_up(&cluster, *id, log.last_index(), FORM).await;
    }
    let caught_up_at = Instant::now();
    let mut admin = load::admin(&cluster.node(new_leader).grpc, Duration::from_secs(3));
    let keys_after = breaker_keys(&mut admin, false).await.expect("keys");
    assert_eq!(
        keys_after, keys_before,
        "the breakers changed across the restart"
    );
    assert_no_acknowledged_write_lost(&log, &keys_after);
    for node in cluster.nodes.values() {
        let mut local = load::admin(&node.grpc, Duration::from_secs(3));
        let keys = breaker_keys(&mut local, true).await.expect("local keys");
        assert_eq!(keys, keys_before, "node {} lost state", node.id);
    }
    // With pre-vote on, the old leader may restore its committed leadership at start-up
    // (openraft's leader restore) before any follower's pre-vote succeeds: the term is then
    // unchanged and the leader is the same node. Any other leader must come from an election.
    let term_after = local_status(&mut admin).await.expect("status").term;
    assert!(
        term_after > term_before || (term_after == term_before && new_leader == leader),
        "term {term_before} -> {term_after} with leader {leader} -> {new_leader}: \
         a new leader needs a new term, and the term never goes back"
    );

    report(
        "stop-start-all",
        &[
            (
                "graceful stop (SIGTERM → exit 0)",
                stops
                    .iter()
                    .map(|(id, _, took)| format!("node {id} {}", ms(*took)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("start → leader elected", ms(elected_at - started_at)),
            (
                "start → every node caught up",
                ms(caught_up_at - started_at),
            ),
            (
                "state",
                format!(
                    "{} breakers intact on every node; term {term_before} → {term_after}",
                    keys_after.len()
                ),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_refuses_no_write_outside_failover_windows() {
    // Goal: restart the nodes one at a time (SIGTERM, start, wait until caught up) under SDK
    // load and admin writes: writes are refused only in failover windows (the restarted
    // node led and no new leader was elected yet, or an election was under way); nothing
    // acknowledged is lost; every node stops cleanly.
    let Some(_serial) = begin().await else { return };
    let cluster = ContainerCluster::start("rolling", docker::image(), 3);
    let monitor = Monitor::start(&cluster.ids_and_endpoints());
    monitor.wait_new_leader(Instant::now(), None, FORM).await;

    // phase: steady load
    let fleet = SdkFleet::start(&cluster.endpoints(), 3, &[]);
    fleet.wait_cluster_mode(FORM).await;
    let writer = AdminWriter::start(&cluster.endpoints());
    writer.wait_ack_after(Instant::now(), FORM).await;
    tokio::time::sleep(STEADY).await;
    let decisions_before = fleet.decisions();

    // phase: restart each node in turn
    let mut windows: Vec<(Instant, Instant)> = Vec::new();
    let mut lines: Vec<(&str, String)> = Vec::new();
    let mut exit_codes: Vec<(u64, i64)> = Vec::new();
    let mut leader_restarts = 0;
    for id in cluster.nodes.keys().copied().collect::<Vec<_>>() {
        let leader = monitor
            .current_leader()
            .expect("a leader before each restart");
        let was_leader = id == leader;
        let stopped_at = Instant::now();
        let (code, took) = blocking(|| cluster.stop(id));
        // Checked at the end, so that a slow or unclean stop still lets the windows be measured.
        exit_codes.push((id, code));
        let mut line = format!(
            "node {id} ({}): stop {} (exit {code})",
            if was_leader { "leader" } else { "follower" },
            ms(took)
        );
        if was_leader {
            leader_restarts += 1;
            // The failover window: from the stop until writes are acknowledged again.
            let (elected_at, new_leader) = monitor
                .wait_new_leader(stopped_at, Some(id), ELECTION)
                .await;
            let first_ack = writer.wait_ack_after(elected_at, ELECTION).await;
            windows.push((stopped_at, first_ack));
            line += &format!(
                ", new leader node {new_leader} after {}, writes acknowledged again after {}",
                ms(elected_at - stopped_at),
                ms(first_ack - stopped_at)
            );
        }
        let restarted_at = Instant::now();
        blocking(|| cluster.start_node(id));
        wait_caught_up(&cluster, id, writer.log().last_index(), FORM).await;
        line += &format!(", back and caught up in {}", ms(restarted_at.elapsed()));
        lines.push(("restart", line));
        tokio::time::sleep(STEADY).await;
    }

    // phase: no write refused outside the failover windows, none lost, SDKs decided throughout
    let log = writer.finish().await;
    // Every election is a failover window too, whatever caused it (a restarted follower
    // that times out before hearing from the leader can call one), until writes are
    // acknowledged again.
    let elections = monitor.elections();
    for (from, to) in &elections {
        let until = log.first_ack_after(*to).unwrap_or_else(Instant::now);
        windows.push((*from, until));
    }
    let outside = log.refused_outside(&windows);
    lines.push((
        "elections",
        format!(
            "{} ({} restarts of a leader)",
            elections.len(),
            leader_restarts
        ),
    ));
    lines.push((
        "admin writes",
        format!(
            "{} acknowledged; {} refused, {} of them outside the failover windows",
            log.acked.len(),
            log.refused.len(),
            outside.len()
        ),
    ));
    let (slowest, pause) = fleet.slowest_and_longest_pause();
    lines.push((
        "SDK decisions",
        format!("slowest {slowest:?}; longest pause {pause:?}"),
    ));
    report("rolling-restart", &lines);
    assert!(
        outside.is_empty(),
        "{} admin writes were refused outside the failover windows: {:?}",
        outside.len(),
        outside.iter().take(5).map(|(_, e)| e).collect::<Vec<_>>()
    );
    let leader = monitor
        .current_leader()
        .expect("a leader after the restarts");
    let mut admin = load::admin(&cluster.node(leader).grpc, Duration::from_secs(3));
    let keys = breaker_keys(&mut admin, false)
        .await
        .expect("a linearizable read");
    assert_no_acknowledged_write_lost(&log, &keys);
    assert_sdk_kept_deciding(&fleet, &decisions_before);
    fleet.wait_cluster_mode(SDK_CONVERGENCE).await;

    // phase: every node stopped cleanly on SIGTERM (exit 0), with SDK watch streams open; 137
    // means `docker stop` gave up waiting and killed it
    assert!(
        exit_codes.iter().all(|(_, code)| *code == 0),
        "nodes did not shut down cleanly on SIGTERM under SDK load (id, exit code): {exit_codes:?}"
    );
}
