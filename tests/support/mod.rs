//! Shared helpers for integration tests: real `switchyard` node processes on loopback ports,
//! each with its own sled directory, driven over real gRPC.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_proto::admin::admin_client::AdminClient;
use switchyard_proto::admin::{self as apb};
use switchyard_proto::client::client_client::ClientClient;
use tonic::transport::Channel;

/// The `switchyard` binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

/// A free loopback port (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("addr")
        .port()
}

/// One node process.
#[derive(Debug)]
pub struct NodeProc {
    /// Node id.
    pub id: u64,
    /// gRPC address.
    pub grpc: String,
    /// HTTP address.
    pub http: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The running process, if any.
    pub child: Option<Child>,
    /// Extra `serve` arguments.
    pub extra_args: Vec<String>,
    /// Peers passed with `--peers`.
    pub peers: String,
    /// Environment set on the process after the token variables are removed (e.g. a
    /// `SWITCHYARD_ADMIN_TOKEN` for a test of authentication).
    pub env: Vec<(String, String)>,
    log_path: PathBuf,
}

impl NodeProc {
    /// Starts (or restarts) the process from its data directory.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open node log");
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--node-id")
            .arg(self.id.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--grpc-addr")
            .arg(&self.grpc)
            .arg("--http-addr")
            .arg(&self.http)
            .args(&self.extra_args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if !self.peers.is_empty() {
            cmd.arg("--peers").arg(&self.peers);
        }
        for var in [
            "SWITCHYARD_ADMIN_TOKEN",
            "SWITCHYARD_CLIENT_TOKEN",
            "SWITCHYARD_CLUSTER_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        self.child = Some(cmd.spawn().expect("spawn switchyard serve"));
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of node processes in a temporary directory.
#[derive(Debug)]
pub struct Cluster {
    /// Nodes by id.
    pub nodes: BTreeMap<u64, NodeProc>,
    /// Keeps the data directories alive.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes that form a cluster from their `--peers` list, with extra `serve` args.
    pub fn start(n: u64, extra_args: &[&str]) -> Self {
        Self::start_with_env(n, extra_args, &[])
    }

    /// Like [`Cluster::start`], with environment variables set on every node process.
    pub fn start_with_env(n: u64, extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let peers = ports
            .iter()
            .enumerate()
            .map(|(i, (g, _))| format!("{}=127.0.0.1:{g}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = BTreeMap::new();
        for (i, (g, h)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let mut node = new_node(dir.path(), id, *g, *h, extra_args);
            node.peers = if n > 1 { peers.clone() } else { String::new() };
            node.env = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            node.start();
            nodes.insert(id, node);
        }
        Self { nodes, dir }
    }

    /// Adds a fresh node process that does not initialize anything (it waits to be added).
    pub fn spawn_joiner(&mut self, id: u64, extra_args: &[&str]) -> String {
        let (g, h) = (free_port(), free_port());
        let mut node = new_node(self.dir.path(), id, g, h, extra_args);
        // `--join`: the fresh node never forms a cluster of its own; it waits for the leader
        // to contact it.
        node.extra_args.push("--join".into());
        node.start();
        let addr = node.grpc.clone();
        self.nodes.insert(id, node);
        addr
    }

    /// The comma-separated gRPC endpoints of the running nodes.
    pub fn endpoints(&self) -> String {
        self.nodes
            .values()
            .filter(|n| n.child.is_some())
            .map(|n| n.grpc.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until some running node reports itself leader and returns its id.
    pub async fn wait_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            for node in self.nodes.values().filter(|n| n.child.is_some()) {
                if let Ok(status) = status(&node.grpc, true).await
                    && status.leader_id == Some(status.node_id)
                {
                    return status.node_id;
                }
            }
            if Instant::now() > deadline {
                panic!("no leader within {timeout:?}; logs:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// All node logs, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .values()
            .map(|n| format!("--- node {} ---\n{}", n.id, tail(&n.log(), 60)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn new_node(dir: &Path, id: u64, grpc: u16, http: u16, extra_args: &[&str]) -> NodeProc {
    NodeProc {
        id,
        grpc: format!("127.0.0.1:{grpc}"),
        http: format!("127.0.0.1:{http}"),
        data_dir: dir.join(format!("node-{id}")),
        child: None,
        extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        peers: String::new(),
        env: Vec::new(),
        log_path: dir.join(format!("node-{id}.log")),
    }
}

/// A channel to `addr` that fails fast when the node is down.
pub async fn channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

/// An admin client for `addr`.
pub async fn admin(addr: &str) -> AdminClient<Channel> {
    AdminClient::new(channel(addr).await.expect("connect admin"))
}

/// An admin client for `addr`, or `None` while the node is not accepting connections.
pub async fn try_admin(addr: &str) -> Option<AdminClient<Channel>> {
    channel(addr).await.ok().map(AdminClient::new)
}

/// A client-service client for `addr`.
pub async fn client(addr: &str) -> ClientClient<Channel> {
    ClientClient::new(channel(addr).await.expect("connect client"))
}

/// The node's status (`local` = its own view, no read barrier).
pub async fn status(addr: &str, local: bool) -> Result<apb::StatusResponse, tonic::Status> {
    let channel = channel(addr)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut admin = AdminClient::new(channel);
    Ok(admin
        .status(apb::StatusRequest { local })
        .await?
        .into_inner())
}

/// Retries `f` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /metrics` on `http` (plain HTTP/1.1, read to the end), or `None` if the node does not
/// answer within `read_timeout` (a stopped or cut-off node).
pub fn try_scrape_within(http: &str, read_timeout: Duration) -> Option<String> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(http).ok()?;
    tcp.set_read_timeout(Some(read_timeout)).ok()?;
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    tcp.read_to_string(&mut out).ok()?;
    Some(out)
}

/// `GET /metrics` on `http`, or `None` if the node does not answer within a second.
pub fn try_scrape(http: &str) -> Option<String> {
    try_scrape_within(http, Duration::from_secs(1))
}

/// `GET /metrics` on a node that must answer.
pub fn scrape(http: &str) -> String {
    try_scrape_within(http, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("GET /metrics on {http} failed"))
}

/// The sum of the samples of `name` whose labels contain `label_part`.
pub fn metric_f64(text: &str, name: &str, label_part: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|l| l.contains(label_part))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
}

/// [`metric_f64`] of a counter, as a whole number.
pub fn metric(text: &str, name: &str, label_part: &str) -> u64 {
    metric_f64(text, name, label_part) as u64
}
