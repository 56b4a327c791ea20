//! A throwaway cluster of `switchyard serve` child processes on loopback ports, for benchmarks
//! and the demo. Killed (SIGKILL) on drop, data directories removed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use switchyard_proto::admin::StatusRequest;
use switchyard_proto::admin::admin_client::AdminClient;
use tonic::transport::{Channel, Endpoint};

/// One node process.
#[derive(Debug)]
pub struct BenchNode {
    /// Node id.
    pub id: u64,
    /// gRPC address.
    pub grpc_addr: String,
    /// HTTP address (metrics, dashboard).
    pub http_addr: String,
    data_dir: std::path::PathBuf,
    log_file: std::path::PathBuf,
    child: Option<Child>,
    /// A command the node runs under (e.g. `ip netns exec NS`); empty: none.
    wrapper: Vec<String>,
    /// Extra arguments to `serve`.
    extra_args: Vec<String>,
}

/// Where one node of [`BenchCluster::start_with`] runs.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// gRPC address, also advertised to peers.
    pub grpc_addr: String,
    /// HTTP address.
    pub http_addr: String,
    /// A command the node runs under (e.g. `ip netns exec NS`); empty: none.
    pub wrapper: Vec<String>,
    /// Extra arguments to `serve` (e.g. `--insecure` on a non-loopback address).
    pub extra_args: Vec<String>,
}

/// The cluster.
#[derive(Debug)]
pub struct BenchCluster {
    /// Its nodes, by position (id = position + 1).
    pub nodes: Vec<BenchNode>,
    peers: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A channel to `addr` that fails fast if nothing listens there.
pub async fn connect(addr: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_millis(300))
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// Where the nodes listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// Free ports picked by the OS.
    Free,
    /// The `local-cluster` ports: gRPC 7071.., HTTP 7081.. (predictable URLs for the demo).
    LocalCluster,
}

/// One spec per node id `1..=n`, listening on `ports`, with no wrapper or extra arguments.
fn specs_on(n: u8, ports: Ports) -> anyhow::Result<Vec<NodeSpec>> {
    (1..=u64::from(n))
        .map(|id| {
            let (grpc, http) = match ports {
                Ports::Free => (free_port()?, free_port()?),
                Ports::LocalCluster => (7070 + u16::from(id as u8), 7080 + u16::from(id as u8)),
            };
            Ok(NodeSpec {
                grpc_addr: format!("127.0.0.1:{grpc}"),
                http_addr: format!("127.0.0.1:{http}"),
                wrapper: Vec::new(),
                extra_args: Vec::new(),
            })
        })
        .collect()
}

impl BenchCluster {
    /// Starts `n` nodes on free ports that form one cluster, and waits for a leader.
    pub async fn start(n: u8) -> anyhow::Result<Self> {
        Self::start_on(n, Ports::Free).await
    }

    /// Starts `n` nodes on free ports that form one cluster, each reading `config_toml` as its
    /// config file (`serve --config`, below the flags the launcher passes), and waits for a
    /// leader. The file lives in the cluster's directory, so a restarted node reads it again.
    pub async fn start_configured(n: u8, config_toml: &str) -> anyhow::Result<Self> {
        Self::launch(specs_on(n, Ports::Free)?, Some(config_toml)).await
    }

    /// Starts `n` nodes listening on `ports`, and waits for a leader.
    pub async fn start_on(n: u8, ports: Ports) -> anyhow::Result<Self> {
        Self::start_with(specs_on(n, ports)?).await
    }

    /// Starts one node per spec (ids 1, 2, ...) that form one cluster, and waits for a leader.
    pub async fn start_with(specs: Vec<NodeSpec>) -> anyhow::Result<Self> {
        Self::launch(specs, None).await
    }

    async fn launch(specs: Vec<NodeSpec>, config_toml: Option<&str>) -> anyhow::Result<Self> {
        let n = specs.len();
        let dir = tempfile::Builder::new().prefix("switchyard-").tempdir()?;
        let config_args = match config_toml {
            Some(text) => {
                let path = dir.path().join("node.toml");
                std::fs::write(&path, text).context("cannot write the nodes' config file")?;
                let path = path
                    .to_str()
                    .context("the cluster directory is not UTF-8")?;
                vec!["--config".to_string(), path.to_string()]
            }
            None => Vec::new(),
        };
        let nodes: Vec<BenchNode> = specs
            .into_iter()
            .zip(1u64..)
            .map(|(spec, id)| BenchNode {
                id,
                grpc_addr: spec.grpc_addr,
                http_addr: spec.http_addr,
                data_dir: dir.path().join(format!("node-{id}")),
                log_file: dir.path().join(format!("node-{id}.log")),
                child: None,
                wrapper: spec.wrapper,
                extra_args: config_args
                    .iter()
                    .chain(&spec.extra_args)
                    .cloned()
                    .collect(),
            })
            .collect();
        let peers = if n > 1 {
            nodes
                .iter()
                .map(|x| format!("{}={}", x.id, x.grpc_addr))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::new()
        };
        let mut cluster = Self {
            nodes,
            peers,
            _dir: dir,
        };
        for id in 1..=n as u64 {
            cluster.start_node(id)?;
        }
        cluster.wait_leader(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    fn node(&mut self, id: u64) -> &mut BenchNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// (Re)starts node `id` from its data directory.
    pub fn start_node(&mut self, id: u64) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let peers = self.peers.clone();
        let node = self.node(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_file)?;
        let mut cmd = match node.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        cmd.arg("serve")
            .arg("--node-id")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--grpc-addr")
            .arg(&node.grpc_addr)
            .arg("--http-addr")
            .arg(&node.http_addr)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if !peers.is_empty() {
            cmd.arg("--peers").arg(peers);
        }
        cmd.args(&node.extra_args);
        node.child = Some(cmd.spawn().context("cannot start a node")?);
        Ok(())
    }

    /// SIGKILL node `id`.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.node(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id of node `id`, if running.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes[(id - 1) as usize].child.as_ref().map(Child::id)
    }

    /// The gRPC addresses of all nodes.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.grpc_addr.clone()).collect()
    }

    /// Waits until a running node reports itself leader; returns (id, address).
    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<(u64, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                if let Ok(channel) = connect(&node.grpc_addr).await {
                    let mut admin = AdminClient::new(channel);
                    if let Ok(s) = admin.status(StatusRequest { local: true }).await {
                        let s = s.into_inner();
                        if s.leader_id == Some(s.node_id) {
                            return Ok((s.node_id, node.grpc_addr.clone()));
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "no leader within {timeout:?}; node logs are in {}",
                    self.log_dir().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_dir(&self) -> &Path {
        self._dir.path()
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports in clock ticks; USER_HZ is 100 on every mainstream Linux build.
    Some((utime + stime) / 100.0)
}

/// Resident memory of a process in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
