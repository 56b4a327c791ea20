//! The command line (DESIGN §6): every command, flag and default that users and tests rely on.
//!
//! Parsing only; each command group's behaviour lives in its own module. Values that have a
//! domain type (durations, tiers, SLA windows) are checked here, so a typo fails before any
//! network call with a message that says what to type instead.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration_ms;

/// Default admin endpoint: the default `serve` gRPC address.
pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7070";

/// `switchyard`: run a node or a local cluster, or operate a running cluster.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, propagate_version = true)]
pub struct Cli {
    /// Options shared by the operator commands.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every command (used by the operator commands).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Admin endpoints, comma-separated `host:port`, tried in order.
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_ENDPOINTS",
        value_name = "HOST:PORT,...",
        default_value = DEFAULT_ENDPOINTS
    )]
    pub endpoints: String,
    /// Print machine-readable JSON on stdout instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Read this node's applied state (possibly stale, answered without a leader) instead of
    /// a linearizable read. Writes ignore it.
    #[arg(long, global = true)]
    pub local: bool,
    /// Deadline of each admin call, e.g. `5s`.
    #[arg(
        long = "timeout",
        global = true,
        value_name = "DURATION",
        default_value = "5s",
        value_parser = duration_arg
    )]
    pub timeout_ms: u64,
    /// PEM CA certificate(s) to verify nodes with: turns TLS on towards the cluster
    /// (`https://`). For `serve`, the CA its peers are verified with. [env: SWITCHYARD_TLS_CA]
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Request id sent with every call of this command (`x-request-id`), recorded in the audit
    /// events it causes and printed on any error; default: a fresh UUID-shaped id.
    /// 1 to 128 characters of [A-Za-z0-9._-].
    #[arg(long, global = true, value_name = "ID", value_parser = request_id_arg)]
    pub request_id: Option<String>,
    /// PEM client certificate presented to nodes (operator commands; needs --tls-ca).
    /// [env: SWITCHYARD_TLS_CLIENT_CERT]
    #[arg(long, global = true, value_name = "FILE", requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM private key of --tls-client-cert. [env: SWITCHYARD_TLS_CLIENT_KEY]
    #[arg(long, global = true, value_name = "FILE", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
}

impl Command {
    /// Whether this is an operator command (one that calls the admin API with a request id).
    pub fn is_operator(&self) -> bool {
        !matches!(
            self,
            Command::Serve(_) | Command::LocalCluster(_) | Command::Demo(_) | Command::Bench(_)
        )
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node.
    Serve(Box<ServeArgs>),
    /// Run a real N-node cluster on loopback (gRPC 7071.., HTTP 7081..) until Ctrl-C.
    LocalCluster(LocalClusterArgs),
    /// Cluster overview: members, leader, term, indexes.
    Status,
    /// Inspect and override breakers.
    #[command(subcommand)]
    Breaker(BreakerCommand),
    /// Manage breaker policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Inspect and override degradation tiers; manage tier rules.
    #[command(subcommand)]
    Tier(TierCommand),
    /// Query the audit log.
    Audit(AuditArgs),
    /// Service-level reports per breaker.
    Sla(SlaArgs),
    /// Inspect and change the cluster membership.
    #[command(subcommand)]
    Members(MembersCommand),
    /// A local cluster, a simulated fleet and a dependency that fails and recovers, live.
    Demo(crate::demo::DemoArgs),
    /// Benchmarks that print a table (and `--json`): sdk, ingest, writes, failover,
    /// fleet, stability, partitions.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
}

/// `switchyard serve`: flags override the environment, which overrides `--config`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with node settings (lowest precedence after the defaults).
    #[arg(long, value_name = "FILE", env = "SWITCHYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id (>= 1). [env: SWITCHYARD_NODE_ID] [default: 1]
    #[arg(long, value_name = "N")]
    pub node_id: Option<u64>,
    /// Data directory. [env: SWITCHYARD_DATA_DIR] [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address. [env: SWITCHYARD_GRPC_ADDR] [default: 127.0.0.1:7070]
    #[arg(long, value_name = "ADDR")]
    pub grpc_addr: Option<String>,
    /// HTTP listen address. [env: SWITCHYARD_HTTP_ADDR] [default: 127.0.0.1:7080]
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// Initial membership `1=HOST:PORT,2=HOST:PORT,...`; none = single-node cluster.
    /// [env: SWITCHYARD_PEERS]
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    pub peers: Option<String>,
    /// Address peers and clients use to reach this node [default: the gRPC address].
    /// [env: SWITCHYARD_ADVERTISE_ADDR]
    #[arg(long, value_name = "ADDR")]
    pub advertise_addr: Option<String>,
    /// Never initialize a cluster: on an empty data directory, wait to be added by an
    /// existing cluster (`members add-learner`, then `members promote`). Use it for a node
    /// that replaces a member whose disk was lost. [env: SWITCHYARD_JOIN=true]
    #[arg(long)]
    pub join: bool,
    /// Allow binding a non-loopback address without tokens (development only).
    /// [env: SWITCHYARD_INSECURE=true]
    #[arg(long)]
    pub insecure: bool,
    /// Require the viewer (or admin) token on /metrics; by default /metrics, /healthz and
    /// /readyz are open. [env: SWITCHYARD_METRICS_REQUIRE_TOKEN=true]
    #[arg(long)]
    pub metrics_require_token: bool,
    /// Serve HTTP in plaintext even when gRPC serves TLS (refused on a non-loopback HTTP
    /// address unless --insecure). [env: SWITCHYARD_HTTP_PLAINTEXT=true]
    #[arg(long)]
    pub http_plaintext: bool,
    /// File holding the admin token. Token and certificate files are read again on SIGHUP
    /// and when they change. [env: SWITCHYARD_ADMIN_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// File holding the read-only viewer token: HTTP reads and the dashboard, never a change.
    /// [env: SWITCHYARD_VIEWER_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub viewer_token_file: Option<PathBuf>,
    /// File holding the client (SDK) token. [env: SWITCHYARD_CLIENT_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub client_token_file: Option<PathBuf>,
    /// File holding the cluster (node-to-node) token. [env: SWITCHYARD_CLUSTER_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub cluster_token_file: Option<PathBuf>,
    /// PEM certificate chain served on the gRPC and HTTP ports; turns TLS on (needs
    /// --tls-key and --tls-ca). [env: SWITCHYARD_TLS_CERT]
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert. [env: SWITCHYARD_TLS_KEY]
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// mTLS: require Raft traffic from peers to present a client certificate signed by this
    /// CA (the node then presents --tls-cert to its peers). [env: SWITCHYARD_TLS_CLIENT_CA]
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Send this node's spans over OTLP/gRPC to this collector URL, e.g.
    /// `http://127.0.0.1:4317` (Grafana Tempo, Jaeger, an OpenTelemetry Collector). Off when
    /// unset. [env: OTEL_EXPORTER_OTLP_ENDPOINT]
    #[arg(
        long,
        value_name = "URL",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        hide_env = true
    )]
    pub otlp_endpoint: Option<String>,
    /// The CA peers are verified with: the global --tls-ca, copied here by `main`.
    #[arg(skip)]
    pub tls_ca: Option<PathBuf>,
    /// Node limits (config file: `[limits]`); over a limit a caller gets ResourceExhausted.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `serve --limit-*`: each overrides the field of the same name in the config's `[limits]`.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Deltas in one Report call [default: 10000].
    #[arg(long = "limit-report-deltas-max", value_name = "N")]
    pub report_deltas_max: Option<u32>,
    /// Deltas waiting on the leader for the next tick [default: 500000].
    #[arg(long = "limit-pending-deltas-max", value_name = "N")]
    pub pending_deltas_max: Option<u32>,
    /// Report calls per second from one instance id, counted on each node [default: 100].
    #[arg(long = "limit-report-rate-per-instance-max", value_name = "N")]
    pub report_rate_per_instance_max: Option<u32>,
    /// Concurrent Watch streams served by this node [default: 4096].
    #[arg(long = "limit-watch-streams-max", value_name = "N")]
    pub watch_streams_max: Option<u32>,
    /// Largest client or admin gRPC message, bytes (>= 65536) [default: 8388608].
    #[arg(long = "limit-message-bytes-max", value_name = "BYTES")]
    pub message_bytes_max: Option<u32>,
    /// Largest audit page one query may ask for [default: 1000].
    #[arg(long = "limit-audit-page-max", value_name = "N")]
    pub audit_page_max: Option<u32>,
    /// Largest snapshot accepted from a leader, bytes [default: 1073741824].
    #[arg(long = "limit-snapshot-bytes-max", value_name = "BYTES")]
    pub snapshot_bytes_max: Option<u64>,
    /// Percent of time this node's tasks may wait for a CPU before it asks the fleet for
    /// coarser reports; 0 turns it off [default: 85].
    #[arg(long = "limit-cpu-pressure-max-percent", value_name = "PERCENT")]
    pub cpu_pressure_max_percent: Option<u32>,
    /// The Linux PSI file to read CPU pressure from [default: the node's cgroup v2
    /// cpu.pressure, else /proc/pressure/cpu].
    #[arg(long = "cpu-pressure-file", value_name = "PATH")]
    pub cpu_pressure_file: Option<PathBuf>,
}

/// `switchyard local-cluster`.
#[derive(Debug, Clone, Args)]
pub struct LocalClusterArgs {
    /// Number of nodes (1-9).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub nodes: u8,
    /// Parent directory of the nodes' data directories and logs.
    #[arg(long, value_name = "DIR", default_value = "./data/local-cluster")]
    pub data_dir: PathBuf,
}

/// Why and for how long, shared by the override commands.
#[derive(Debug, Clone, Args)]
pub struct OverrideArgs {
    /// Breaker key, `scope/name`.
    pub key: String,
    /// Expire the override after this long (`500ms`, `30s`, `10m`, `2h`, `7d`); default: until
    /// cleared.
    #[arg(long = "for", value_name = "DURATION", value_parser = duration_arg)]
    pub for_ms: Option<u64>,
    /// Why; recorded in the audit log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// A key (or scope) and a reason, for writes without a duration.
#[derive(Debug, Clone, Args)]
pub struct KeyReasonArgs {
    /// The breaker key `scope/name` (or scope, where the command says so).
    pub key: String,
    /// Why; recorded in the audit log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `switchyard breaker ...`.
#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// List breakers, sorted by key.
    List {
        /// Only breakers of this scope.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Show one breaker: state, reason, window counts, override, policy.
    Get {
        /// Breaker key, `scope/name`.
        key: String,
    },
    /// Force the breaker OPEN: reject every call (FORCED_OPEN).
    Open(OverrideArgs),
    /// Force the breaker CLOSED: admit every call, never trip (FORCED_CLOSED).
    Close(OverrideArgs),
    /// Turn the breaker off: always allow, no transitions (DISABLED).
    Disable(OverrideArgs),
    /// Collect metrics but never trip (METRICS_ONLY).
    MetricsOnly(OverrideArgs),
    /// Clear any override and restart automatic control from CLOSED with an empty window.
    Reset(KeyReasonArgs),
    /// Clear the override only, keeping the window and history.
    Clear(KeyReasonArgs),
}

/// `switchyard policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Put the policies of a TOML or JSON file (one policy or a `[[policy]]` array), atomically.
    Put {
        /// The policy file (`.toml` or `.json`; other names are sniffed).
        file: PathBuf,
        /// Why; recorded in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Show the effective policy of a breaker `scope/name`, or a scope's default (`scope`).
    Get {
        /// `scope/name` or `scope`.
        key: String,
    },
    /// List every stored policy.
    List,
    /// Delete the policy of `scope/name`, or a scope's default (`scope`).
    Delete(KeyReasonArgs),
}

/// `switchyard tier ...`.
#[derive(Debug, Subcommand)]
pub enum TierCommand {
    /// Show a scope's tier, features and override.
    Get {
        /// The scope.
        scope: String,
    },
    /// List every scope's tier.
    List,
    /// Pin a scope's tier: 1-5 or FULL, DEGRADED, ESSENTIAL, READ_ONLY, MAINTENANCE.
    Set {
        /// The scope.
        scope: String,
        /// The tier: 1-5 or a name (any case).
        #[arg(value_parser = tier_arg)]
        tier: u32,
        /// Expire the override after this long; default: until cleared.
        #[arg(long = "for", value_name = "DURATION", value_parser = duration_arg)]
        for_ms: Option<u64>,
        /// Why; recorded in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Remove a scope's tier override; the rules decide again.
    Clear(KeyReasonArgs),
    /// A scope's tier rules and feature flags.
    #[command(subcommand)]
    Rules(TierRulesCommand),
}

/// `switchyard tier rules ...`.
#[derive(Debug, Subcommand)]
pub enum TierRulesCommand {
    /// Replace a scope's tier rules and features from a TOML or JSON file.
    Put {
        /// The tier rules file.
        file: PathBuf,
        /// Why; recorded in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Show a scope's tier rules and features.
    Get {
        /// The scope.
        scope: String,
    },
    /// Delete a scope's tier rules and features.
    Delete(KeyReasonArgs),
}

/// Output format of `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// An aligned table.
    Table,
    /// A JSON array.
    Json,
    /// CSV with a header row, for export.
    Csv,
}

/// `switchyard audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only events in the last DURATION (`30m`, `24h`, `7d`).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub since: Option<u64>,
    /// Only events about this breaker key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only events about this scope (or its breakers).
    #[arg(long)]
    pub scope: Option<String>,
    /// Only events by this actor: `operator:NAME` (or just `NAME`), `node:N`, `policy`,
    /// `instance:ID`.
    #[arg(long)]
    pub actor: Option<String>,
    /// Show at most this many events (oldest first).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,
    /// Output format; `--json` is the same as `--format json`.
    #[arg(long, value_enum)]
    pub format: Option<AuditFormat>,
}

/// `switchyard sla`.
#[derive(Debug, Clone, Args)]
pub struct SlaArgs {
    /// Report window: 24h, 7d, 30d or mtd (month to date, UTC).
    #[arg(long, default_value = "24h", value_parser = sla_window_arg)]
    pub window: String,
    /// One breaker; default every breaker.
    #[arg(long)]
    pub key: Option<String>,
}

/// `switchyard members ...`.
#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List members, their roles and the leader.
    List,
    /// Add a non-voting member; it catches up before it can be promoted.
    AddLearner {
        /// The new node's id (>= 1).
        id: u64,
        /// Its gRPC address, `host:port`.
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        /// The learner's node id.
        id: u64,
    },
    /// Remove a member (voter or learner).
    Remove {
        /// The member's node id.
        id: u64,
    },
}

/// clap value parser for durations.
fn duration_arg(text: &str) -> Result<u64, String> {
    parse_duration_ms(text)
}

/// clap value parser for tiers: `1`-`5` or a tier name in any case; returns the tier number.
pub fn tier_arg(text: &str) -> Result<u32, String> {
    switchyard_core::Tier::parse(text)
        .map(|tier| u32::from(tier.number()))
        .map_err(|_| {
            format!(
                "invalid tier {text:?}: use 1-5 or FULL, DEGRADED, ESSENTIAL, READ_ONLY, MAINTENANCE"
            )
        })
}

/// clap value parser for SLA windows; returns the canonical spelling.
fn sla_window_arg(text: &str) -> Result<String, String> {
    switchyard_core::SlaWindow::parse(text)
        .map(|w| w.as_str().to_string())
        .map_err(|_| format!("invalid window {text:?}: use 24h, 7d, 30d or mtd"))
}

/// `--request-id`: the rule every node applies (`switchyard_core::validate_request_id`).
fn request_id_arg(text: &str) -> Result<String, String> {
    switchyard_core::validate_request_id(text)
        .map(|()| text.to_string())
        .map_err(|e| e.rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tiers_parse_by_number_or_name_in_any_case() {
        assert_eq!(tier_arg("1"), Ok(1));
        assert_eq!(tier_arg("5"), Ok(5));
        assert_eq!(tier_arg("full"), Ok(1));
        assert_eq!(tier_arg("Degraded"), Ok(2));
        assert_eq!(tier_arg("ESSENTIAL"), Ok(3));
        assert_eq!(tier_arg("read_only"), Ok(4));
        assert_eq!(tier_arg("MAINTENANCE"), Ok(5));
        for bad in ["0", "6", "", "worst"] {
            assert!(tier_arg(bad).unwrap_err().contains("READ_ONLY"), "{bad:?}");
        }
    }

    #[test]
    fn override_flags_parse() {
        let cli = Cli::try_parse_from([
            "switchyard",
            "--endpoints",
            "a:1,b:2",
            "breaker",
            "open",
            "payments/x",
            "--for",
            "10m",
            "--reason",
            "test",
        ])
        .unwrap();
        assert_eq!(cli.global.endpoints, "a:1,b:2");
        match cli.command {
            Command::Breaker(BreakerCommand::Open(o)) => {
                assert_eq!(o.key, "payments/x");
                assert_eq!(o.for_ms, Some(600_000));
                assert_eq!(o.reason.as_deref(), Some("test"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = Cli::try_parse_from(["switchyard", "breaker", "open", "p/x", "--for", "10"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing unit"), "{err}");
    }

    #[test]
    fn read_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from(["switchyard", "sla", "--window", "7D", "--json", "--local"])
            .unwrap();
        assert!(cli.global.json && cli.global.local);
        match cli.command {
            Command::Sla(s) => assert_eq!(s.window, "7d"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["switchyard", "sla", "--window", "1y"]).is_err());
        let cli =
            Cli::try_parse_from(["switchyard", "tier", "set", "payments", "read_only"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Tier(TierCommand::Set { tier: 4, .. })
        ));
    }
}
