//! The log store's in-memory cache of recent entries (see [`EntryCache`]).

use std::collections::VecDeque;
use std::ops::Bound;

use openraft::alias::EntryOf;
use openraft::entry::RaftEntry;

use openraft::EntryPayload;
use switchyard_core::{Command, Delta};

use crate::TypeConfig;

/// What `entry` holds in memory once decoded, estimated: its encoded size, or for a fleet tick
/// the size of its deltas (each with its own key, instance and latency buckets) when larger.
pub(crate) fn weight(entry: &EntryOf<TypeConfig>, encoded: usize) -> usize {
    let deltas: &[Delta] = match &entry.payload {
        EntryPayload::Normal(request) => match &request.envelope.command {
            Command::Tick { deltas } => deltas,
            Command::TickUnpacked { deltas } => deltas,
            _ => &[],
        },
        _ => &[],
    };
    let decoded: usize = deltas
        .iter()
        .map(|d| {
            std::mem::size_of::<Delta>()
                + d.key.as_str().len()
                + d.instance.as_str().len()
                + std::mem::size_of_val(d.latency.buckets())
        })
        .sum();
    encoded.max(decoded)
}

/// The most recently appended log entries, kept decoded in memory.
///
/// Why: the leader reads every entry back once per follower (to replicate it) and once more to
/// apply it, and a fleet `Tick` entry holds thousands of deltas. Decoding it from disk each
/// time cost the leader about a quarter of its CPU under fleet load. Entries share their
/// command (`Request::envelope` is an `Arc`), so a hit clones no deltas.
///
/// The cache holds one contiguous run of indices ending at the last appended entry, and never
/// anything the disk does not: appends extend it after they reach the disk, truncation and
/// purge cut it before or with the disk. It is bounded by bytes and by entry count; the oldest
/// entries are evicted first, and a read it cannot answer in full goes to disk.
///
/// The bytes are what an entry holds in memory ([`weight`]), not its encoded size: a packed
/// tick is some 40 times smaller than its decoded deltas, and bounding the cache by encoded
/// bytes let each node of a 1 000-instance fleet grow by about 30 MiB a second, towards
/// gigabytes, until a snapshot purged the log.
#[derive(Debug)]
pub(crate) struct EntryCache {
    pub(crate) entries: VecDeque<(EntryOf<TypeConfig>, usize)>,
    pub(crate) bytes: usize,
    bytes_max: usize,
    entries_max: usize,
    hits: u64,
    misses: u64,
}

impl EntryCache {
    /// Reads answered from the cache, and reads that went to disk.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    pub(crate) fn new(bytes_max: usize, entries_max: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            bytes_max,
            entries_max,
            hits: 0,
            misses: 0,
        }
    }

    pub(crate) fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.index())
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Adds freshly appended entries (in index order), replacing any cached entry at or
    /// after the first new index.
    pub(crate) fn extend(
        &mut self,
        appended: impl IntoIterator<Item = (EntryOf<TypeConfig>, usize)>,
    ) {
        for (entry, size) in appended {
            let index = entry.index();
            self.truncate_from(index);
            let follows = self
                .entries
                .back()
                .is_none_or(|(last, _)| last.index() + 1 == index);
            if !follows {
                // A gap (e.g. after a snapshot was installed): start a new run.
                self.clear();
            }
            self.bytes += size;
            self.entries.push_back((entry, size));
            while self.bytes > self.bytes_max || self.entries.len() > self.entries_max {
                match self.entries.pop_front() {
                    Some((_, size)) => self.bytes -= size,
                    None => break,
                }
            }
        }
    }

    /// Drops every cached entry at or after `index`.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        while self
            .entries
            .back()
            .is_some_and(|(last, _)| last.index() >= index)
        {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Drops every cached entry at or before `index`.
    pub(crate) fn purge_through(&mut self, index: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(first, _)| first.index() <= index)
        {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size;
            }
        }
    }

    /// The entries in the range, if the cache holds all of them; `None` sends the read to
    /// disk. A range that starts after the last entry is answered (empty) only when the cache
    /// is not empty and starts at or before it.
    pub(crate) fn get(
        &mut self,
        start: Bound<&u64>,
        end: Bound<&u64>,
    ) -> Option<Vec<EntryOf<TypeConfig>>> {
        let answer = self.lookup(start, end);
        if answer.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        answer
    }

    pub(crate) fn lookup(
        &self,
        start: Bound<&u64>,
        end: Bound<&u64>,
    ) -> Option<Vec<EntryOf<TypeConfig>>> {
        let first = self.first_index()?;
        let start = match start {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.checked_add(1)?,
            Bound::Unbounded => return None,
        };
        if start < first {
            return None;
        }
        let end = match end {
            Bound::Included(i) => i.checked_add(1)?,
            Bound::Excluded(i) => *i,
            // Everything from `start` to the last appended entry: the cache ends where the
            // log ends, so it holds all of it.
            Bound::Unbounded => u64::MAX,
        };
        let skip = usize::try_from(start - first).ok()?;
        let out = self
            .entries
            .iter()
            .skip(skip)
            .take_while(|(e, _)| e.index() < end)
            .map(|(e, _)| e.clone())
            .collect();
        Some(out)
    }
}
