//! The node's background loops: the leader's tick, snapshot scheduling, and a follower's
//! batched forwarding of fleet reports.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::errors::{ClientWriteError, RaftError};

use switchyard_core::{Actor, Command, Delta, Envelope};
use switchyard_store::{Request, SnapshotProgress, SnapshotSchedule};

use super::Node;
use crate::error::NodeError;
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
                // A deposed leader's buffer goes to the new leader with this node's forwarded
                // reports: those deltas were acknowledged.
                let batch = self.inner.ingest.take_all();
                let n = batch.deltas.len() as u64;
                if n > 0 {
                    tracing::info!(
                        deltas = n,
                        "stepped down with reports pending; forwarding them"
                    );
                    self.hand_over(batch);
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
            self.inner
                .deltas_taken
                .fetch_add(deltas.len() as u64, Ordering::Relaxed);
            self.inner.pacing.observe(
                deltas.len(),
                self.inner.config.limits.pending_deltas_max,
                now_ms,
            );
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
                self.write_tick(deltas).await;
            }
        }
    }

    /// Proposes one `Tick` entry. Deltas Raft refused before appending them (this node is no
    /// longer leader) are handed to the new leader; a tick whose entry was discarded on a
    /// leader change may or may not have committed, so its deltas are counted as lost rather
    /// than offered twice.
    async fn write_tick(&self, deltas: Vec<Delta>) {
        let n = deltas.len() as u64;
        let envelope = Arc::new(Envelope::new(
            Actor::Node(self.inner.id),
            Command::Tick {
                deltas: deltas.into(),
            },
        ));
        let request = Request {
            stamped_ms: self.inner.clock.now_ms(),
            envelope: Arc::clone(&envelope),
        };
        let counters = &self.inner.counters;
        match self.inner.raft.client_write(request).await {
            Ok(_) => {
                counters.ticks_written.fetch_add(1, Ordering::Relaxed);
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                tracing::debug!("lost leadership before the tick was appended; forwarding it");
                // The entry was never appended: its deltas go to the new leader.
                let deltas = match Arc::try_unwrap(envelope) {
                    Ok(Envelope {
                        command: Command::Tick { deltas },
                        ..
                    }) => deltas.into_vec(),
                    Ok(_) => Vec::new(),
                    Err(shared) => match &shared.command {
                        Command::Tick { deltas } => deltas.to_vec(),
                        _ => Vec::new(),
                    },
                };
                self.hand_over(Batch {
                    calls: Vec::new(),
                    deltas,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, deltas = n, "tick outcome unknown");
                counters.deltas_lost_in_tick.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Reads the CPU pressure from `file` once per tick interval and paces reports by it when
    /// this node takes enough deltas for that to help (see [`crate::cpu_pressure`] and
    /// [`crate::report_pacing::cpu_fill`]). A file that cannot be read or parsed counts as no
    /// pressure, and is logged once.
    pub(super) async fn cpu_pressure_loop(self, file: std::path::PathBuf) {
        use crate::cpu_pressure::{read_some_total_us as read, share};
        let mut shutdown = self.shutdown_signal();
        let period = std::time::Duration::from_millis(self.inner.config.tick_interval_ms);
        let max_percent = self.inner.config.limits.cpu_pressure_max_percent;
        let taken = || self.inner.deltas_taken.load(Ordering::Relaxed);
        let mut last = (std::time::Instant::now(), read(&file), taken());
        let mut warned = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => return,
            }
            let now = (std::time::Instant::now(), read(&file), taken());
            let elapsed = now.0 - last.0;
            let reading = match (last.1, now.1) {
                (Some(before), Some(after)) => share(before, after, elapsed),
                _ => {
                    if !warned {
                        tracing::warn!(file = %file.display(), "cannot read CPU pressure");
                        warned = true;
                    }
                    0.0
                }
            };
            let deltas_per_s = (now.2 - last.2) as f64 / elapsed.as_secs_f64().max(1e-3);
            last = now;
            let smoothed = self.inner.cpu_pressure.observe(reading);
            let pacing = self.inner.cpu_pacing.is_pacing();
            let fill = crate::report_pacing::cpu_fill(smoothed, max_percent, deltas_per_s, pacing);
            self.inner
                .cpu_pacing
                .observe_fill(fill, self.inner.clock.now_ms());
        }
    }

    /// Measures how late the runtime wakes a task that is due (see [`crate::runtime_lag`]).
    pub(super) async fn lag_loop(self) {
        let mut shutdown = self.shutdown_signal();
        loop {
            let asleep = tokio::time::Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(crate::runtime_lag::LAG_PROBE) => {}
                _ = shutdown.changed() => return,
            }
            let late = asleep
                .elapsed()
                .saturating_sub(crate::runtime_lag::LAG_PROBE);
            self.inner.runtime_lag.observe(late);
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
            let (follower_needs_snapshot, follower_entries_behind) = self.furthest_follower();
            let progress = SnapshotProgress {
                entries_since: applied_index.saturating_sub(snapshot_index),
                log_bytes_since: self.inner.log.appended_bytes().saturating_sub(mark.1),
                snapshot_bytes: self.inner.sm.snapshot_size(),
                follower_needs_snapshot,
                follower_entries_behind,
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

    /// On a leader, its furthest-behind follower: `(needs a snapshot, entries behind)`. It
    /// needs a snapshot when its next entry was purged from this node's log (see
    /// `SnapshotSchedule`). `(false, 0)` on a follower.
    fn furthest_follower(&self) -> (bool, u64) {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow_watched();
        let Some(replication) = &metrics.replication else {
            return (false, 0);
        };
        let Some(matched) = replication
            .values()
            .map(|matched| matched.as_ref().map_or(0, |id| id.index()))
            .min()
        else {
            return (false, 0);
        };
        let needs_snapshot = metrics
            .purged
            .as_ref()
            .is_some_and(|purged| matched < purged.index());
        let behind = metrics
            .last_log_index
            .map_or(0, |last| last.saturating_sub(matched));
        (needs_snapshot, behind)
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

    fn observe_forwarded(&self, taken: usize) {
        self.inner
            .deltas_taken
            .fetch_add(taken as u64, Ordering::Relaxed);
        let limit = self.inner.config.limits.pending_deltas_max;
        let now_ms = self.inner.clock.now_ms();
        self.inner.forward_pacing.observe(taken, limit, now_ms);
    }

    /// Puts deltas this node acknowledged as leader into its forward buffer, for the forward
    /// loop to hand to the new leader.
    fn hand_over(&self, batch: Batch) {
        let n = batch.deltas.len() as u64;
        self.inner.forward_buffer.restore(batch);
        self.inner
            .counters
            .deltas_handed_over
            .fetch_add(n, Ordering::Relaxed);
    }

    /// On a follower: every half tick, hand the buffered reports to the leader as one merged
    /// batch (or, if this node has become leader, straight into its own next tick). A batch
    /// the leader did not take (no leader known, the hop failed, its buffer was full) stays in
    /// the buffer and goes again with the next batch: the reports in it were acknowledged.
    /// Only a batch the leader rejects as such (it would reject it again) is dropped, and
    /// counted.
    pub(super) async fn forward_loop(self) {
        let mut shutdown = self.shutdown_signal();
        let period = Duration::from_millis((self.inner.config.tick_interval_ms / 2).max(5));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let chunk = (self.inner.config.limits.report_deltas_max as usize).max(1);
        let buffer = &self.inner.forward_buffer;
        let counters = &self.inner.counters;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if buffer.is_empty() {
                // Nothing reported here: the leader's last advice is not refreshed, so it
                // lapses rather than holding this node's reporters back for ever.
                self.observe_forwarded(0);
                self.inner.leader_advice_ms.store(0, Ordering::Relaxed);
                continue;
            }
            let Batch {
                mut calls,
                mut deltas,
            } = buffer.take_batch();
            self.observe_forwarded(deltas.len());
            if self.is_leader() {
                match self.accept_forwarded_report(Batch { calls, deltas }) {
                    Ok(_) => buffer.settle(),
                    Err(refused) => {
                        counters
                            .deltas_forward_retried
                            .fetch_add(refused.batch.deltas.len() as u64, Ordering::Relaxed);
                        buffer.restore(refused.batch);
                    }
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
                // With a deadline, so a leader that gets the batch only after this node gave
                // up on it (and will send it again) refuses it.
                let deadline = tokio::time::Instant::now() + super::FORWARD_TIMEOUT;
                let sent = crate::deadline::scope(deadline, self.forward(leader, &request)).await;
                let e = match sent {
                    Ok(ForwardReply::Reported {
                        report_interval_ms, ..
                    }) => {
                        self.inner
                            .leader_advice_ms
                            .store(report_interval_ms, Ordering::Relaxed);
                        continue;
                    }
                    Ok(other) => NodeError::Unexpected(format!("reply {other:?}")),
                    Err(e) => e,
                };
                if forwarding_may_succeed_later(&e) {
                    tracing::debug!(error = %e, "reports not taken by the leader; keeping them");
                    let ForwardRequest::Report {
                        calls: sent_calls,
                        deltas: mut kept,
                    } = request
                    else {
                        unreachable!("built above as a report")
                    };
                    kept.append(&mut deltas);
                    counters
                        .deltas_forward_retried
                        .fetch_add(kept.len() as u64, Ordering::Relaxed);
                    buffer.restore(Batch {
                        calls: sent_calls,
                        deltas: kept,
                    });
                    break;
                }
                tracing::warn!(error = %e, deltas = n, "the leader rejected forwarded reports");
                counters
                    .deltas_dropped_forwarding
                    .fetch_add(n, Ordering::Relaxed);
            }
            buffer.settle();
        }
    }
}

/// Whether a batch the leader did not take may be taken on a later try: no leader known or
/// reachable, the leader moved or was busy (its buffer full). A refusal of the batch itself
/// (invalid content) would be repeated, so it is not retried.
fn forwarding_may_succeed_later(e: &NodeError) -> bool {
    match e {
        NodeError::NoLeader { .. }
        | NodeError::Hop { .. }
        | NodeError::DeadlinePassed(_)
        | NodeError::ShuttingDown
        | NodeError::Transport(_)
        | NodeError::Raft(_)
        | NodeError::Limit { .. } => true,
        NodeError::Remote(status) => matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::ResourceExhausted
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled
                | tonic::Code::Aborted
        ),
        _ => false,
    }
}
