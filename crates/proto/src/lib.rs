//! Switchyard's wire contract: generated tonic/prost code for the `.proto`
//! files in `<workspace>/proto`, plus conversions between wire and domain types.
//!
//! Modules:
//! - [`client`]: `switchyard.client.v1`, the SDK-facing `Client` service
//!   (report outcomes, watch decisions, probe permits) and the shared
//!   `Policy`, `BreakerState`, `BreakerDecision`, `ScopeDecision` messages.
//! - [`admin`]: `switchyard.admin.v1`, the operator-facing `Admin` service
//!   behind the CLI of the design's operator surface.
//! - [`raft`]: `switchyard.raft.v1`, node-to-node Raft transport with opaque,
//!   serde-encoded openraft payloads.
//! - [`convert`]: domain <-> wire conversions. Outbound `From<&core::T>`,
//!   inbound `TryFrom<pb::T>` that validate and name the offending field path;
//!   [`status_from_validation`] turns the error into `INVALID_ARGUMENT`.
//!
//! `grpc.health.v1` comes from the `tonic-health` crate and is not redefined here.

#![forbid(unsafe_code)]

pub mod convert;

pub use convert::status_from_validation;

/// The generated code, nested by protobuf package (`switchyard::client::v1`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/switchyard_includes.rs"));
}

/// `switchyard.client.v1`: the SDK-facing service and the decision types shared
/// with the admin service.
pub use generated::switchyard::client::v1 as client;

/// `switchyard.admin.v1`: the operator-facing service.
pub use generated::switchyard::admin::v1 as admin;

/// `switchyard.raft.v1`: the node-to-node Raft transport.
pub use generated::switchyard::raft::v1 as raft;

/// The encoded `FileDescriptorSet` of all three packages, for gRPC reflection
/// or for tools that decode messages dynamically.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/switchyard_descriptor.bin"));

/// gRPC metadata key carrying the operator identity recorded as the actor of an
/// admin write (audit log). Never taken from the message body.
pub const ACTOR_METADATA_KEY: &str = "x-switchyard-actor";

/// gRPC metadata key (and HTTP header) carrying the caller's request id. A node answers with
/// the id it used in the same key; audit events record it (see `switchyard_core::RequestTrace`).
pub const REQUEST_ID_METADATA_KEY: &str = "x-request-id";

/// gRPC metadata key (and HTTP header) of the W3C trace context.
pub const TRACEPARENT_METADATA_KEY: &str = "traceparent";
