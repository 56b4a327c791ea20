//! `switchyard bench partitions`: how fast a node cut off the network rejoins after the heal.
//!
//! Each node runs in its own Linux network namespace, attached to a private bridge; this
//! process reaches every node through the bridge's own address, which no cut blocks. A cut is
//! an iptables chain in the node's namespace that drops what the node exchanges with its peers
//! (both ways, or inbound only for one-way loss); the heal flushes it. Needs root, `ip` and
//! `iptables`; everything created is removed on exit.
//!
//! Each scenario runs under a steady write load through the majority's leader. At the heal it
//! reads the commit index of the majority's leader; the rejoin time is how long until the
//! cut-off node has applied that index. Also reported: whether the leader changed because of
//! the node's return, and the longest gap without an acknowledged write after the heal.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use switchyard_proto::admin::admin_client::AdminClient;
use switchyard_proto::admin::{StatusRequest, StatusResponse};
use tokio::sync::Mutex;

use super::cluster::{BenchCluster, NodeSpec, connect};
use super::override_writers::{self, WriteLog};
use super::progress;
use crate::output::Table;

/// `switchyard bench partitions`
#[derive(Debug, Clone, Args)]
pub struct PartitionsArgs {
    /// Cuts to run, comma-separated: follower-7s, follower-30s, follower-120s, leader-10s,
    /// one-way-5s.
    #[arg(
        long,
        default_value = "follower-7s,follower-30s,follower-120s,leader-10s,one-way-5s"
    )]
    pub cuts: String,
    /// Concurrent writers keeping the log moving.
    #[arg(long, default_value_t = 4)]
    pub writers: u32,
    /// Print the results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// One kind of cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutKind {
    /// A follower loses its peers both ways.
    Follower,
    /// The leader loses its peers both ways.
    Leader,
    /// A follower receives nothing from its peers, but can still send.
    OneWay,
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct CutResult {
    /// The scenario's name.
    pub cut: String,
    /// The kind of cut.
    pub kind: CutKind,
    /// How long the node was cut off, s.
    pub cut_s: u64,
    /// The node cut off.
    pub node: u64,
    /// From the heal until the node applied the majority leader's commit index at the heal, ms.
    pub rejoin_ms: f64,
    /// The leader before the heal and after the node's return.
    pub leader_before: u64,
    /// The leader after.
    pub leader_after: u64,
    /// Longest time without an acknowledged write in the 3 s after the heal, ms.
    pub write_gap_after_heal_ms: f64,
    /// Entries the node had to apply at the heal: the target commit index minus its applied
    /// index.
    pub behind_at_heal: u64,
    /// Entries between the leader's newest snapshot and the target at the heal: what a node
    /// that needs a snapshot replays after installing it (0 if the leader has none).
    pub tail_after_snapshot: u64,
    /// From the heal until the node's applied index first moved, ms: the reconnect (and, when
    /// it needs one, the snapshot install); the rest of `rejoin_ms` is replaying entries.
    pub first_progress_ms: f64,
}

/// Subnet of the bench's bridge; `.254` is this process, `.N` node N.
const SUBNET: &str = "10.213.7";

fn sh(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The namespaces, bridge and veth pairs; removed on drop.
struct Netns {
    tag: String,
    n: u64,
}

impl Netns {
    fn ns(&self, id: u64) -> String {
        format!("{}n{id}", self.tag)
    }

    fn create(n: u64) -> anyhow::Result<Self> {
        let tag = format!("sy{}", std::process::id() % 100_000);
        let net = Self { tag, n };
        let bridge = format!("{}br", net.tag);
        sh("ip", &["link", "add", &bridge, "type", "bridge"])
            .context("creating a bridge (bench partitions needs root)")?;
        sh(
            "ip",
            &["addr", "add", &format!("{SUBNET}.254/24"), "dev", &bridge],
        )?;
        sh("ip", &["link", "set", &bridge, "up"])?;
        // With bridge netfilter loaded (docker loads it, and sets FORWARD's policy to DROP),
        // traffic between the namespaces crosses the host's FORWARD chain.
        sh(
            "iptables",
            &[
                "-I", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT",
            ],
        )?;
        for id in 1..=n {
            let ns = net.ns(id);
            let host = format!("{}v{id}", net.tag);
            sh("ip", &["netns", "add", &ns])?;
            sh(
                "ip",
                &[
                    "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            sh("ip", &["link", "set", &host, "master", &bridge, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", ns.as_str()];
                all.extend_from_slice(args);
                sh("ip", &all)
            };
            inside(&[
                "ip",
                "addr",
                "add",
                &format!("{SUBNET}.{id}/24"),
                "dev",
                "eth0",
            ])?;
            inside(&["ip", "link", "set", "eth0", "up"])?;
            inside(&["ip", "link", "set", "lo", "up"])?;
            // The cut chain: empty (nothing dropped) until a cut fills it.
            inside(&["iptables", "-N", "SYCUT"])?;
            inside(&["iptables", "-I", "INPUT", "-j", "SYCUT"])?;
            inside(&["iptables", "-N", "SYCUT_OUT"])?;
            inside(&["iptables", "-I", "OUTPUT", "-j", "SYCUT_OUT"])?;
        }
        Ok(net)
    }

    fn iptables(&self, id: u64, args: &[&str]) -> anyhow::Result<()> {
        let ns = self.ns(id);
        let mut all = vec!["netns", "exec", ns.as_str(), "iptables"];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// Drops node `id`'s traffic with its peers: inbound, and outbound unless `one_way`.
    fn cut(&self, id: u64, one_way: bool) -> anyhow::Result<()> {
        let me = format!("{SUBNET}.254");
        let subnet = format!("{SUBNET}.0/24");
        self.iptables(id, &["-A", "SYCUT", "-s", &me, "-j", "RETURN"])?;
        self.iptables(id, &["-A", "SYCUT", "-s", &subnet, "-j", "DROP"])?;
        if !one_way {
            self.iptables(id, &["-A", "SYCUT_OUT", "-d", &me, "-j", "RETURN"])?;
            self.iptables(id, &["-A", "SYCUT_OUT", "-d", &subnet, "-j", "DROP"])?;
        }
        Ok(())
    }

    fn heal(&self, id: u64) -> anyhow::Result<()> {
        self.iptables(id, &["-F", "SYCUT"])?;
        self.iptables(id, &["-F", "SYCUT_OUT"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for id in 1..=self.n {
            let _ = sh("ip", &["netns", "del", &self.ns(id)]);
        }
        let bridge = format!("{}br", self.tag);
        let _ = sh(
            "iptables",
            &[
                "-D", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT",
            ],
        );
        let _ = sh("ip", &["link", "del", &bridge]);
    }
}

fn parse_cut(cut: &str) -> anyhow::Result<(CutKind, u64)> {
    let (kind, seconds) = cut
        .trim()
        .rsplit_once('-')
        .with_context(|| format!("--cuts: {cut:?} is not KIND-SECONDSs"))?;
    let kind = match kind {
        "follower" => CutKind::Follower,
        "leader" => CutKind::Leader,
        "one-way" => CutKind::OneWay,
        other => anyhow::bail!("--cuts: unknown kind {other:?} (follower, leader, one-way)"),
    };
    let seconds: u64 = seconds
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .filter(|s| (1..=600).contains(s))
        .with_context(|| format!("--cuts: {cut:?} needs 1s..600s"))?;
    Ok((kind, seconds))
}

async fn status(addr: &str) -> Option<StatusResponse> {
    let mut admin = AdminClient::new(connect(addr).await.ok()?);
    let mut request = tonic::Request::new(StatusRequest { local: true });
    request.set_timeout(Duration::from_millis(300));
    Some(admin.status(request).await.ok()?.into_inner())
}

/// The leader the nodes other than `excluded` agree on.
async fn majority_leader(cluster: &BenchCluster, excluded: u64) -> Option<(u64, StatusResponse)> {
    for node in cluster.nodes.iter().filter(|n| n.id != excluded) {
        if let Some(s) = status(&node.grpc_addr).await
            && s.leader_id == Some(s.node_id)
        {
            return Some((s.node_id, s));
        }
    }
    None
}

/// Runs the harness.
pub async fn run(args: PartitionsArgs) -> anyhow::Result<()> {
    let cuts: Vec<(String, CutKind, u64)> = args
        .cuts
        .split(',')
        .filter(|c| !c.trim().is_empty())
        .map(|c| parse_cut(c).map(|(k, s)| (c.trim().to_string(), k, s)))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!cuts.is_empty(), "--cuts: name at least one cut");
    anyhow::ensure!(
        (1..=64).contains(&args.writers),
        "--writers: between 1 and 64"
    );
    progress("creating network namespaces");
    let net = Netns::create(3)?;
    let specs = (1..=3)
        .map(|id| NodeSpec {
            grpc_addr: format!("{SUBNET}.{id}:7070"),
            http_addr: format!("{SUBNET}.{id}:7080"),
            wrapper: vec!["ip".into(), "netns".into(), "exec".into(), net.ns(id)],
            // A private bridge only this host reaches; no tokens needed.
            extra_args: vec!["--insecure".into()],
        })
        .collect();
    progress("starting a 3-node cluster, one node per namespace");
    let cluster = BenchCluster::start_with(specs).await?;
    let log: Arc<Mutex<WriteLog>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let timeout = Duration::from_millis(500);
    let writers = override_writers::start(
        cluster.endpoints(),
        args.writers,
        "partition",
        timeout,
        &stop,
        &log,
    );
    let mut results = Vec::new();
    for (name, kind, seconds) in cuts {
        let result = one_cut(&cluster, &net, &log, &name, kind, seconds).await;
        match result {
            Ok(r) => {
                progress(format!(
                    "{name}: node {} rejoined {:.0} ms after the heal ({} entries behind, first progress after {:.0} ms, {} entries since the leader's snapshot); leader {} -> {}; longest write gap after the heal {:.0} ms",
                    r.node,
                    r.rejoin_ms,
                    r.behind_at_heal,
                    r.first_progress_ms,
                    r.tail_after_snapshot,
                    r.leader_before,
                    r.leader_after,
                    r.write_gap_after_heal_ms
                ));
                results.push(r);
            }
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err(e.context(format!("scenario {name}")));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        let mut table = Table::new(&[
            "CUT",
            "NODE",
            "REJOIN MS",
            "BEHIND",
            "FIRST PROGRESS MS",
            "SINCE SNAPSHOT",
            "LEADER BEFORE",
            "LEADER AFTER",
            "WRITE GAP AFTER HEAL MS",
        ]);
        for r in &results {
            table.row(vec![
                r.cut.clone(),
                r.node.to_string(),
                format!("{:.0}", r.rejoin_ms),
                r.behind_at_heal.to_string(),
                format!("{:.0}", r.first_progress_ms),
                r.tail_after_snapshot.to_string(),
                r.leader_before.to_string(),
                r.leader_after.to_string(),
                format!("{:.0}", r.write_gap_after_heal_ms),
            ]);
        }
        print!("{}", table.render());
    }
    Ok(())
}

async fn one_cut(
    cluster: &BenchCluster,
    net: &Netns,
    log: &Arc<Mutex<WriteLog>>,
    name: &str,
    kind: CutKind,
    seconds: u64,
) -> anyhow::Result<CutResult> {
    let (leader, _) = cluster.wait_leader(Duration::from_secs(30)).await?;
    let node = match kind {
        CutKind::Leader => leader,
        CutKind::Follower | CutKind::OneWay => cluster
            .nodes
            .iter()
            .map(|n| n.id)
            .find(|id| *id != leader)
            .context("no follower")?,
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    progress(format!("{name}: cutting node {node} for {seconds} s"));
    net.cut(node, kind == CutKind::OneWay)?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (leader_before, _) = majority_leader(cluster, node)
        .await
        .context("the majority has no leader at the heal")?;
    net.heal(node)?;
    let healed = Instant::now();
    // The commit index to reach: the majority leader's, read right after the heal.
    let (target, leader_snapshot) = majority_leader(cluster, node)
        .await
        .map(|(_, s)| (s.commit_index, s.snapshot_index.unwrap_or(0)))
        .context("the majority has no leader after the heal")?;
    let addr = cluster.nodes[(node - 1) as usize].grpc_addr.clone();
    let mut applied_at_heal = None;
    let mut first_progress = None;
    let rejoin = loop {
        if let Some(s) = status(&addr).await {
            let at_heal = *applied_at_heal.get_or_insert(s.applied_index);
            if first_progress.is_none() && s.applied_index > at_heal {
                first_progress = Some(healed.elapsed());
            }
            if s.applied_index >= target {
                break healed.elapsed();
            }
        }
        anyhow::ensure!(
            healed.elapsed() < Duration::from_secs(60),
            "node {node} did not catch up to index {target} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(healed.elapsed())).await;
    let (leader_after, _) = cluster.wait_leader(Duration::from_secs(30)).await?;
    let window_end = healed + Duration::from_secs(3);
    let mut gap = Duration::ZERO;
    let mut previous = healed;
    let acked = log.lock().await.acked_at();
    for at in acked
        .iter()
        .filter(|at| **at > healed && **at <= window_end)
    {
        gap = gap.max(*at - previous);
        previous = *at;
    }
    gap = gap.max(window_end.saturating_duration_since(previous));
    Ok(CutResult {
        cut: name.to_string(),
        kind,
        cut_s: seconds,
        node,
        rejoin_ms: rejoin.as_secs_f64() * 1000.0,
        leader_before,
        leader_after,
        write_gap_after_heal_ms: gap.as_secs_f64() * 1000.0,
        behind_at_heal: target.saturating_sub(applied_at_heal.unwrap_or(0)),
        tail_after_snapshot: target.saturating_sub(leader_snapshot),
        first_progress_ms: first_progress.unwrap_or(rejoin).as_secs_f64() * 1000.0,
    })
}
