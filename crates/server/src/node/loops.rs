//! The node's background loops: the leader's tick, snapshot scheduling, and a follower's
//! batched forwarding of fleet reports.

use openraft::async_runtime::WatchReceiver;
use std::sync::atomic::Ordering;
use std::time::Duration;

use switchyard_core::{Actor, Command, Delta, Envelope};
use switchyard_store::{SnapshotProgress, SnapshotSchedule};

use super::Node;
use crate::forward::{ForwardReply, ForwardRequest};
use crate::ingest::Batch;

impl Node {
    /// The leader's tick: every `tick_interval_ms`, merge waiting reports into one `Tick`
    /// entry; write an empty one when a timed transition is due, and nothing otherwise.
    pub(super) async fn tick_loop(self) {
        let mut shutdown = self.shutdown_signal();
        let mut interval =
            tokio::time::interval(Duration::from_millis(self.inner.config.tick_interval_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if !self.is_leader() {
                let dropped = self.inner.ingest.clear();
                if dropped > 0 {
                    tracing::warn!(dropped, "stepped down with reports pending; dropped them");
                    self.inner
                        .counters
                        .deltas_dropped_on_step_down
                        .fetch_add(dropped as u64, Ordering::Relaxed);
                }
                continue;
            }
            let now_ms = self.inner.clock.now_ms();
            let (due, per_tick_max) = {
                let state = self.inner.sm.read();
                let core = state.core();
                (
                    core.next_deadline_ms().is_some_and(|d| d <= now_ms),
                    core.settings().max_deltas_per_tick as usize,
                )
            };
            let deltas = self.inner.ingest.take();
            if deltas.is_empty() && !due {
                continue;
            }
            let mut chunks: Vec<Vec<Delta>> = Vec::new();
            if deltas.is_empty() {
                chunks.push(Vec::new());
            } else {
                let mut rest = deltas;
                while !rest.is_empty() {
                    let tail = rest.split_off(rest.len().min(per_tick_max.max(1)));
                    chunks.push(std::mem::replace(&mut rest, tail));
                }
            }
            for deltas in chunks {
                let envelope = Envelope {
                    actor: Actor::Node(self.inner.id),
                    command: Command::Tick { deltas },
                };
                match self.propose_local(envelope).await {
                    Ok(Ok(_)) => {
                        self.inner
                            .counters
                            .ticks_written
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(_)) => tracing::debug!("lost leadership before the tick was written"),
                    Err(e) => tracing::warn!(error = %e, "tick write failed"),
                }
            }
        }
    }

    /// Builds a snapshot whenever [`SnapshotSchedule`] says one is due, checked after each
    /// applied entry. Every node snapshots its own state; nothing here is replicated.
    pub(super) async fn snapshot_loop(self) {
        let config = &self.inner.config;
        let schedule = SnapshotSchedule {
            every_entries: config.snapshot_every_entries,
            log_bytes_max: config.snapshot_log_bytes_max,
        };
        let mut shutdown = self.shutdown_signal();
        let mut applied = self.inner.sm.watch_applied();
        // The latest snapshot index seen, and the log bytes appended when it was seen. The log
        // a restarted node found on disk is not counted (only what this process appended), so
        // the first snapshot after a restart can come up to one interval late; never early.
        let mut mark = (self.snapshot_index(), self.inner.log.appended_bytes());
        // A build asked for and not finished yet: the applied index it was asked at.
        let mut requested_at: Option<u64> = None;
        loop {
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            let applied_index = *applied.borrow_and_update();
            let snapshot_index = self.snapshot_index();
            if snapshot_index != mark.0 {
                mark = (snapshot_index, self.inner.log.appended_bytes());
                requested_at = None;
            }
            let progress = SnapshotProgress {
                entries_since: applied_index.saturating_sub(snapshot_index),
                log_bytes_since: self.inner.log.appended_bytes().saturating_sub(mark.1),
                snapshot_bytes: self.inner.sm.snapshot_size(),
            };
            // A build that never reported back (it failed) is asked for again after another
            // full interval of entries.
            let pending = requested_at
                .is_some_and(|at| applied_index.saturating_sub(at) < schedule.every_entries);
            if pending || !schedule.due(progress) {
                continue;
            }
            tracing::debug!(?progress, "snapshot due");
            requested_at = Some(applied_index);
            if let Err(e) = self.inner.raft.trigger().snapshot().await {
                tracing::warn!(error = %e, "cannot ask Raft for a snapshot");
                return;
            }
        }
    }

    fn snapshot_index(&self) -> u64 {
        self.inner
            .raft
            .metrics()
            .borrow_watched()
            .snapshot
            .as_ref()
            .map_or(0, |id| id.index())
    }

    /// On a follower: every half tick, hand the buffered reports to the leader as one merged
    /// batch (or, if this node has become leader, straight into its own next tick). A batch
    /// the leader cannot take is dropped and counted: reports are telemetry, and the SDKs'
    /// next reports carry fresh counts.
    pub(super) async fn forward_loop(self) {
        let mut shutdown = self.shutdown_signal();
        let period = Duration::from_millis((self.inner.config.tick_interval_ms / 2).max(5));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let chunk = (self.inner.config.limits.report_deltas_max as usize).max(1);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if self.inner.forward_buffer.is_empty() {
                continue;
            }
            let Batch {
                mut calls,
                mut deltas,
            } = self.inner.forward_buffer.take_batch();
            if self.is_leader() {
                let n = deltas.len() as u64;
                if self
                    .accept_forwarded_report(Batch { calls, deltas })
                    .is_err()
                {
                    self.inner
                        .counters
                        .deltas_dropped_forwarding
                        .fetch_add(n, Ordering::Relaxed);
                }
                continue;
            }
            let leader = self.current_leader();
            while !deltas.is_empty() {
                let rest = deltas.split_off(deltas.len().min(chunk));
                let batch = std::mem::replace(&mut deltas, rest);
                let n = batch.len() as u64;
                // The calls travel with the first chunk; the leader counts them once.
                let request = ForwardRequest::Report {
                    calls: std::mem::take(&mut calls),
                    deltas: batch,
                };
                match self.forward(leader, request).await {
                    Ok(ForwardReply::Reported(_)) => {}
                    Ok(other) => {
                        tracing::debug!(reply = ?other, "unexpected reply to forwarded reports");
                        self.inner
                            .counters
                            .deltas_dropped_forwarding
                            .fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "could not forward reports to the leader");
                        self.inner
                            .counters
                            .deltas_dropped_forwarding
                            .fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}
