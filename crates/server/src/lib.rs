//! The Switchyard node: a Raft-replicated coordinator of circuit-breaker state and degradation
//! tiers.
//!
//! - [`config`]: [`NodeConfig`], the node's settings and limits.
//! - [`clock`] / [`transport`]: injected wall-clock time and peer connections, so the same code
//!   runs on tokio TCP in production and on turmoil in simulation.
//! - [`auth`]: admin, client and cluster tokens.
//! - [`tls`]: rustls on the gRPC port and towards peers, with optional mTLS for Raft.
//! - [`deadline`]: the caller's `grpc-timeout` as a deadline, carried across the forwarding hop.
//! - [`trace_context`]: request ids and W3C trace context: accepted, generated, carried into the
//!   log and across the forwarding hop.
//! - [`network`]: Raft RPCs to peers over tonic.
//! - [`node`]: [`Node`], the Raft instance and the operations services call (writes with
//!   forwarding, linearizable reads, reports, membership).
//! - [`raft_runtime`]: dedicated threads for Raft, so busy request handling cannot delay
//!   heartbeats.
//! - [`ingest`]: the leader's report buffer that becomes one `Tick` entry per tick.
//! - [`forward`]: what followers hand to the leader.
//! - [`watch`]: decision streams served from each node's applied state.
//! - [`services`]: the gRPC client, admin and raft services.
//! - [`http`] / [`metrics`]: health, readiness, Prometheus metrics, the JSON API and the
//!   dashboard.
//! - [`rpc_metrics`]: per-RPC latency histograms, a tower layer on the gRPC server.
//! - [`response_date`]: the `date` header of gRPC responses, from the node's clock (so the
//!   simulation's bytes on the wire never depend on the machine's clock).
//! - [`serve`]: [`run`], which wires a node to its listeners until shutdown.
//! - [`error`]: [`NodeError`] and its one conversion to `tonic::Status`.

pub mod auth;
pub mod clock;
pub mod config;
pub mod cpu_pressure;
pub mod deadline;
pub mod error;
pub mod forward;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod network;
pub mod node;
pub mod raft_runtime;
pub mod report_pacing;
pub mod response_date;
pub mod rpc_metrics;
pub mod runtime_lag;
pub mod serve;
pub mod services;
pub mod tls;
pub mod trace_context;
pub mod transport;
pub mod watch;

pub use clock::{Clock, SystemClock};
pub use config::{Limits, NodeConfig};
pub use error::NodeError;
pub use node::{Node, NodeDeps};
pub use serve::{run, run_with_tls, serve_node};
pub use tls::{TlsConnector, TlsMaterial, TlsState};
pub use transport::{Connector, TcpConnector};
