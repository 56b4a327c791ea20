//! When a node builds a snapshot: [`SnapshotSchedule`].
//!
//! A snapshot is due when the log since the last one is long enough to be worth folding
//! (`every_entries` entries, or `log_bytes_max` bytes, whichever comes first), **and** that log
//! holds at least as many bytes as the last snapshot did.
//!
//! Why the second condition: a snapshot costs in proportion to the *state* (copy, encode,
//! write, flush), while the log it replaces grows in proportion to the *writes*. A fixed entry
//! count ignores the first: a cluster whose audit trail holds 100 000 events (9 MB encoded)
//! and takes 8 000 small admin writes a second rewrote those 9 MB one and a half times a
//! second on every node, and every write waited behind it. Waiting until the log has caught up
//! with the snapshot bounds the snapshot work to one byte per byte of log written (the rule of
//! Redis' `auto-aof-rewrite-percentage 100`), whatever the size of the state, and it keeps the
//! disk to at most about twice the state plus the log bound. The entry and byte bounds keep
//! restart replay short while the state is small.
//!
//! **A follower that needs a snapshot** (its next entry is no longer in the leader's log: it
//! was cut off, or is new) changes the balance. It will be sent the newest snapshot and then
//! every entry since, and replaying those entries is what keeps it out of the cluster after a
//! partition heals: a follower cut for 120 s under 1 000 writes a second was sent a snapshot
//! 84 000 entries old and spent 2.1 s replaying the tail. While such a follower exists, the
//! snapshot may cost up to [`LAGGING_FOLLOWER_RELIEF`] bytes per byte of log, so the tail it
//! replays stays a fraction of the state instead of as large as it. Only the leader sees such
//! followers, and only while they lag.
//!
//! The schedule is pure: the node feeds it figures it reads from the store and openraft, and
//! triggers the build itself.

/// The snapshot rule of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSchedule {
    /// Entries applied since the last snapshot that make one due.
    pub every_entries: u64,
    /// Log bytes written since the last snapshot that make one due, whatever the entry count.
    pub log_bytes_max: u64,
}

/// What the node knows when it asks whether a snapshot is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotProgress {
    /// Entries applied since the last snapshot (all applied entries if there is none).
    pub entries_since: u64,
    /// Encoded log bytes appended since the last snapshot.
    pub log_bytes_since: u64,
    /// Size of the last snapshot, 0 if there is none.
    pub snapshot_bytes: u64,
    /// Whether a follower needs a snapshot: its next entry was purged from this (leader's) log.
    pub follower_needs_snapshot: bool,
}

/// How many snapshot bytes a byte of log may cost while a follower needs a snapshot.
pub const LAGGING_FOLLOWER_RELIEF: u64 = 8;

impl SnapshotSchedule {
    /// Whether a snapshot should be built now.
    pub fn due(&self, p: SnapshotProgress) -> bool {
        let log_long_enough =
            p.entries_since >= self.every_entries || p.log_bytes_since >= self.log_bytes_max;
        let relief = if p.follower_needs_snapshot {
            LAGGING_FOLLOWER_RELIEF
        } else {
            1
        };
        log_long_enough
            && p.entries_since > 0
            && p.log_bytes_since.saturating_mul(relief) >= p.snapshot_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: SnapshotSchedule = SnapshotSchedule {
        every_entries: 5_000,
        log_bytes_max: 64 << 20,
    };

    fn progress(entries_since: u64, log_bytes_since: u64, snapshot_bytes: u64) -> bool {
        SCHEDULE.due(SnapshotProgress {
            entries_since,
            log_bytes_since,
            snapshot_bytes,
            follower_needs_snapshot: false,
        })
    }

    fn progress_with_lagging_follower(
        entries_since: u64,
        log_bytes_since: u64,
        snapshot_bytes: u64,
    ) -> bool {
        SCHEDULE.due(SnapshotProgress {
            entries_since,
            log_bytes_since,
            snapshot_bytes,
            follower_needs_snapshot: true,
        })
    }

    #[test]
    fn a_small_state_is_snapshotted_every_so_many_entries() {
        assert!(!progress(4_999, 500_000, 20_000));
        assert!(progress(5_000, 500_000, 20_000));
    }

    #[test]
    fn a_large_state_waits_until_the_log_has_caught_up_with_it() {
        // 9 MB of state, 100-byte admin entries: 5 000 entries are not worth a rewrite.
        assert!(!progress(5_000, 500_000, 9_000_000));
        assert!(!progress(89_999, 8_999_900, 9_000_000));
        assert!(progress(90_000, 9_000_000, 9_000_000));
    }

    #[test]
    fn a_follower_that_needs_a_snapshot_gets_a_fresher_one_sooner() {
        // The 9 MB state of the test above: a follower cut off past the log's start would be
        // sent a snapshot up to 90 000 entries old. With it lagging, an eighth of the state
        // in log is enough.
        assert!(!progress_with_lagging_follower(
            11_249, 1_124_900, 9_000_000
        ));
        assert!(progress_with_lagging_follower(11_250, 1_125_000, 9_000_000));
        // The entry bound still holds: a small state is not rebuilt on every entry.
        assert!(!progress_with_lagging_follower(4_999, 500_000, 20_000));
        assert!(progress_with_lagging_follower(5_000, 500_000, 20_000));
    }

    #[test]
    fn large_entries_make_a_snapshot_due_by_bytes_before_the_entry_count() {
        // 2 000 fleet ticks of 40 kB each: 80 MB of log, past the byte bound.
        assert!(progress(2_000, 80 << 20, 10 << 20));
        assert!(!progress(1_000, 40 << 20, 10 << 20));
    }

    #[test]
    fn nothing_new_means_no_snapshot() {
        let tiny = SnapshotSchedule {
            every_entries: 1,
            log_bytes_max: 1,
        };
        assert!(!tiny.due(SnapshotProgress::default()));
        assert!(tiny.due(SnapshotProgress {
            entries_since: 1,
            log_bytes_since: 10,
            snapshot_bytes: 0,
            follower_needs_snapshot: false,
        }));
    }
}
