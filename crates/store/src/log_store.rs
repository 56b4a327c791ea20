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
use std::sync::Arc;

use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};

use crate::TypeConfig;
use crate::codec;
use crate::disk::{Disk, Op, TreeId};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// The Raft log storage of one node. Cloning shares the same disk.
#[derive(Debug, Clone)]
pub struct LogStore {
    disk: Arc<dyn Disk>,
}

impl LogStore {
    /// The log kept on `disk`.
    pub fn new(disk: Arc<dyn Disk>) -> Self {
        Self { disk }
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
        let pairs = self.disk.range(
            TreeId::Log,
            key_bound(range.start_bound()),
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
        Ok(LogState {
            last_log_id: last.or(last_purged),
            last_purged_log_id: last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
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
        let ops = entries
            .into_iter()
            .map(|entry| Op::Put(index_key(entry.index()), codec::encode(&entry)))
            .collect();
        self.disk.apply(TreeId::Log, ops)?;
        // Flush before telling openraft the entries are durable: openraft acknowledges appends
        // to the leader (and the leader commits) only after this callback.
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
        // Record the purge point first: if we crash between the two steps the log state still
        // reports a consistent `last_purged_log_id`, and the leftover entries are purged again.
        self.put_meta(KEY_LAST_PURGED, &log_id)?;
        self.disk.flush().await?;
        let keys = self.disk.keys(
            TreeId::Log,
            Bound::Unbounded,
            Bound::Included(index_key(log_id.index())),
        )?;
        self.disk
            .apply(TreeId::Log, keys.into_iter().map(Op::Remove).collect())?;
        Ok(())
    }
}
