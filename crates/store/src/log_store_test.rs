//! Tests of [`super`]: the log store on a real disk and on the in-memory one.
use std::sync::Arc;

use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};

use super::*;
use crate::disk::MemDisk;

fn entry(term: u64, index: u64) -> EntryOf<TypeConfig> {
    EntryOf::<TypeConfig>::new_blank(openraft::testing::log_id::<TypeConfig>(term, 1, index))
}

fn indexes(entries: &[EntryOf<TypeConfig>]) -> Vec<(u64, u64)> {
    entries
        .iter()
        .map(|e| (e.log_id().leader_id.term, e.index()))
        .collect()
}

async fn append(store: &mut LogStore, entries: Vec<EntryOf<TypeConfig>>) {
    store.append(entries, IOFlushed::noop()).await.unwrap();
}

/// Reads `range` from the cache-backed store and from a store over the same disk whose
/// cache is empty (so it reads the disk), and checks they agree.
async fn read_both(
    store: &mut LogStore,
    disk: &Arc<dyn Disk>,
    range: impl RangeBounds<u64> + Clone + Debug + Send,
) -> Vec<(u64, u64)> {
    let cached = store.try_get_log_entries(range.clone()).await.unwrap();
    let mut uncached = LogStore::new(disk.clone());
    let from_disk = uncached.try_get_log_entries(range).await.unwrap();
    assert_eq!(
        indexes(&cached),
        indexes(&from_disk),
        "cache and disk disagree"
    );
    indexes(&cached)
}

#[tokio::test]
async fn reads_of_recent_entries_are_answered_from_the_cache_and_match_the_disk() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::default());
    let mut store = LogStore::new(disk.clone());
    append(&mut store, (1..=10).map(|i| entry(1, i)).collect()).await;
    assert_eq!(
        read_both(&mut store, &disk, 3..6).await,
        vec![(1, 3), (1, 4), (1, 5)]
    );
    assert_eq!(
        read_both(&mut store, &disk, 9..).await,
        vec![(1, 9), (1, 10)]
    );
    assert_eq!(read_both(&mut store, &disk, 11..20).await, vec![]);
    assert_eq!(read_both(&mut store, &disk, 10..=10).await, vec![(1, 10)]);
    let (hits, misses) = store.cache_stats();
    assert_eq!((hits, misses), (4, 0));
}

#[tokio::test]
async fn truncation_and_overwrite_never_leave_stale_entries_in_the_cache() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::default());
    let mut store = LogStore::new(disk.clone());
    append(&mut store, (1..=6).map(|i| entry(1, i)).collect()).await;
    // A new leader overwrites 5 and 6 with entries of term 2, then adds 7.
    store
        .truncate_after(Some(openraft::testing::log_id::<TypeConfig>(1, 1, 4)))
        .await
        .unwrap();
    assert_eq!(read_both(&mut store, &disk, 4..).await, vec![(1, 4)]);
    append(&mut store, (5..=7).map(|i| entry(2, i)).collect()).await;
    assert_eq!(
        read_both(&mut store, &disk, 4..).await,
        vec![(1, 4), (2, 5), (2, 6), (2, 7)]
    );
    // An append that overlaps the tail directly (no truncate call) replaces it too.
    append(&mut store, vec![entry(3, 7)]).await;
    assert_eq!(
        read_both(&mut store, &disk, 6..).await,
        vec![(2, 6), (3, 7)]
    );
}

#[tokio::test]
async fn purged_entries_are_no_longer_served_from_the_cache() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::default());
    let mut store = LogStore::new(disk.clone());
    append(&mut store, (1..=5).map(|i| entry(1, i)).collect()).await;
    store
        .purge(openraft::testing::log_id::<TypeConfig>(1, 1, 3))
        .await
        .unwrap();
    assert_eq!(
        read_both(&mut store, &disk, 1..).await,
        vec![(1, 4), (1, 5)]
    );
    assert_eq!(
        read_both(&mut store, &disk, 4..).await,
        vec![(1, 4), (1, 5)]
    );
}

#[tokio::test]
async fn purged_keys_are_deleted_a_bounded_number_at_a_time_and_never_read_back() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::default());
    let n = PURGE_KEYS_PER_APPEND * 3;
    let mut store = LogStore::with_cache_limits(disk.clone(), usize::MAX, 2);
    append(&mut store, (1..=n).map(|i| entry(1, i)).collect()).await;
    let upto = n - 10;
    store
        .purge(openraft::testing::log_id::<TypeConfig>(1, 1, upto))
        .await
        .unwrap();
    // phase: the purge itself deletes nothing, but nothing purged is ever read back, from
    // this store or from one reopened on the same disk
    assert_eq!(disk.len(TreeId::Log) as u64, n);
    assert_eq!(store.purge_backlog_len(), upto);
    for reader in [store.clone(), LogStore::new(disk.clone())] {
        let mut reader = reader;
        let read = reader.try_get_log_entries(0..).await.unwrap();
        assert_eq!(indexes(&read).first(), Some(&(1, upto + 1)));
        assert_eq!(read.len(), 10);
        let state = reader.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index()), Some(upto));
        assert_eq!(state.last_log_id.map(|l| l.index()), Some(n));
    }
    // phase: each append deletes at most PURGE_KEYS_PER_APPEND of them
    let mut next = n + 1;
    let mut previous = store.purge_backlog_len();
    while previous > 0 {
        append(&mut store, vec![entry(1, next)]).await;
        next += 1;
        let now = store.purge_backlog_len();
        assert_eq!(now, previous.saturating_sub(PURGE_KEYS_PER_APPEND));
        previous = now;
    }
    assert_eq!(disk.len(TreeId::Log) as u64, next - 1 - upto);
    assert_eq!(
        disk.first_key(TreeId::Log).unwrap(),
        Some(index_key(upto + 1))
    );
}

#[tokio::test]
async fn a_purge_beyond_the_end_of_the_log_leaves_an_empty_log_at_the_purge_point() {
    // A snapshot installed past the end of the log purges everything.
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::default());
    let mut store = LogStore::new(disk.clone());
    append(&mut store, (1..=5).map(|i| entry(1, i)).collect()).await;
    store
        .purge(openraft::testing::log_id::<TypeConfig>(2, 1, 40))
        .await
        .unwrap();
    for reader in [store.clone(), LogStore::new(disk.clone())] {
        let mut reader = reader;
        let state = reader.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.index()), Some(40));
        assert_eq!(state.last_purged_log_id.map(|l| l.index()), Some(40));
        assert!(reader.try_get_log_entries(0..).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_cache_is_bounded_by_entries_and_bytes_and_older_reads_go_to_disk() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::default());
    // At most 4 entries.
    let mut store = LogStore::with_cache_limits(disk.clone(), usize::MAX, 4);
    append(&mut store, (1..=10).map(|i| entry(1, i)).collect()).await;
    assert_eq!(store.cache().entries.len(), 4);
    assert_eq!(read_both(&mut store, &disk, 7..).await.len(), 4);
    assert_eq!(store.cache_stats(), (1, 0));
    // 6 is evicted: the read goes to disk, and still returns everything.
    assert_eq!(read_both(&mut store, &disk, 6..).await.len(), 5);
    assert_eq!(store.cache_stats(), (1, 1));

    // At most 2 entries' worth of bytes.
    let size = codec::encode(&entry(1, 1)).len();
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::default());
    let mut store = LogStore::with_cache_limits(disk.clone(), 2 * size, usize::MAX);
    append(&mut store, (1..=10).map(|i| entry(1, i)).collect()).await;
    let cache = store.cache();
    assert_eq!(cache.entries.len(), 2);
    assert!(cache.bytes <= 2 * size, "{} > {}", cache.bytes, 2 * size);
}

/// A fleet tick of `instances` deltas (one breaker) at `index`.
fn tick_entry(index: u64, instances: u32) -> EntryOf<TypeConfig> {
    use switchyard_core::{Actor, Command, Envelope};
    let request = crate::Request {
        stamped_ms: 1,
        envelope: Arc::new(Envelope::new(
            Actor::Node(1),
            Command::Tick {
                deltas: crate::types::fleet_tick(instances, 1).into(),
            },
        )),
    };
    EntryOf::<TypeConfig>::new_normal(
        openraft::testing::log_id::<TypeConfig>(1, 1, index),
        request,
    )
}

#[tokio::test]
async fn the_cache_bounds_a_fleet_tick_by_its_decoded_deltas_not_its_packed_bytes() {
    let encoded = codec::encode(&tick_entry(1, 1_000)).len();
    let decoded = entry_cache::weight(&tick_entry(1, 1_000), encoded);
    // Packed, a delta is a few bytes; decoded, it is a whole `Delta` plus its strings.
    assert!(encoded < 20 * 1_000, "{encoded} bytes packed");
    assert!(
        decoded >= 1_000 * std::mem::size_of::<switchyard_core::Delta>(),
        "{decoded}"
    );
    // Room for 20 ticks by their packed size holds only as many as fit by their deltas.
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::default());
    let mut store = LogStore::with_cache_limits(disk.clone(), 20 * encoded, usize::MAX);
    append(&mut store, (1..=20).map(|i| tick_entry(i, 1_000)).collect()).await;
    let cache = store.cache();
    assert_eq!(cache.entries.len(), 20 * encoded / decoded);
    assert!(cache.bytes <= 20 * encoded);
    // Entries without deltas weigh what they encode to.
    assert_eq!(entry_cache::weight(&entry(1, 1), 42), 42);
}
