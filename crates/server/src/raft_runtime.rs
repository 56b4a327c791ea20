//! A runtime of its own for Raft, so request handling cannot delay heartbeats.
//!
//! On a busy node the gRPC handlers (writes, reads, watches, reports) fill the main runtime's
//! run queues. Raft's core, its replication tasks and its state-machine worker used to share
//! those queues: a heartbeat, or the reply to one, waited behind request work, and with the
//! CPU saturated by other processes followers timed out and elected a new leader on their own.
//! [`RaftRuntime`] runs Raft on dedicated threads (`raft-*`): the core, replication to peers
//! over their own connections (`crate::network`), log writes and apply. Only the inbound Raft
//! RPCs still arrive through the shared gRPC server, and hand their message straight to the
//! core.
//!
//! The simulation runs every node on one turmoil-driven runtime, where extra OS threads would
//! break determinism; it passes no runtime and Raft runs where the node starts.

use tokio::runtime::{Handle, Runtime};

/// Worker threads of the Raft runtime: the core, replication and apply rarely need more than
/// one at a time; the second keeps a slow log flush from holding up a heartbeat.
pub const RAFT_WORKER_THREADS: usize = 2;

/// Dedicated threads that run a node's Raft. Shut down (in the background) on drop.
#[derive(Debug)]
pub struct RaftRuntime {
    runtime: Option<Runtime>,
}

impl RaftRuntime {
    /// Starts the threads.
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RAFT_WORKER_THREADS)
            .thread_name("raft")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Where to spawn Raft (see `NodeDeps::raft_runtime`).
    pub fn handle(&self) -> Handle {
        self.runtime
            .as_ref()
            .map(|r| r.handle().clone())
            .expect("the runtime lives until drop")
    }
}

impl Drop for RaftRuntime {
    fn drop(&mut self) {
        // `shutdown_background` may be called from async code, where dropping a runtime that
        // still has work would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
