//! Durable storage for a Switchyard node: openraft's log storage and state machine on sled.
//!
//! - [`types`]: the Raft type configuration and the request/response carried by the log.
//! - [`runtime`]: [`RaftRuntime`], openraft's runtime: tokio, with random draws (election
//!   timeouts, tick phase) that a seed scope fixes for the simulation.
//! - [`log_store`]: [`LogStore`], the Raft log, vote, committed index and purge marker.
//! - `entry_cache`: the log store's bounded cache of recent entries.
//! - [`state_machine`]: [`StateMachine`], the core [`CoordinatorState`] applied in log order,
//!   snapshots built from it and installed into it, and the feed of applied changes that watches
//!   follow.
//! - [`snapshot_schedule`]: [`SnapshotSchedule`], when a node builds a snapshot (often enough
//!   to keep the log short, never so often that rewriting the state dominates).
//! - [`codec`]: the versioned on-disk record format and its decoding errors.
//! - `error`: [`StoreError`], why the store could not be opened.
//! - [`disk`]: [`Disk`], the ordered key-value trees underneath: [`SledDisk`] in production,
//!   [`MemDisk`] (which forgets unflushed writes on a simulated crash) in the simulation.
//!
//! ```text
//!            sled Db (one directory per node)
//!   +-----------+-----------+---------------+
//!   | tree log  | tree meta | tree snapshot |
//!   | idx -> e  | vote      | current       |
//!   |           | committed |               |
//!   |           | purged    |               |
//!   +-----------+-----------+---------------+
//! ```
//!
//! Why the state machine is not written to disk on every apply: the coordinator state is
//! rebuilt deterministically by replaying committed entries on top of the latest snapshot, so
//! persisting it per entry would only add write amplification. Durability comes from the log,
//! which is flushed (fsync) before openraft is told an append is done, and the vote, which is
//! flushed before it is acknowledged.
//!
//! [`CoordinatorState`]: switchyard_core::CoordinatorState

pub mod codec;
pub mod disk;
mod entry_cache;
mod error;
pub mod log_store;
pub mod runtime;
pub mod snapshot_schedule;
pub mod state_machine;
pub mod types;

pub use codec::CodecError;
pub use disk::{Disk, MemDisk, SledDisk};
pub use error::StoreError;
pub use log_store::LogStore;
pub use runtime::RaftRuntime;
pub use snapshot_schedule::{SnapshotProgress, SnapshotSchedule};
pub use state_machine::{AppliedBatch, ApplySpan, StateMachine, set_apply_span};
pub use types::{NodeId, Raft, Request, Response, TypeConfig};

use std::path::Path;
use std::sync::Arc;

/// Opens (creating if needed) the sled database of one node in `dir` and returns its log
/// store and state machine, which share it.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    let disk = SledDisk::open(dir).map_err(|source| StoreError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    open_on(Arc::new(disk))
}

/// Opens the log store and state machine kept on `disk`.
pub fn open_on(disk: Arc<dyn Disk>) -> Result<(LogStore, StateMachine), StoreError> {
    let log = LogStore::new(disk.clone());
    let sm = StateMachine::open(disk)?;
    Ok((log, sm))
}
