//! Watch streams: every node pushes decisions from its own applied state.
//!
//! A stream starts with a full snapshot of the watched scopes, then sends each breaker or scope
//! that an applied entry changed, every event stamped with the applied index it reflects, plus a
//! heartbeat when nothing was sent for [`HEARTBEAT_INTERVAL`] (entries that change nothing the
//! stream follows do not count: they must not starve the SDK of the contact its mode needs).
//! The stream subscribes to the applied feed before it reads the snapshot, so no change can fall
//! between the two; changes at or below the snapshot's index are skipped. A watcher that falls too far behind the feed is sent a fresh
//! snapshot instead of the changes it missed.

use std::collections::BTreeSet;
use std::time::Duration;

use switchyard_core::{BreakerKey, CoordinatorState, Effect, PolicyTarget, Scope};
use switchyard_proto::client as pb;
use switchyard_proto::convert::{DecisionUpdate, ScopeUpdate, WatchUpdate, WatchedEvent};
use switchyard_store::state_machine::StateRead;
use tokio::sync::{broadcast, mpsc};

use crate::node::Node;

/// How often an idle stream sends a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Events buffered per stream before the stream waits on its client.
pub const STREAM_BUFFER: usize = 256;

/// Which scopes a stream follows; empty means all.
#[derive(Debug, Clone, Default)]
pub struct ScopeFilter(BTreeSet<Scope>);

impl ScopeFilter {
    /// Follows `scopes` (all when empty).
    pub fn new(scopes: BTreeSet<Scope>) -> Self {
        Self(scopes)
    }

    fn admits_scope(&self, scope: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s.as_str() == scope)
    }

    fn admits_key(&self, key: &BreakerKey) -> bool {
        self.admits_scope(key.scope())
    }
}

fn snapshot(core: &CoordinatorState, filter: &ScopeFilter) -> WatchUpdate {
    WatchUpdate::Snapshot {
        breakers: core
            .breakers()
            .iter()
            .filter(|b| filter.admits_key(&b.key))
            .map(DecisionUpdate::from)
            .collect(),
        scopes: core
            .scopes()
            .iter()
            .filter(|s| filter.admits_scope(s.scope.as_str()))
            .map(ScopeUpdate::from)
            .collect(),
    }
}

/// The updates one applied entry causes for a stream.
fn changes(core: &CoordinatorState, effects: &[Effect], filter: &ScopeFilter) -> Vec<WatchUpdate> {
    let mut keys: BTreeSet<BreakerKey> = BTreeSet::new();
    let mut scopes: BTreeSet<Scope> = BTreeSet::new();
    for effect in effects {
        match effect {
            Effect::BreakerChanged { key, .. }
            | Effect::BreakerCreated { key }
            | Effect::ProbeGranted { key, .. }
            | Effect::FleetRetriesChanged { key } => {
                keys.insert(key.clone());
            }
            Effect::PolicyChanged {
                target: PolicyTarget::Key(key),
            } => {
                keys.insert(key.clone());
            }
            Effect::PolicyChanged {
                target: PolicyTarget::Scope(scope),
            } => {
                for b in core.breakers() {
                    if b.key.scope() == scope.as_str() {
                        keys.insert(b.key.clone());
                    }
                }
            }
            Effect::TierChanged { scope, .. } | Effect::TierRulesChanged { scope } => {
                scopes.insert(scope.clone());
            }
            Effect::SettingsChanged | Effect::ProbeDenied { .. } => {}
        }
    }
    let mut out = Vec::new();
    for key in keys.iter().filter(|k| filter.admits_key(k)) {
        if let Some(view) = core.breaker(key) {
            out.push(WatchUpdate::Breaker(DecisionUpdate::from(&view)));
        }
    }
    for scope in scopes.iter().filter(|s| filter.admits_scope(s.as_str())) {
        if let Some(view) = core.scope(scope) {
            out.push(WatchUpdate::Scope(ScopeUpdate::from(&view)));
        }
    }
    out
}

/// Runs one watch stream until the client goes away or the node shuts down.
pub async fn run_stream(
    node: Node,
    filter: ScopeFilter,
    tx: mpsc::Sender<Result<pb::WatchEvent, tonic::Status>>,
) {
    let mut feed = node.state_machine().subscribe();
    let mut shutdown = node.shutdown_signal();
    let term = || node.raft_status().term;
    let event = |applied_index: u64, update: WatchUpdate| {
        Ok(pb::WatchEvent::from(&WatchedEvent {
            applied_index,
            node_id: node.id(),
            term: term(),
            update,
        }))
    };
    let send_snapshot = |read: StateRead<'_>| {
        let index = read.applied_index();
        (index, snapshot(read.core(), &filter))
    };
    let (mut sent_index, first) = send_snapshot(node.state_machine().read());
    if tx.send(event(sent_index, first)).await.is_err() {
        return;
    }
    // The highest applied index this stream has taken from the feed, whether or not the entry
    // changed anything it follows. Heartbeats carry it: stamping them with the last index sent
    // left them seconds behind `Status` after a failover, when the new leader's entries changed
    // nothing this stream follows. Not the state machine's applied index itself: an entry
    // applied but not yet taken from the feed may still hold a change for this stream, and an
    // SDK drops an event older than an index it has seen.
    let mut processed_index = sent_index;
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    heartbeat.reset();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
            _ = heartbeat.tick() => {
                let update = WatchUpdate::Heartbeat { now_ms: node.clock().now_ms() };
                if tx.send(event(sent_index.max(processed_index), update)).await.is_err() {
                    return;
                }
            }
            batch = feed.recv() => {
                if let Ok(batch) = &batch {
                    processed_index = processed_index.max(batch.index);
                }
                let outgoing: Vec<(u64, WatchUpdate)> = match batch {
                    Ok(batch) if batch.index <= sent_index => continue,
                    Ok(batch) if batch.resync => {
                        let (index, snap) = send_snapshot(node.state_machine().read());
                        vec![(index, snap)]
                    }
                    Ok(batch) => {
                        let read = node.state_machine().read();
                        changes(read.core(), &batch.effects, &filter)
                            .into_iter()
                            .map(|u| (batch.index, u))
                            .collect()
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "watch stream lagged; resending a snapshot");
                        let (index, snap) = send_snapshot(node.state_machine().read());
                        vec![(index, snap)]
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                // Only what was sent postpones the heartbeat: a busy cluster applies an entry
                // every tick, most of them changing nothing this stream follows, and resetting
                // on those starved the SDK of any event until its idle timeout, so it fell to
                // Stale and LocalOnly while connected.
                if outgoing.is_empty() {
                    continue;
                }
                for (index, update) in outgoing {
                    sent_index = sent_index.max(index);
                    if tx.send(event(index, update)).await.is_err() {
                        return;
                    }
                }
                heartbeat.reset();
            }
        }
    }
}
