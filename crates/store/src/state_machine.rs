//! The replicated state machine: [`CoordinatorState`] from `switchyard-core`, applied in log
//! order, plus snapshots of it.
//!
//! The state lives in memory behind a short-held `std::sync::RwLock` (no await happens while it
//! is held, so a tokio lock would only add cost). The latest snapshot is persisted in the
//! disk's `snapshot` tree; on restart the state is loaded from it and openraft re-applies the
//! committed entries after it from the log.
//!
//! Every applied entry is announced on a broadcast channel as an [`AppliedBatch`] (its index and
//! the effects it had), which is what Watch streams follow. A watcher that falls behind the
//! channel's capacity is told it lagged and resynchronises from a full snapshot of the state.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard};

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use switchyard_core::plant::{Plant, planted};
use switchyard_core::{
    ApplyContext, CoordinatorState, Effect, RequestTrace, StateWithStoredIndexes,
};
use tokio::sync::{broadcast, watch};

use crate::codec;
use crate::disk::{Disk, Op, TreeId};
use crate::{Response, TypeConfig};

const KEY_SNAPSHOT: &[u8] = b"current";

/// How many applied batches a slow watcher may fall behind before it must resynchronise.
pub const APPLIED_FEED_CAPACITY: usize = 4096;

/// Makes the span an entry's apply runs in, for entries that came from a traced request (see
/// [`set_apply_span`]).
pub type ApplySpan = fn(index: u64, trace: &RequestTrace) -> tracing::Span;

static APPLY_SPAN: OnceLock<ApplySpan> = OnceLock::new();

/// Sets, once per process, how the apply of an entry carrying a request's trace context makes
/// its span: the node joins the request's trace there (this crate stays free of any exporter).
/// Entries without a trace context (ticks, blank and membership entries) get no span at all.
pub fn set_apply_span(make: ApplySpan) {
    // A second node in the same process (tests, the simulation) sets the same function.
    let _ = APPLY_SPAN.set(make);
}

/// One applied log entry, as announced to watchers.
#[derive(Debug, Clone)]
pub struct AppliedBatch {
    /// The log index that was applied.
    pub index: u64,
    /// What changed; empty for blank and membership entries.
    pub effects: Arc<Vec<Effect>>,
    /// The whole state was replaced (a snapshot was installed): watchers must resynchronise
    /// from a full read of the state instead of following `effects`.
    pub resync: bool,
}

/// The in-memory part of the state machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SmData {
    last_applied: Option<LogIdOf<TypeConfig>>,
    last_membership: StoredMembershipOf<TypeConfig>,
    core: CoordinatorState,
}

impl SmData {
    /// Decodes a snapshot's state, in the layout of the record's format version (see
    /// [`codec::decode_with_legacy`]).
    fn decode(bytes: &[u8]) -> Result<Self, codec::CodecError> {
        codec::decode_with_legacy::<Self, SmDataWithStoredIndexes>(
            "snapshot state",
            bytes,
            codec::STATE_WITHOUT_INDEXES_SINCE,
        )
    }
}

/// [`SmData`] as record formats 2 and 3 stored it: the state with its derived indexes.
#[derive(Deserialize)]
struct SmDataWithStoredIndexes {
    last_applied: Option<LogIdOf<TypeConfig>>,
    last_membership: StoredMembershipOf<TypeConfig>,
    core: StateWithStoredIndexes,
}

impl From<SmDataWithStoredIndexes> for SmData {
    fn from(old: SmDataWithStoredIndexes) -> Self {
        Self {
            last_applied: old.last_applied,
            last_membership: old.last_membership,
            core: old.core.into(),
        }
    }
}

/// A persisted snapshot: its metadata and the encoded [`SmData`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMetaOf<TypeConfig>,
    data: Vec<u8>,
}

struct Shared {
    data: RwLock<SmData>,
    disk: Arc<dyn Disk>,
    feed: broadcast::Sender<AppliedBatch>,
    applied_index: watch::Sender<u64>,
    /// Encoded size of the latest snapshot's state, 0 if none.
    snapshot_bytes: AtomicU64,
}

/// The state machine of one node. Cloning shares it.
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

impl fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachine")
            .field("applied_index", &*self.shared.applied_index.borrow())
            .finish_non_exhaustive()
    }
}

/// A read view of the applied state; hold it briefly (it blocks apply while held).
pub struct StateRead<'a> {
    guard: RwLockReadGuard<'a, SmData>,
}

impl fmt::Debug for StateRead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateRead")
            .field("applied_index", &self.applied_index())
            .finish()
    }
}

impl StateRead<'_> {
    /// The coordinator state.
    pub fn core(&self) -> &CoordinatorState {
        &self.guard.core
    }

    /// The index of the last applied entry (0 if none).
    pub fn applied_index(&self) -> u64 {
        self.guard.last_applied.as_ref().map_or(0, |id| id.index())
    }

    /// The last applied membership.
    pub fn membership(&self) -> &StoredMembershipOf<TypeConfig> {
        &self.guard.last_membership
    }
}

impl StateMachine {
    /// Opens the state machine stored on `disk`, starting from its latest snapshot if any.
    pub fn open(disk: Arc<dyn Disk>) -> Result<Self, io::Error> {
        let (data, snapshot_bytes) = match disk.get(TreeId::Snapshot, KEY_SNAPSHOT)? {
            None => (SmData::default(), 0),
            Some(bytes) => {
                let stored: StoredSnapshot = codec::decode("snapshot", &bytes)?;
                let data = SmData::decode(&stored.data)?;
                (data, stored.data.len() as u64)
            }
        };
        let applied = data.last_applied.as_ref().map_or(0, |id| id.index());
        let (feed, _) = broadcast::channel(APPLIED_FEED_CAPACITY);
        let (applied_index, _) = watch::channel(applied);
        Ok(Self {
            shared: Arc::new(Shared {
                data: RwLock::new(data),
                disk,
                feed,
                applied_index,
                snapshot_bytes: AtomicU64::new(snapshot_bytes),
            }),
        })
    }

    /// Reads the applied state. Do not hold the returned view across an await point.
    pub fn read(&self) -> StateRead<'_> {
        StateRead {
            guard: self
                .shared
                .data
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// Subscribes to the feed of applied entries.
    pub fn subscribe(&self) -> broadcast::Receiver<AppliedBatch> {
        self.shared.feed.subscribe()
    }

    /// Watches the applied index.
    pub fn watch_applied(&self) -> watch::Receiver<u64> {
        self.shared.applied_index.subscribe()
    }

    /// The encoded size in bytes of the latest snapshot's state, 0 if there is none.
    pub fn snapshot_size(&self) -> u64 {
        self.shared.snapshot_bytes.load(Ordering::Relaxed)
    }

    fn encode_current(&self) -> (SnapshotMetaOf<TypeConfig>, Vec<u8>) {
        // Copy under the lock, encode after releasing it: the apply path takes the write lock
        // for every entry, so whatever happens under this read lock stalls every write. The
        // copy is the cheap part (the audit trail, most of a busy state, shares its sealed
        // chunks: about 1 ms for 4 096 breakers and 100 000 events against 4 ms to encode;
        // `cargo bench -p switchyard-store --bench snapshot`).
        let data = self.read().guard.clone();
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: data.last_applied,
            last_membership: data.last_membership.clone(),
        };
        (meta, codec::encode(&data))
    }

    async fn persist_snapshot(&self, stored: &StoredSnapshot) -> Result<(), io::Error> {
        let op = Op::Put(KEY_SNAPSHOT.to_vec(), codec::encode(stored));
        self.shared
            .disk
            .apply_off_executor(TreeId::Snapshot, vec![op])
            .await?;
        self.shared.disk.flush().await?;
        self.shared
            .snapshot_bytes
            .store(stored.data.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Vec<u8>>, io::Error> {
        let (meta, data) = self.encode_current();
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.persist_snapshot(&stored).await?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = stored.data.len(), "built snapshot");
        Ok(SnapshotOf::<TypeConfig, Vec<u8>> {
            meta,
            snapshot: stored.data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let data = self.read();
        Ok((data.guard.last_applied, data.guard.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let log_id = entry.log_id();
            let index = log_id.index();
            let (response, effects) = {
                let mut data = self
                    .shared
                    .data
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                data.last_applied = Some(log_id);
                match entry.payload {
                    EntryPayload::Blank => (None, Vec::new()),
                    EntryPayload::Membership(membership) => {
                        data.last_membership =
                            StoredMembershipOf::<TypeConfig>::new(Some(log_id), membership);
                        (None, Vec::new())
                    }
                    EntryPayload::Normal(request) => {
                        let span = request
                            .envelope
                            .trace
                            .as_ref()
                            .filter(|t| t.traceparent.is_some())
                            .and_then(|t| APPLY_SPAN.get().map(|make| make(index, t)));
                        let _in_span = span.as_ref().map(tracing::Span::enter);
                        let mut ctx = ApplyContext {
                            index,
                            stamped_ms: request.stamped_ms,
                        };
                        // The planted bug: the proposing node (the one holding a responder)
                        // applies at a time of its own instead of the stamped one.
                        if responder.is_some() && planted(Plant::NondeterministicApply) {
                            ctx.stamped_ms += 1_500;
                        }
                        let outcome = data.core.apply(ctx, &request.envelope);
                        let effects = match &outcome {
                            Ok(applied) => applied.effects.clone(),
                            Err(_) => Vec::new(),
                        };
                        (Some(Response { index, outcome }), effects)
                    }
                }
            };
            if let Some(responder) = responder {
                responder.send(response.unwrap_or(Response {
                    index,
                    outcome: Ok(switchyard_core::Applied::default()),
                }));
            }
            // No receiver is fine: nobody is watching yet.
            let _ = self.shared.feed.send(AppliedBatch {
                index,
                effects: Arc::new(effects),
                resync: false,
            });
            self.shared.applied_index.send_replace(index);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let data = SmData::decode(&snapshot)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot,
        };
        self.persist_snapshot(&stored).await?;
        let index = {
            let mut current = self
                .shared
                .data
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *current = SmData {
                last_applied: meta.last_log_id,
                last_membership: meta.last_membership.clone(),
                core: data.core,
            };
            current.last_applied.as_ref().map_or(0, |id| id.index())
        };
        tracing::info!(last_log_id = ?meta.last_log_id, "installed snapshot");
        let _ = self.shared.feed.send(AppliedBatch {
            index,
            effects: Arc::new(Vec::new()),
            resync: true,
        });
        self.shared.applied_index.send_replace(index);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Vec<u8>>>, io::Error> {
        match self.shared.disk.get(TreeId::Snapshot, KEY_SNAPSHOT)? {
            None => Ok(None),
            Some(bytes) => {
                let stored: StoredSnapshot = codec::decode("snapshot", &bytes)?;
                Ok(Some(SnapshotOf::<TypeConfig, Vec<u8>> {
                    meta: stored.meta,
                    snapshot: stored.data,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bincode::Options;

    use super::*;
    use crate::disk::MemDisk;

    #[test]
    fn a_snapshot_stored_by_format_3_opens_with_its_indexes_rebuilt() {
        // The snapshot a format-3 build persisted: its state record is the format-3 state
        // fixture (see switchyard-core's tests/state/compat_v3.rs) after the log id and
        // membership, in that build's layout.
        let state_v3 = include_bytes!("../../core/tests/state/fixtures/state_v3.bin");
        let last_applied = Some(openraft::testing::log_id::<TypeConfig>(2, 1, 30));
        let mut data = vec![3u8];
        bincode::DefaultOptions::new()
            .serialize_into(
                &mut data,
                &(&last_applied, StoredMembershipOf::<TypeConfig>::default()),
            )
            .unwrap();
        data.extend_from_slice(&state_v3[1..]);
        let stored = StoredSnapshot {
            meta: SnapshotMetaOf::<TypeConfig> {
                last_log_id: last_applied,
                last_membership: StoredMembershipOf::<TypeConfig>::default(),
            },
            data,
        };
        let mut record = codec::encode(&stored);
        record[0] = 3;
        let disk = MemDisk::new();
        disk.apply(
            TreeId::Snapshot,
            vec![Op::Put(KEY_SNAPSHOT.to_vec(), record)],
        )
        .unwrap();

        let sm = StateMachine::open(Arc::new(disk)).unwrap();
        // A format-3 record: its audit events predate request ids.
        let expected: CoordinatorState = switchyard_core::stored_layout::decoding(
            switchyard_core::stored_layout::Layout::BeforeRequestIds,
            || {
                StateWithStoredIndexes::deserialize(&mut bincode::Deserializer::from_slice(
                    &state_v3[1..],
                    bincode::DefaultOptions::new(),
                ))
            },
        )
        .unwrap()
        .into();
        let read = sm.read();
        assert_eq!(read.applied_index(), 30);
        assert_eq!(read.core(), &expected);
        assert!(read.core().next_deadline_ms().is_some(), "indexes rebuilt");
    }
}
