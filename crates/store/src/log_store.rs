//! The Raft log, vote, committed index and purge marker.
//!
//! Durability: `append`, `save_vote`, `truncate_after` and `purge` flush the disk (an fsync on
//! sled) before they report success, so nothing is acknowledged to a peer or a client that a
//! crash could take back. The committed index is written without a flush: it is a hint that
//! lets a restarted node re-apply its own log early; losing it only delays that until the
//! leader tells the node the commit index again.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use switchyard_core::plant::{Plant, planted};

use crate::TypeConfig;
use crate::codec;
use crate::disk::{Disk, Op, TreeId};
use crate::entry_cache::{self, EntryCache};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// Bytes the log store's entry cache keeps at most, as the memory its entries hold (a fleet
/// tick's decoded deltas, not its packed bytes).
pub const ENTRY_CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Entries the log store's entry cache keeps at most, whatever their size.
pub const ENTRY_CACHE_ENTRIES_MAX: usize = 4_096;

/// Purged log keys deleted with each append, at most.
pub const PURGE_KEYS_PER_APPEND: u64 = 256;

/// The Raft log storage of one node. Cloning shares the same disk and entry cache.
#[derive(Debug, Clone)]
pub struct LogStore {
    disk: Arc<dyn Disk>,
    cache: Arc<Mutex<EntryCache>>,
    /// Purged indexes whose keys are still on disk, `first..=last`: deleted a few at a time
    /// with later appends (see [`LogStore::purge`]).
    purge_backlog: Arc<Mutex<Option<(u64, u64)>>>,
    /// Encoded bytes of every entry appended by this process (the snapshot schedule's measure
    /// of how much log has been written).
    appended_bytes: Arc<AtomicU64>,
}

impl LogStore {
    /// The log kept on `disk`.
    pub fn new(disk: Arc<dyn Disk>) -> Self {
        Self::with_cache_limits(disk, ENTRY_CACHE_BYTES_MAX, ENTRY_CACHE_ENTRIES_MAX)
    }

    /// The log kept on `disk`, caching at most `bytes_max` bytes and `entries_max` entries of
    /// the most recently appended entries.
    pub fn with_cache_limits(disk: Arc<dyn Disk>, bytes_max: usize, entries_max: usize) -> Self {
        let store = Self {
            disk,
            cache: Arc::new(Mutex::new(EntryCache::new(bytes_max, entries_max))),
            purge_backlog: Arc::default(),
            appended_bytes: Arc::default(),
        };
        // Purged keys a previous process had not deleted yet: found again here so they are
        // deleted, and never read back.
        match store.find_purge_backlog() {
            Ok(backlog) => *store.backlog() = backlog,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the purge point; purged keys stay on disk until the next purge")
            }
        }
        store
    }

    fn find_purge_backlog(&self) -> Result<Option<(u64, u64)>, io::Error> {
        let Some(purged) =
            self.get_meta::<LogIdOf<TypeConfig>>(KEY_LAST_PURGED, "last purged log id")?
        else {
            return Ok(None);
        };
        let Some(first) = self.disk.first_key(TreeId::Log)? else {
            return Ok(None);
        };
        let first = key_index(&first)?;
        Ok((first <= purged.index()).then_some((first, purged.index())))
    }

    fn backlog(&self) -> std::sync::MutexGuard<'_, Option<(u64, u64)>> {
        self.purge_backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes up to `n` purged keys off the backlog, to delete with the next write.
    fn take_purged_keys(&self, n: u64) -> Vec<Op> {
        let mut backlog = self.backlog();
        let Some((first, last)) = *backlog else {
            return Vec::new();
        };
        let end = last.min(first.saturating_add(n.saturating_sub(1)));
        *backlog = (end < last).then_some((end + 1, last));
        (first..=end).map(|i| Op::Remove(index_key(i))).collect()
    }

    /// Encoded bytes of all entries appended since this process opened the log.
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes.load(Ordering::Relaxed)
    }

    /// Purged entries whose keys are still on disk, waiting to be deleted.
    pub fn purge_backlog_len(&self) -> u64 {
        self.backlog().map_or(0, |(first, last)| last - first + 1)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, EntryCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many reads the entry cache answered and how many went to disk, for metrics.
    pub fn cache_stats(&self) -> (u64, u64) {
        let cache = self.cache();
        cache.stats()
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static [u8],
        what: &'static str,
    ) -> Result<Option<T>, io::Error> {
        match self.disk.get(TreeId::Meta, key)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(codec::decode(what, &bytes)?)),
        }
    }

    fn put_meta<T: serde::Serialize>(
        &self,
        key: &'static [u8],
        value: &T,
    ) -> Result<(), io::Error> {
        self.disk.apply(
            TreeId::Meta,
            vec![Op::Put(key.to_vec(), codec::encode(value))],
        )
    }

    /// Flushes everything written so far to disk (used on graceful shutdown).
    pub async fn flush_now(&self) -> Result<(), io::Error> {
        self.disk.flush().await
    }

    /// The number of entries currently held in the log (after purges), for metrics.
    pub fn len(&self) -> usize {
        self.disk.len(TreeId::Log)
    }

    /// Whether the log holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The on-disk size of the whole store in bytes, for metrics.
    pub fn size_on_disk(&self) -> u64 {
        self.disk.size_on_disk()
    }
}

fn index_key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

fn key_index(key: &[u8]) -> Result<u64, io::Error> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "log key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn key_bound(bound: Bound<&u64>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Included(i) => Bound::Included(index_key(*i)),
        Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<TypeConfig>>, io::Error> {
        if let Some(entries) = self.cache().get(range.start_bound(), range.end_bound()) {
            return Ok(entries);
        }
        // Purged entries may still be on disk (the backlog): never return them.
        let start = match (*self.backlog(), range.start_bound()) {
            (Some((_, purged)), Bound::Included(i)) if *i <= purged => Bound::Excluded(purged),
            (Some((_, purged)), Bound::Excluded(i)) if *i < purged => Bound::Excluded(purged),
            (Some((_, purged)), Bound::Unbounded) => Bound::Excluded(purged),
            (_, bound) => bound.cloned(),
        };
        let pairs = self.disk.range(
            TreeId::Log,
            key_bound(start.as_ref()),
            key_bound(range.end_bound()),
        )?;
        let mut entries = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let index = key_index(&key)?;
            let entry: EntryOf<TypeConfig> = codec::decode("log entry", &value)?;
            if entry.index() != index {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "log entry stored at index {index} claims index {}",
                        entry.index()
                    ),
                ));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        self.get_meta(KEY_VOTE, "vote")
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<openraft::LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogIdOf<TypeConfig>> =
            self.get_meta(KEY_LAST_PURGED, "last purged log id")?;
        let last = match self.disk.last(TreeId::Log)? {
            None => None,
            Some((_, value)) => {
                let entry: EntryOf<TypeConfig> = codec::decode("log entry", &value)?;
                Some(entry.log_id())
            }
        };
        // A last entry at or below the purge point is a purged key not deleted yet (a snapshot
        // installed beyond the end of the log purges everything): the purge point is the end.
        let last = last.filter(|l| last_purged.as_ref().is_none_or(|p| l.index() > p.index()));
        Ok(LogState {
            last_log_id: last.or(last_purged),
            last_purged_log_id: last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        if planted(Plant::VoteNotPersisted) {
            return Ok(());
        }
        self.put_meta(KEY_VOTE, vote)?;
        self.disk.flush().await
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        self.put_meta(KEY_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        Ok(self
            .get_meta::<Option<LogIdOf<TypeConfig>>>(KEY_COMMITTED, "committed log id")?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<EntryOf<TypeConfig>> = entries.into_iter().collect();
        // Purged keys ride along in the same batch: deleting them costs each append a bounded
        // amount instead of stalling one append for the whole purge.
        let removals = self.take_purged_keys(PURGE_KEYS_PER_APPEND);
        let mut ops = Vec::with_capacity(entries.len() + removals.len());
        ops.extend(removals);
        let mut sizes = Vec::with_capacity(entries.len());
        for entry in &entries {
            let bytes = codec::encode(entry);
            sizes.push((bytes.len(), entry_cache::weight(entry, bytes.len())));
            ops.push(Op::Put(index_key(entry.index()), bytes));
        }
        if let Err(e) = self.disk.apply_off_executor(TreeId::Log, ops).await {
            // What reached the disk is unknown: read it back from there from now on.
            self.cache().clear();
            return Err(e);
        }
        let bytes: usize = sizes.iter().map(|(encoded, _)| encoded).sum();
        self.appended_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.cache().extend(
            entries
                .into_iter()
                .zip(sizes.into_iter().map(|(_, weight)| weight)),
        );
        // Flush before telling openraft the entries are durable: openraft acknowledges appends
        // to the leader (and the leader commits) only after this callback.
        if planted(Plant::AckBeforeFlush) {
            // The planted bug: acknowledged now, flushed whenever something else flushes.
            callback.io_completed(Ok(()));
            return Ok(());
        }
        let flushed = self.disk.flush().await;
        let reported = match &flushed {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        callback.io_completed(reported);
        flushed
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        self.cache().truncate_from(from);
        let keys = self.disk.keys(
            TreeId::Log,
            Bound::Included(index_key(from)),
            Bound::Unbounded,
        )?;
        self.disk
            .apply(TreeId::Log, keys.into_iter().map(Op::Remove).collect())?;
        self.disk.flush().await
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        // Only the purge point is written (and flushed) here: from then on the log state
        // reports it, and openraft never reads below it. The keys themselves are deleted
        // later, a few with each append (`PURGE_KEYS_PER_APPEND`). Deleting thousands of
        // keys here, in the log's I/O path, stalled every write behind it at each snapshot.
        // A restart finds what a crash left of the backlog again (`LogStore::new`).
        let previous: Option<LogIdOf<TypeConfig>> =
            self.get_meta(KEY_LAST_PURGED, "last purged log id")?;
        self.put_meta(KEY_LAST_PURGED, &log_id)?;
        self.disk.flush().await?;
        self.cache().purge_through(log_id.index());
        let upto = log_id.index();
        let mut backlog = self.backlog();
        let first = match *backlog {
            Some((first, _)) => Some(first),
            // Not known in this process (first purge since the start): the first key on disk.
            None => match self.disk.first_key(TreeId::Log)? {
                Some(key) => Some(key_index(&key)?),
                None => previous.map(|p| p.index() + 1),
            },
        };
        *backlog = first
            .filter(|first| *first <= upto)
            .map(|first| (first, upto));
        Ok(())
    }
}

#[cfg(test)]
#[path = "log_store_test.rs"]
mod tests;
