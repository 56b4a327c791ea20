//! `switchyard local-cluster`: a real N-node cluster on loopback, one child process per node.
//!
//! ```text
//!   switchyard local-cluster ──spawn──▶ switchyard serve --node-id 1 --grpc-addr 127.0.0.1:7071 ...
//!            │                 ├──────▶ switchyard serve --node-id 2 --grpc-addr 127.0.0.1:7072 ...
//!            │                 └──────▶ ...            (stdout+stderr → DIR/node-I.log)
//!            └── Ctrl-C / SIGTERM ──▶ kill -TERM each child, wait (bounded), then SIGKILL
//! ```
//!
//! Children are real processes of this same executable, so the cluster behaves exactly like a
//! deployed one (separate address spaces, real TCP, real crashes). Each child runs in its own
//! process group: a Ctrl-C in the terminal reaches only this parent, which then stops the
//! nodes in order, instead of racing them all with the same signal. Signals are sent with the
//! system `kill` command because the workspace forbids `unsafe` (and so `libc::kill`).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::args::LocalClusterArgs;
use crate::output::{Table, print_line, print_text};
use crate::serve::shutdown_signal;

/// First gRPC port; node I listens on `GRPC_PORT_BASE + I`.
const GRPC_PORT_BASE: u16 = 7070;
/// First HTTP port; node I listens on `HTTP_PORT_BASE + I`.
const HTTP_PORT_BASE: u16 = 7080;
/// How long the nodes get to open their gRPC ports before the cluster is reported as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the nodes get to stop after SIGTERM before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the children are checked for an unexpected exit.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Lines of a failed node's log shown.
const LOG_TAIL_LINES: usize = 15;

/// One node of the local cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Node id, 1..=N.
    pub id: u64,
    /// gRPC address.
    pub grpc_addr: String,
    /// HTTP address.
    pub http_addr: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log file (the child's stdout and stderr).
    pub log_file: PathBuf,
}

/// The nodes of an `nodes`-node cluster under `dir`.
pub fn plan(nodes: u8, dir: &Path) -> Vec<NodeSpec> {
    (1..=nodes)
        .map(|i| NodeSpec {
            id: u64::from(i),
            grpc_addr: format!("127.0.0.1:{}", GRPC_PORT_BASE + u16::from(i)),
            http_addr: format!("127.0.0.1:{}", HTTP_PORT_BASE + u16::from(i)),
            data_dir: dir.join(format!("node-{i}")),
            log_file: dir.join(format!("node-{i}.log")),
        })
        .collect()
}

/// `1=127.0.0.1:7071,2=...`: the initial membership every node is given.
pub fn peers_arg(nodes: &[NodeSpec]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}={}", n.id, n.grpc_addr))
        .collect::<Vec<_>>()
        .join(",")
}

/// `127.0.0.1:7071,...`: the endpoints for operator commands.
pub fn endpoints(nodes: &[NodeSpec]) -> String {
    nodes
        .iter()
        .map(|n| n.grpc_addr.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

struct Running {
    spec: NodeSpec,
    child: Child,
    exited: Option<ExitStatus>,
}

/// Runs `switchyard local-cluster` until Ctrl-C or SIGTERM, or until a node exits.
pub async fn run(args: LocalClusterArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this executable to start the nodes")?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create --data-dir {}", args.data_dir.display()))?;
    let nodes = plan(args.nodes, &args.data_dir);
    for node in &nodes {
        for addr in [&node.grpc_addr, &node.http_addr] {
            // Probe the ports first: a clear message beats N node logs saying the same.
            std::net::TcpListener::bind(addr).with_context(|| {
                format!(
                    "node {}'s address {addr} is not free: is another local-cluster or node running?",
                    node.id
                )
            })?;
        }
    }
    // Installed before spawning, so a Ctrl-C during start-up still stops every child.
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);

    let peers = peers_arg(&nodes);
    let mut running: Vec<Running> = Vec::new();
    for spec in &nodes {
        match spawn(&exe, spec, &peers) {
            Ok(child) => running.push(Running {
                spec: spec.clone(),
                child,
                exited: None,
            }),
            Err(e) => {
                stop_all(&mut running).await;
                return Err(e);
            }
        }
    }

    let mut table = Table::new(&["NODE", "GRPC", "HTTP", "PID", "DATA DIR", "LOG"]);
    for r in &running {
        table.row(vec![
            r.spec.id.to_string(),
            r.spec.grpc_addr.clone(),
            r.spec.http_addr.clone(),
            r.child.id().to_string(),
            r.spec.data_dir.display().to_string(),
            r.spec.log_file.display().to_string(),
        ]);
    }
    print_text(&table.render());
    print_line("");
    print_line(&format!(
        "export SWITCHYARD_ENDPOINTS={}",
        endpoints(&nodes)
    ));
    print_line(&format!("dashboard: http://{}/", nodes[0].http_addr));
    print_line("press Ctrl-C to stop the cluster");

    let mut ready = false;
    let started = Instant::now();
    let outcome = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        if let Some(failure) = check_children(&mut running) {
            break Err(failure);
        }
        if !ready {
            if all_listening(&nodes) {
                ready = true;
                print_line(&format!("all {} nodes are listening", nodes.len()));
            } else if started.elapsed() > READY_TIMEOUT {
                break Err(anyhow::anyhow!(
                    "the nodes did not all open their gRPC ports within {}s; see the logs in {}",
                    READY_TIMEOUT.as_secs(),
                    args.data_dir.display()
                ));
            }
        }
    };
    print_line(&format!(
        "stopping {} node(s)...",
        running.iter().filter(|r| r.exited.is_none()).count()
    ));
    stop_all(&mut running).await;
    print_line("cluster stopped");
    outcome
}

fn spawn(exe: &Path, spec: &NodeSpec, peers: &str) -> anyhow::Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_file)
        .with_context(|| format!("cannot open log file {}", spec.log_file.display()))?;
    let log_err = log
        .try_clone()
        .context("cannot duplicate the log file handle")?;
    Command::new(exe)
        .arg("serve")
        .arg("--node-id")
        .arg(spec.id.to_string())
        .arg("--data-dir")
        .arg(&spec.data_dir)
        .arg("--grpc-addr")
        .arg(&spec.grpc_addr)
        .arg("--http-addr")
        .arg(&spec.http_addr)
        .arg("--peers")
        .arg(peers)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start node {} ({})", spec.id, exe.display()))
}

/// Checks for a node that exited by itself; returns the error describing the first one.
fn check_children(running: &mut [Running]) -> Option<anyhow::Error> {
    for r in running.iter_mut().filter(|r| r.exited.is_none()) {
        match r.child.try_wait() {
            Ok(Some(status)) => {
                r.exited = Some(status);
                return Some(anyhow::anyhow!(
                    "node {} (pid {}) exited on its own with {status}; stopping the others. \
                     Last lines of {}:\n{}",
                    r.spec.id,
                    r.child.id(),
                    r.spec.log_file.display(),
                    log_tail(&r.spec.log_file)
                ));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(node = r.spec.id, error = %e, "cannot poll child"),
        }
    }
    None
}

fn all_listening(nodes: &[NodeSpec]) -> bool {
    nodes.iter().all(|n| {
        n.grpc_addr
            .parse()
            .ok()
            .and_then(|addr| {
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()
            })
            .is_some()
    })
}

fn log_tail(path: &Path) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return "  (no log)".into();
    };
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends SIGTERM to every live child, waits up to [`STOP_TIMEOUT`], then kills the rest.
async fn stop_all(running: &mut [Running]) {
    for r in running.iter().filter(|r| r.exited.is_none()) {
        let pid = r.child.id().to_string();
        match Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::warn!(node = r.spec.id, %status, "kill -TERM failed"),
            Err(e) => tracing::warn!(node = r.spec.id, error = %e, "cannot run kill"),
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        for r in running.iter_mut().filter(|r| r.exited.is_none()) {
            if let Ok(Some(status)) = r.child.try_wait() {
                r.exited = Some(status);
                print_line(&format!("node {} stopped ({status})", r.spec.id));
            }
        }
        if running.iter().all(|r| r.exited.is_some()) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in running.iter_mut().filter(|r| r.exited.is_none()) {
        eprintln!(
            "node {} did not stop within {}s; killing it",
            r.spec.id,
            STOP_TIMEOUT.as_secs()
        );
        let _ = r.child.kill();
        r.exited = r.child.wait().ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_the_port_contract() {
        let nodes = plan(3, Path::new("/d"));
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].grpc_addr, "127.0.0.1:7071");
        assert_eq!(nodes[2].grpc_addr, "127.0.0.1:7073");
        assert_eq!(nodes[2].http_addr, "127.0.0.1:7083");
        assert_eq!(nodes[1].data_dir, PathBuf::from("/d/node-2"));
        assert_eq!(nodes[1].log_file, PathBuf::from("/d/node-2.log"));
        assert_eq!(
            peers_arg(&nodes),
            "1=127.0.0.1:7071,2=127.0.0.1:7072,3=127.0.0.1:7073"
        );
        assert_eq!(
            endpoints(&nodes),
            "127.0.0.1:7071,127.0.0.1:7072,127.0.0.1:7073"
        );
    }
}
