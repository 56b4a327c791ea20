//! The gRPC services of a node.
//!
//! - [`client`]: what SDKs call (Report, Watch, AcquireProbe, ReleaseProbe).
//! - [`report_route`]: the client service as served, Report read by `ReportWire`.
//! - [`admin`]: what operators call through the CLI.
//! - [`raft`]: what peers call (Raft RPCs and forwarded requests).

pub mod admin;
pub mod client;
pub mod raft;
pub mod report_route;

pub use admin::AdminService;
pub use client::ClientService;
pub use raft::RaftService;
pub use report_route::ClientRoutes;
