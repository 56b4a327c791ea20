//! Where the store's bytes live: the [`Disk`] trait, on sled in production
//! ([`SledDisk`]) and in memory for the deterministic simulation ([`MemDisk`]).
//!
//! The store needs very little from a disk: three ordered key-value trees, atomic batches
//! within a tree, and `flush`, after which everything written so far survives a crash.
//! [`MemDisk`] models exactly that contract, including its failure: a simulated crash
//! throws away every write since the last flush, so the simulation exercises the durability
//! logic (a store that acknowledged before flushing would lose acknowledged entries there).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

/// The trees of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TreeId {
    /// Raft entries by big-endian index.
    Log,
    /// Vote, committed index, purge marker.
    Meta,
    /// The latest state machine snapshot.
    Snapshot,
}

impl TreeId {
    const ALL: [TreeId; 3] = [TreeId::Log, TreeId::Meta, TreeId::Snapshot];

    fn name(self) -> &'static str {
        match self {
            TreeId::Log => "log",
            TreeId::Meta => "meta",
            TreeId::Snapshot => "snapshot",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// One write in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set a key.
    Put(Vec<u8>, Vec<u8>),
    /// Remove a key.
    Remove(Vec<u8>),
}

/// An ordered key-value store with explicit durability.
pub trait Disk: Debug + Send + Sync + 'static {
    /// The value of `key`.
    fn get(&self, tree: TreeId, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
    /// Applies `ops` atomically (all or none become visible).
    fn apply(&self, tree: TreeId, ops: Vec<Op>) -> io::Result<()>;
    /// [`Disk::apply`] for the write path (log appends, snapshots): a disk whose writes can
    /// block the calling thread runs them where that does not stall the async executor.
    /// The default applies in place.
    fn apply_off_executor(&self, tree: TreeId, ops: Vec<Op>) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(std::future::ready(self.apply(tree, ops)))
    }
    /// Key-value pairs with keys in `(from, to)`, in key order.
    fn range(
        &self,
        tree: TreeId,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Keys in `(from, to)`, in key order (no values copied).
    fn keys(
        &self,
        tree: TreeId,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> io::Result<Vec<Vec<u8>>>;
    /// The last pair of the tree.
    fn last(&self, tree: TreeId) -> io::Result<Option<(Vec<u8>, Vec<u8>)>>;
    /// The first key of the tree.
    fn first_key(&self, tree: TreeId) -> io::Result<Option<Vec<u8>>>;
    /// Number of keys in the tree.
    fn len(&self, tree: TreeId) -> usize;
    /// Makes every write so far durable.
    fn flush(&self) -> BoxFuture<'_, io::Result<()>>;
    /// Approximate bytes on disk.
    fn size_on_disk(&self) -> u64;
}

fn apply_sled(tree: &sled::Tree, ops: Vec<Op>) -> io::Result<()> {
    let mut batch = sled::Batch::default();
    for op in ops {
        match op {
            Op::Put(k, v) => batch.insert(k, v),
            Op::Remove(k) => batch.remove(k),
        }
    }
    tree.apply_batch(batch).map_err(sled_err)
}

/// Converts a sled error into an I/O error.
pub fn sled_err(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// sled's segment (I/O buffer) size: 8 MiB instead of sled's 512 KiB.
///
/// sled writes a value larger than a quarter of a segment to a file of its own, synchronously
/// inside the insert. With 512 KiB segments every fleet `Tick` entry (about 0.5 MB for 1 000
/// instances x 20 breakers) became a blob file, and an append took 10-100 ms on a loaded
/// machine. With 8 MiB segments values up to 2 MiB go into the log-structured buffers (a copy
/// on insert, one sequential write and fsync on flush). sled refuses to reopen a database with
/// another segment size, so this is fixed for the life of a data directory.
pub const SLED_SEGMENT_BYTES: usize = 8 << 20;

/// The production disk: one sled database, one sled tree per [`TreeId`].
#[derive(Debug, Clone)]
pub struct SledDisk {
    db: sled::Db,
    trees: [sled::Tree; 3],
}

impl SledDisk {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &std::path::Path) -> io::Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .segment_size(SLED_SEGMENT_BYTES)
            .open()
            .map_err(sled_err)?;
        let open = |t: TreeId| db.open_tree(t.name()).map_err(sled_err);
        let trees = [
            open(TreeId::Log)?,
            open(TreeId::Meta)?,
            open(TreeId::Snapshot)?,
        ];
        Ok(Self { db, trees })
    }

    fn tree(&self, tree: TreeId) -> &sled::Tree {
        &self.trees[tree.slot()]
    }
}

impl Disk for SledDisk {
    fn get(&self, tree: TreeId, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(sled_err)?
            .map(|v| v.to_vec()))
    }

    fn apply(&self, tree: TreeId, ops: Vec<Op>) -> io::Result<()> {
        apply_sled(self.tree(tree), ops)
    }

    /// On a blocking thread: a sled insert can wait for a full I/O buffer to be written, or
    /// write a large value to a file of its own, and either would stall every task sharing the
    /// executor thread (on a loaded node, Report calls waited tens of ms behind an append).
    fn apply_off_executor(&self, tree: TreeId, ops: Vec<Op>) -> BoxFuture<'_, io::Result<()>> {
        let tree = self.tree(tree).clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || apply_sled(&tree, ops))
                .await
                .map_err(|e| io::Error::other(format!("disk write task failed: {e}")))?
        })
    }

    fn range(
        &self,
        tree: TreeId,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree(tree)
            .range::<Vec<u8>, _>((from, to))
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(sled_err))
            .collect()
    }

    fn keys(
        &self,
        tree: TreeId,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> io::Result<Vec<Vec<u8>>> {
        self.tree(tree)
            .range::<Vec<u8>, _>((from, to))
            .map(|r| r.map(|(k, _)| k.to_vec()).map_err(sled_err))
            .collect()
    }

    fn last(&self, tree: TreeId) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .tree(tree)
            .last()
            .map_err(sled_err)?
            .map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    fn first_key(&self, tree: TreeId) -> io::Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)
            .first()
            .map_err(sled_err)?
            .map(|(k, _)| k.to_vec()))
    }

    fn len(&self, tree: TreeId) -> usize {
        self.tree(tree).len()
    }

    fn flush(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            self.db.flush_async().await.map_err(sled_err)?;
            Ok(())
        })
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Default)]
struct MemState {
    /// What reads see.
    live: [Tree; 3],
    /// What survives a crash: every write whose flush completed.
    durable: [Tree; 3],
    /// Writes not yet durable, in order, each with its sequence number.
    unsynced: Vec<(u64, TreeId, Op)>,
    /// The sequence number of the next write.
    next_seq: u64,
    /// Flushes completed, for tests.
    flushes: u64,
    /// How long a flush takes (zero: it completes as it is called).
    flush_latency: std::time::Duration,
}

/// An in-memory disk that survives the loss of its host and forgets unflushed writes on
/// [`MemDisk::crash`]. Cloning shares the same disk (the simulation keeps one per node outside
/// the node's host, and hands it to each incarnation of the node).
///
/// A flush can take time ([`MemDisk::with_flush_latency`]), as an fsync does: it covers the
/// writes made before it was called, and they become durable only when it completes. A crash
/// that lands in between (the host's runtime, and the pending flush with it, dropped) loses
/// them, so code that acknowledges a write before its flush has completed is caught.
#[derive(Debug, Clone, Default)]
pub struct MemDisk {
    state: Arc<Mutex<MemState>>,
}

impl MemDisk {
    /// An empty disk whose flushes complete at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty disk whose flushes take `latency` (of the async runtime's clock; zero: they
    /// complete at once, outside any runtime too).
    pub fn with_flush_latency(latency: std::time::Duration) -> Self {
        let disk = Self::default();
        disk.lock().flush_latency = latency;
        disk
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulates power loss: every write whose flush has not completed is gone.
    pub fn crash(&self) {
        let mut s = self.lock();
        s.live = s.durable.clone();
        s.unsynced.clear();
    }

    /// Writes not yet flushed.
    pub fn unsynced_writes(&self) -> usize {
        self.lock().unsynced.len()
    }

    /// Flushes completed so far.
    pub fn flushes(&self) -> u64 {
        self.lock().flushes
    }

    /// The durable pairs of `tree` (what a crash now would leave), in key order.
    pub fn durable_pairs(&self, tree: TreeId) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.lock().durable[tree.slot()]
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Removes `keys` of `tree` for good, durable copies included: what a store with a broken
    /// recovery does to its own data (the simulation plants it; nothing else calls this).
    pub fn lose(&self, tree: TreeId, keys: &[Vec<u8>]) {
        let mut s = self.lock();
        for key in keys {
            s.live[tree.slot()].remove(key);
            s.durable[tree.slot()].remove(key);
        }
    }

    fn complete_flush(&self, upto_seq: u64) {
        let mut s = self.lock();
        let done = s
            .unsynced
            .iter()
            .take_while(|(q, _, _)| *q < upto_seq)
            .count();
        let flushed: Vec<(u64, TreeId, Op)> = s.unsynced.drain(..done).collect();
        for (_, tree, op) in flushed {
            apply_op(&mut s.durable[tree.slot()], op);
        }
        s.flushes += 1;
    }
}

/// Whether `(from, to)` is a non-empty, well-ordered range (`BTreeMap::range` panics otherwise).
fn ordered(from: &Bound<Vec<u8>>, to: &Bound<Vec<u8>>) -> bool {
    match (from, to) {
        (Bound::Included(f), Bound::Included(t)) => f <= t,
        (Bound::Included(f) | Bound::Excluded(f), Bound::Excluded(t))
        | (Bound::Excluded(f), Bound::Included(t)) => f < t,
        _ => true,
    }
}

fn apply_op(tree: &mut Tree, op: Op) {
    match op {
        Op::Put(k, v) => {
            tree.insert(k, v);
        }
        Op::Remove(k) => {
            tree.remove(&k);
        }
    }
}

impl Disk for MemDisk {
    fn get(&self, tree: TreeId, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.lock().live[tree.slot()].get(key).cloned())
    }

    fn apply(&self, tree: TreeId, ops: Vec<Op>) -> io::Result<()> {
        let mut s = self.lock();
        for op in ops {
            apply_op(&mut s.live[tree.slot()], op.clone());
            let seq = s.next_seq;
            s.next_seq += 1;
            s.unsynced.push((seq, tree, op));
        }
        Ok(())
    }

    fn range(
        &self,
        tree: TreeId,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if !ordered(&from, &to) {
            return Ok(Vec::new());
        }
        let s = self.lock();
        Ok(s.live[tree.slot()]
            .range((from, to))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn keys(
        &self,
        tree: TreeId,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> io::Result<Vec<Vec<u8>>> {
        if !ordered(&from, &to) {
            return Ok(Vec::new());
        }
        let s = self.lock();
        Ok(s.live[tree.slot()]
            .range((from, to))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn last(&self, tree: TreeId) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self.lock().live[tree.slot()]
            .iter()
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn first_key(&self, tree: TreeId) -> io::Result<Option<Vec<u8>>> {
        Ok(self.lock().live[tree.slot()].keys().next().cloned())
    }

    fn len(&self, tree: TreeId) -> usize {
        self.lock().live[tree.slot()].len()
    }

    fn flush(&self) -> BoxFuture<'_, io::Result<()>> {
        let (upto_seq, latency) = {
            let s = self.lock();
            (s.next_seq, s.flush_latency)
        };
        if latency.is_zero() {
            self.complete_flush(upto_seq);
            return Box::pin(async { Ok(()) });
        }
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            self.complete_flush(upto_seq);
            Ok(())
        })
    }

    fn size_on_disk(&self) -> u64 {
        let s = self.lock();
        TreeId::ALL
            .iter()
            .flat_map(|t| s.live[t.slot()].iter())
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_disk_forgets_unflushed_writes_on_crash() {
        let disk = MemDisk::new();
        disk.apply(TreeId::Log, vec![Op::Put(b"a".to_vec(), b"1".to_vec())])
            .unwrap();
        futures::executor::block_on(disk.flush()).unwrap();
        disk.apply(
            TreeId::Log,
            vec![
                Op::Put(b"b".to_vec(), b"2".to_vec()),
                Op::Remove(b"a".to_vec()),
            ],
        )
        .unwrap();
        assert_eq!(disk.len(TreeId::Log), 1);
        assert_eq!(disk.unsynced_writes(), 2);
        disk.crash();
        assert_eq!(disk.get(TreeId::Log, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(disk.get(TreeId::Log, b"b").unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_crash_before_a_slow_flush_completes_loses_the_writes_it_covers() {
        let disk = MemDisk::with_flush_latency(std::time::Duration::from_millis(10));
        disk.apply(TreeId::Log, vec![Op::Put(b"a".to_vec(), b"1".to_vec())])
            .unwrap();
        disk.flush().await.unwrap();
        assert_eq!(disk.durable_pairs(TreeId::Log).len(), 1);
        disk.apply(TreeId::Log, vec![Op::Put(b"b".to_vec(), b"2".to_vec())])
            .unwrap();
        // phase: a flush is under way (polled once, not complete) when the power goes
        let mut pending = disk.flush();
        assert!(futures::poll!(&mut pending).is_pending());
        drop(pending);
        disk.crash();
        assert_eq!(disk.get(TreeId::Log, b"b").unwrap(), None);
        assert_eq!(disk.get(TreeId::Log, b"a").unwrap(), Some(b"1".to_vec()));
        // phase: a write made after a flush began is not covered by it
        disk.apply(TreeId::Log, vec![Op::Put(b"c".to_vec(), b"3".to_vec())])
            .unwrap();
        let flush = disk.flush();
        disk.apply(TreeId::Log, vec![Op::Put(b"d".to_vec(), b"4".to_vec())])
            .unwrap();
        flush.await.unwrap();
        disk.crash();
        assert_eq!(disk.get(TreeId::Log, b"c").unwrap(), Some(b"3".to_vec()));
        assert_eq!(disk.get(TreeId::Log, b"d").unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_writes_off_the_executor_are_durable_and_reopen_with_the_same_segments() {
        // A fleet tick of about 1 MB: inline in sled's 8 MiB segments, written on a blocking
        // thread, flushed, and read back after the database is closed and reopened.
        let dir = tempfile::tempdir().unwrap();
        let value: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        {
            let disk = SledDisk::open(dir.path()).unwrap();
            disk.apply_off_executor(TreeId::Log, vec![Op::Put(b"k".to_vec(), value.clone())])
                .await
                .unwrap();
            disk.flush().await.unwrap();
        }
        let disk = SledDisk::open(dir.path()).unwrap();
        assert_eq!(disk.get(TreeId::Log, b"k").unwrap(), Some(value));
        disk.apply_off_executor(TreeId::Log, vec![Op::Remove(b"k".to_vec())])
            .await
            .unwrap();
        assert_eq!(disk.len(TreeId::Log), 0);
    }

    #[test]
    fn ranges_respect_bounds() {
        let disk = MemDisk::new();
        let ops = (0u8..5).map(|i| Op::Put(vec![i], vec![i])).collect();
        disk.apply(TreeId::Meta, ops).unwrap();
        let got = disk
            .range(
                TreeId::Meta,
                Bound::Excluded(vec![1]),
                Bound::Included(vec![3]),
            )
            .unwrap();
        assert_eq!(
            got.iter().map(|(k, _)| k[0]).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert_eq!(disk.last(TreeId::Meta).unwrap().unwrap().0, vec![4]);
        assert_eq!(
            disk.keys(TreeId::Meta, Bound::Unbounded, Bound::Excluded(vec![2]))
                .unwrap()
                .len(),
            2
        );
    }
}
