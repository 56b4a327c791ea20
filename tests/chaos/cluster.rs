//! A Switchyard cluster of containers on a private docker network, one fixed IP per node,
//! each node's data on its own named volume, and each node's gRPC port published on a
//! loopback port of the host (the test process reaches the nodes there, as SDKs outside the
//! network would).
//!
//! ```text
//!   test process ──127.0.0.1:P1──▶ node 1 (172.31.N.11) ─┐
//!                ──127.0.0.1:P2──▶ node 2 (172.31.N.12) ─┼─ network sychaos-<pid>-<test>
//!                ──127.0.0.1:P3──▶ node 3 (172.31.N.13) ─┘
//! ```
//!
//! Dropping the cluster removes its containers, network and volumes; when the test is
//! failing, the nodes' logs are printed first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::docker::{OWNER_LABEL, container_logs, docker, docker_ok};
use crate::support::free_port;

/// The tokens the nodes run with: binding a non-loopback address needs them (DESIGN §8).
pub const ADMIN_TOKEN: &str = "chaos-admin-token";
const CLUSTER_TOKEN: &str = "chaos-cluster-token";

/// One node container.
#[derive(Debug)]
pub struct NodeContainer {
    /// Node id.
    pub id: u64,
    /// Container name.
    pub name: String,
    /// Fixed IP on the cluster network.
    pub ip: String,
    /// gRPC address on the host, `127.0.0.1:PORT`.
    pub grpc: String,
}

/// A cluster of node containers.
#[derive(Debug)]
pub struct ContainerCluster {
    /// Name prefix of everything this cluster created; also the network's name.
    pub network: String,
    /// Nodes by id.
    pub nodes: BTreeMap<u64, NodeContainer>,
    volumes: Vec<String>,
}

impl ContainerCluster {
    /// Creates the network and starts `n` nodes that form a cluster from their peers list.
    pub fn start(test: &str, image: &str, n: u64) -> Self {
        let network = format!("sychaos-{}-{test}", std::process::id());
        let owner = format!("{OWNER_LABEL}={}", std::process::id());
        let prefix = create_network(&network, &owner);
        let mut cluster = Self {
            network,
            nodes: BTreeMap::new(),
            volumes: Vec::new(),
        };
        let ips: BTreeMap<u64, String> = (1..=n)
            .map(|id| (id, format!("{prefix}.{}", 10 + id)))
            .collect();
        let peers = ips
            .iter()
            .map(|(id, ip)| format!("{id}={ip}:7070"))
            .collect::<Vec<_>>()
            .join(",");
        for (id, ip) in ips {
            let name = format!("{}-node{id}", cluster.network);
            let volume = format!("{name}-data");
            docker_ok(&["volume", "create", "--label", &owner, &volume]);
            cluster.volumes.push(volume.clone());
            let grpc_port = free_port();
            let env = [
                format!("SWITCHYARD_NODE_ID={id}"),
                format!("SWITCHYARD_PEERS={peers}"),
                format!("SWITCHYARD_ADVERTISE_ADDR={ip}:7070"),
                format!("SWITCHYARD_ADMIN_TOKEN={ADMIN_TOKEN}"),
                format!("SWITCHYARD_CLUSTER_TOKEN={CLUSTER_TOKEN}"),
                "RUST_LOG=info,openraft=warn".to_string(),
            ];
            let mut args: Vec<String> = [
                "run",
                "--detach",
                "--name",
                &name,
                "--hostname",
                &format!("node{id}"),
                "--label",
                &owner,
                "--network",
                &cluster.network,
                "--ip",
                &ip,
                "--publish",
                &format!("127.0.0.1:{grpc_port}:7070"),
                "--volume",
                &format!("{volume}:/data"),
                // `docker stop` sends SIGTERM and waits this long for the graceful shutdown.
                "--stop-timeout",
                "20",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            for var in &env {
                args.push("--env".into());
                args.push(var.clone());
            }
            args.push(image.to_string());
            args.push("serve".into());
            docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
            cluster.nodes.insert(
                id,
                NodeContainer {
                    id,
                    name,
                    ip,
                    grpc: format!("127.0.0.1:{grpc_port}"),
                },
            );
        }
        cluster
    }

    /// The nodes' host endpoints, comma-separated, for SDKs and the admin writer.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.grpc.clone()).collect()
    }

    /// Every node's id and host gRPC address.
    pub fn ids_and_endpoints(&self) -> Vec<(u64, String)> {
        self.nodes
            .values()
            .map(|n| (n.id, n.grpc.clone()))
            .collect()
    }

    /// The container of node `id`.
    pub fn node(&self, id: u64) -> &NodeContainer {
        &self.nodes[&id]
    }

    /// SIGKILL: the process gets no chance to flush or say goodbye.
    pub fn kill(&self, id: u64) {
        docker_ok(&["kill", "--signal", "KILL", &self.node(id).name]);
    }

    /// SIGTERM and wait for the graceful shutdown; returns the exit code and how long it took.
    pub fn stop(&self, id: u64) -> (i64, Duration) {
        let started = Instant::now();
        docker_ok(&["stop", &self.node(id).name]);
        (self.exit_code(id), started.elapsed())
    }

    /// Starts a stopped (or killed) node again, from its volume.
    pub fn start_node(&self, id: u64) {
        docker_ok(&["start", &self.node(id).name]);
    }

    /// The exit code of a stopped container.
    pub fn exit_code(&self, id: u64) -> i64 {
        docker_ok(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            &self.node(id).name,
        ])
        .parse()
        .expect("an exit code")
    }

    /// Cuts node `id` off the cluster network: it keeps running but reaches no one, and no one
    /// (peers, SDKs, this test) reaches it.
    pub fn disconnect(&self, id: u64) {
        docker_ok(&["network", "disconnect", &self.network, &self.node(id).name]);
    }

    /// Reconnects node `id` with its old IP (its address in the Raft membership).
    pub fn reconnect(&self, id: u64) {
        let node = self.node(id);
        docker_ok(&[
            "network",
            "connect",
            "--ip",
            &node.ip,
            &self.network,
            &node.name,
        ]);
    }

    /// Runs the `switchyard` CLI inside node `id`'s container against its own loopback gRPC
    /// address. This still works while the node is cut off from the network, so the test can
    /// watch what the isolated node believes. The container's admin token applies.
    pub fn exec_cli(&self, id: u64, args: &[&str]) -> Result<String, String> {
        self.exec_cli_with_timeout(id, "2s", args)
    }

    /// [`Self::exec_cli`] with the CLI's per-call `--timeout`.
    pub fn exec_cli_with_timeout(
        &self,
        id: u64,
        timeout: &str,
        args: &[&str],
    ) -> Result<String, String> {
        let mut full = vec![
            "exec",
            self.node(id).name.as_str(),
            "/switchyard",
            "--endpoints",
            "127.0.0.1:7070",
            "--timeout",
            timeout,
        ];
        full.extend_from_slice(args);
        docker(&full)
    }

    /// Node `id`'s own view (`status --local --json`), read from inside its container.
    pub fn exec_status(&self, id: u64) -> Result<serde_json::Value, String> {
        let text = self.exec_cli(id, &["--local", "--json", "status"])?;
        serde_json::from_str(&text).map_err(|e| format!("status --json: {e}: {text}"))
    }

    /// The last lines of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .values()
            .map(|n| {
                format!(
                    "--- node {} ({}) ---\n{}",
                    n.id,
                    n.name,
                    container_logs(&n.name, 40)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ContainerCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let names: Vec<&str> = self.nodes.values().map(|n| n.name.as_str()).collect();
        if !names.is_empty() {
            let mut args = vec!["rm", "--force", "--volumes"];
            args.extend(names);
            let _ = docker(&args);
        }
        let _ = docker(&["network", "rm", &self.network]);
        for volume in &self.volumes {
            let _ = docker(&["volume", "rm", "--force", volume]);
        }
    }
}

/// Creates the network on the first free `172.31.N.0/24` and returns `172.31.N`. Trying
/// subnets one by one (instead of letting docker choose) is what gives every node a fixed IP
/// known before it starts: its address in the peers list.
fn create_network(name: &str, owner: &str) -> String {
    let mut last_error = String::new();
    for third in 100..=250 {
        let prefix = format!("172.31.{third}");
        let subnet = format!("{prefix}.0/24");
        match docker(&[
            "network", "create", "--driver", "bridge", "--subnet", &subnet, "--label", owner, name,
        ]) {
            Ok(_) => return prefix,
            Err(e) => last_error = e,
        }
    }
    panic!("no free subnet for the chaos network: {last_error}")
}
