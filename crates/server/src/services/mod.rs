//! The gRPC services of a node.
//!
//! - [`client`]: what SDKs call (Report, Watch, AcquireProbe, ReleaseProbe).
//! - [`admin`]: what operators call through the CLI.
//! - [`raft`]: what peers call (Raft RPCs and forwarded requests).

pub mod admin;
pub mod client;
pub mod raft;

pub use admin::AdminService;
pub use client::ClientService;
pub use raft::RaftService;
