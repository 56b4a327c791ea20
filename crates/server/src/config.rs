//! Node configuration: the names and defaults of DESIGN §6, loadable from TOML.
//!
//! The CLI merges, in rising precedence, defaults < the `--config` TOML file < environment
//! (`SWITCHYARD_*`) < flags, and hands the node one validated [`NodeConfig`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything a node needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id in the cluster (>= 1).
    pub node_id: u64,
    /// Directory of the node's sled database.
    pub data_dir: PathBuf,
    /// gRPC listen address (client, admin, raft and health services).
    pub grpc_addr: String,
    /// HTTP listen address (metrics, health, JSON API, dashboard).
    pub http_addr: String,
    /// The address peers and forwarded calls use to reach this node; defaults to `grpc_addr`.
    pub advertise_addr: Option<String>,
    /// Initial membership, `id -> host:port`; empty means a single-node cluster.
    pub peers: BTreeMap<u64, String>,
    /// Never initialize a cluster, whatever `peers` says: on a fresh data directory, wait to
    /// be added by an existing cluster (`members add-learner`, then `members promote`). For a
    /// node that replaces a member whose disk was lost, or any node joining later.
    pub join: bool,
    /// How often the leader batches reports into one `Tick` entry.
    pub tick_interval_ms: u64,
    /// Raft heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one, once the log since then
    /// is at least as large as that snapshot (see `switchyard_store::SnapshotSchedule`).
    pub snapshot_every_entries: u64,
    /// Build a snapshot after this many bytes of log since the last one, whatever the entry
    /// count (fleet ticks are large entries), with the same condition.
    pub snapshot_log_bytes_max: u64,
    /// Entries kept in the log behind the latest snapshot (lets slightly-behind followers catch
    /// up without a snapshot).
    pub log_entries_kept_after_snapshot: u64,
    /// Limits that protect the node from callers.
    pub limits: Limits,
    /// The Linux PSI file whose `some` stall time is this node's CPU pressure (see
    /// `cpu_pressure`); by default the node's cgroup v2 `cpu.pressure`, else
    /// `/proc/pressure/cpu`.
    pub cpu_pressure_file: Option<PathBuf>,
    /// Bind a non-loopback address without tokens (development only).
    pub insecure: bool,
    /// PEM certificate chain this node presents on its gRPC port (client, admin and Raft
    /// traffic); with `tls_key`, turns TLS on. Also presented to peers as a client
    /// certificate when `tls_client_ca` is set.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) this node trusts when it connects to its peers over TLS.
    pub tls_ca: Option<PathBuf>,
    /// PEM CA certificate(s) that sign peers' client certificates: Raft and forwarded calls
    /// must then present one (mTLS). Clients and operators may still connect without one.
    pub tls_client_ca: Option<PathBuf>,
    /// Require the viewer (or admin) token on `/metrics` too; by default it is open, like
    /// `/healthz` and `/readyz`, so a scraper needs no credentials.
    pub metrics_require_token: bool,
    /// Serve HTTP in plaintext although gRPC serves TLS. Refused on a non-loopback HTTP address
    /// unless `insecure` is set.
    pub http_plaintext: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            data_dir: PathBuf::from("./data"),
            grpc_addr: "127.0.0.1:7070".into(),
            http_addr: "127.0.0.1:7080".into(),
            advertise_addr: None,
            peers: BTreeMap::new(),
            join: false,
            tick_interval_ms: 100,
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 120,
            election_timeout_max_ms: 240,
            snapshot_every_entries: 5_000,
            snapshot_log_bytes_max: 64 * 1024 * 1024,
            log_entries_kept_after_snapshot: 1_000,
            limits: Limits::default(),
            insecure: false,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            tls_client_ca: None,
            cpu_pressure_file: None,
            metrics_require_token: false,
            http_plaintext: false,
        }
    }
}

/// Per-node limits. Over a limit a call gets `ResourceExhausted` and the node keeps serving
/// everyone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Deltas in one Report call.
    pub report_deltas_max: u32,
    /// Deltas waiting on the leader for the next tick; beyond it reports are refused.
    pub pending_deltas_max: u32,
    /// Report calls per second from one instance id.
    pub report_rate_per_instance_max: u32,
    /// Concurrent Watch streams served by this node.
    pub watch_streams_max: u32,
    /// Largest gRPC message accepted, in bytes.
    pub message_bytes_max: u32,
    /// Largest audit page returned by one query.
    pub audit_page_max: u32,
    /// Largest snapshot accepted from a leader, in bytes.
    pub snapshot_bytes_max: u64,
    /// Share of time (percent) this node's tasks may wait for a CPU, smoothed over about half a
    /// second, before the node asks the fleet for coarser reports (back-pressure, never a
    /// refusal; see `report_pacing`). 0 turns the CPU signal off.
    pub cpu_pressure_max_percent: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            report_deltas_max: 10_000,
            pending_deltas_max: 500_000,
            report_rate_per_instance_max: 100,
            watch_streams_max: 4_096,
            message_bytes_max: 8 * 1024 * 1024,
            audit_page_max: switchyard_core::AUDIT_QUERY_MAX_LIMIT,
            snapshot_bytes_max: 1024 * 1024 * 1024,
            cpu_pressure_max_percent: 85,
        }
    }
}

/// A configuration value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {rule}")]
pub struct ConfigError {
    /// The offending setting.
    pub field: String,
    /// What it must be.
    pub rule: String,
}

fn err(field: &str, rule: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        rule: rule.into(),
    }
}

impl NodeConfig {
    /// Whether the gRPC port serves TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// Whether the HTTP port serves TLS: with gRPC, unless `http_plaintext`.
    pub fn http_tls_enabled(&self) -> bool {
        self.tls_enabled() && !self.http_plaintext
    }

    /// The TLS settings must come as a set: a certificate with its key, and a CA to verify
    /// peers with (a TLS node reaches its peers over https too).
    fn validate_tls(&self) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(err("tls_key", "must be set when tls_cert is set")),
            (None, Some(_)) => return Err(err("tls_cert", "must be set when tls_key is set")),
            _ => {}
        }
        if self.tls_cert.is_none() {
            for (field, value) in [
                ("tls_ca", &self.tls_ca),
                ("tls_client_ca", &self.tls_client_ca),
            ] {
                if value.is_some() {
                    return Err(err(
                        field,
                        "needs tls_cert and tls_key (this node must serve TLS itself)",
                    ));
                }
            }
        } else if self.tls_ca.is_none() {
            return Err(err(
                "tls_ca",
                "must be set when tls_cert is set: peers are reached over TLS and verified \
                 against this CA",
            ));
        }
        let http_loopback = self
            .http_addr
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        if self.tls_enabled() && self.http_plaintext && !http_loopback && !self.insecure {
            return Err(err(
                "http_plaintext",
                format!(
                    "gRPC serves TLS, so HTTP on the non-loopback address {} must too: drop \
                     http_plaintext, bind HTTP to 127.0.0.1, or pass --insecure",
                    self.http_addr
                ),
            ));
        }
        Ok(())
    }

    /// The address peers use to reach this node.
    pub fn advertised(&self) -> &str {
        self.advertise_addr.as_deref().unwrap_or(&self.grpc_addr)
    }

    /// Checks every field; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id == 0 {
            return Err(err("node_id", "must be >= 1"));
        }
        if self.grpc_addr.parse::<SocketAddr>().is_err() {
            return Err(err(
                "grpc_addr",
                format!("must be IP:PORT, got {:?}", self.grpc_addr),
            ));
        }
        if self.http_addr.parse::<SocketAddr>().is_err() {
            return Err(err(
                "http_addr",
                format!("must be IP:PORT, got {:?}", self.http_addr),
            ));
        }
        for (id, addr) in &self.peers {
            if *id == 0 {
                return Err(err("peers", "node ids must be >= 1"));
            }
            if addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(err(
                    "peers",
                    format!("peer {id} address {addr:?} must be HOST:PORT"),
                ));
            }
        }
        if !self.peers.is_empty() && !self.peers.contains_key(&self.node_id) {
            return Err(err(
                "peers",
                format!(
                    "must include this node's own id {} when given",
                    self.node_id
                ),
            ));
        }
        if !(10..=60_000).contains(&self.tick_interval_ms) {
            return Err(err("tick_interval_ms", "must be between 10 and 60000"));
        }
        if !(10..=10_000).contains(&self.heartbeat_interval_ms) {
            return Err(err("heartbeat_interval_ms", "must be between 10 and 10000"));
        }
        if self.election_timeout_min_ms <= self.heartbeat_interval_ms * 2 {
            return Err(err(
                "election_timeout_min_ms",
                "must be more than twice heartbeat_interval_ms",
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(err(
                "election_timeout_max_ms",
                "must be above election_timeout_min_ms",
            ));
        }
        if self.snapshot_every_entries == 0 {
            return Err(err("snapshot_every_entries", "must be >= 1"));
        }
        if self.snapshot_log_bytes_max < 1024 {
            return Err(err("snapshot_log_bytes_max", "must be >= 1024"));
        }
        self.validate_tls()?;
        let l = &self.limits;
        for (field, value) in [
            ("limits.report_deltas_max", u64::from(l.report_deltas_max)),
            ("limits.pending_deltas_max", u64::from(l.pending_deltas_max)),
            (
                "limits.report_rate_per_instance_max",
                u64::from(l.report_rate_per_instance_max),
            ),
            ("limits.watch_streams_max", u64::from(l.watch_streams_max)),
            ("limits.audit_page_max", u64::from(l.audit_page_max)),
        ] {
            if value == 0 {
                return Err(err(field, "must be >= 1"));
            }
        }
        if l.audit_page_max > switchyard_core::AUDIT_QUERY_MAX_LIMIT {
            return Err(err(
                "limits.audit_page_max",
                format!("must be at most {}", switchyard_core::AUDIT_QUERY_MAX_LIMIT),
            ));
        }
        if l.cpu_pressure_max_percent > 100 {
            return Err(err(
                "limits.cpu_pressure_max_percent",
                "must be at most 100 (a share of time; 0 turns it off)",
            ));
        }
        if l.message_bytes_max < 64 * 1024 {
            return Err(err(
                "limits.message_bytes_max",
                "must be at least 65536 bytes",
            ));
        }
        Ok(())
    }

    /// Whether either listen address is outside the loopback range.
    pub fn binds_non_loopback(&self) -> bool {
        [&self.grpc_addr, &self.http_addr].iter().any(|a| {
            a.parse::<SocketAddr>()
                .map(|s| !s.ip().is_loopback())
                .unwrap_or(true)
        })
    }
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut peers = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| err("peers", format!("{part:?} must be ID=HOST:PORT")))?;
        let id: u64 = id.trim().parse().map_err(|_| {
            err(
                "peers",
                format!("{id:?} is not a node id (a positive integer)"),
            )
        })?;
        if peers.insert(id, addr.trim().to_string()).is_some() {
            return Err(err("peers", format!("node id {id} appears twice")));
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_contract() {
        let c = NodeConfig::default();
        c.validate().unwrap();
        assert_eq!(c.grpc_addr, "127.0.0.1:7070");
        assert_eq!(c.http_addr, "127.0.0.1:7080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.tick_interval_ms, 100);
        assert!(!c.binds_non_loopback());
    }

    #[test]
    fn peers_parse_and_reject_bad_input() {
        let p = parse_peers("1=127.0.0.1:7071, 2=127.0.0.1:7072").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[&2], "127.0.0.1:7072");
        assert!(
            parse_peers("1:127.0.0.1:7071")
                .unwrap_err()
                .to_string()
                .contains("ID=HOST:PORT")
        );
        assert!(parse_peers("x=a:1").is_err());
        assert!(
            parse_peers("1=a:1,1=b:2")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = NodeConfig {
            node_id: 0,
            ..NodeConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "node_id");
        c.node_id = 3;
        c.peers = parse_peers("1=a:1,2=b:2").unwrap();
        assert_eq!(c.validate().unwrap_err().field, "peers");
        c.peers.clear();
        c.election_timeout_max_ms = 10;
        assert_eq!(c.validate().unwrap_err().field, "election_timeout_max_ms");
        c.election_timeout_min_ms = 60;
        assert_eq!(c.validate().unwrap_err().field, "election_timeout_min_ms");
        let c = NodeConfig {
            grpc_addr: "nope".into(),
            ..NodeConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "grpc_addr");
        for (bytes, ok) in [(1023, false), (1024, true)] {
            let c = NodeConfig {
                snapshot_log_bytes_max: bytes,
                ..NodeConfig::default()
            };
            match c.validate() {
                Ok(()) => assert!(ok, "{bytes} accepted"),
                Err(e) => {
                    assert!(!ok, "{bytes} refused: {e}");
                    assert_eq!(e.field, "snapshot_log_bytes_max");
                }
            }
        }
        let toml_err = toml::from_str::<NodeConfig>("tick_intervl_ms = 5").unwrap_err();
        assert!(
            toml_err.to_string().contains("tick_intervl_ms"),
            "{toml_err}"
        );
    }

    #[test]
    fn tls_settings_come_as_a_set() {
        let with = |cert: bool, key: bool, ca: bool, client_ca: bool| NodeConfig {
            tls_cert: cert.then(|| PathBuf::from("node.pem")),
            tls_key: key.then(|| PathBuf::from("node.key")),
            tls_ca: ca.then(|| PathBuf::from("ca.pem")),
            tls_client_ca: client_ca.then(|| PathBuf::from("ca.pem")),
            ..NodeConfig::default()
        };
        with(false, false, false, false).validate().unwrap();
        with(true, true, true, false).validate().unwrap();
        with(true, true, true, true).validate().unwrap();
        assert_eq!(
            with(true, false, true, false).validate().unwrap_err().field,
            "tls_key"
        );
        assert_eq!(
            with(false, true, false, false)
                .validate()
                .unwrap_err()
                .field,
            "tls_cert"
        );
        assert_eq!(
            with(true, true, false, false).validate().unwrap_err().field,
            "tls_ca"
        );
        assert_eq!(
            with(false, false, true, false)
                .validate()
                .unwrap_err()
                .field,
            "tls_ca"
        );
        let e = with(false, false, false, true).validate().unwrap_err();
        assert_eq!(e.field, "tls_client_ca");
        assert!(e.to_string().contains("tls_cert"), "{e}");
        let parsed: NodeConfig = toml::from_str(
            "tls_cert = \"a.pem\"\ntls_key = \"a.key\"\ntls_ca = \"ca.pem\"\ntls_client_ca = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(parsed.tls_client_ca, Some(PathBuf::from("ca.pem")));
    }
}
