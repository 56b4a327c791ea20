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
//! **A lagging follower** changes the balance: one that needs a snapshot (its next entry is no
//! longer in the leader's log: it was cut off, or is new), or one more than `every_entries`
//! entries behind (it will need one once a snapshot purges the log past it). It is sent the
//! newest snapshot and then every entry since, and replaying those entries is what keeps it
//! out of the cluster after a partition heals: a follower cut for 120 s under 1 000 writes a
//! second was sent a snapshot 84 000 entries old and spent 2.1 s replaying the tail. While such
//! a follower exists, the snapshot may cost up to [`LAGGING_FOLLOWER_RELIEF`] bytes per byte of
//! log, so the tail it replays stays a small fraction of the state instead of as large as it,
//! and the entry bound shrinks by [`LAGGING_FOLLOWER_ENTRIES_DIVISOR`], so a small state's tail
//! is hundreds of entries, not thousands. Only the leader sees such followers, and only while
//! they lag.
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
    /// How far the furthest-behind follower is behind this (leader's) log, in entries (0 on a
    /// follower, or when every follower is up to date).
    pub follower_entries_behind: u64,
}

/// How many snapshot bytes a byte of log may cost while a follower lags.
///
/// The tail a returning follower replays is then at most a 32nd of the state in log: with a
/// 9 MB state (a full audit trail) and 100-byte admin entries, about 2 800 entries, 70-140 ms
/// at the 20 000-40 000 entries/s a follower applies. At 8 the tail was 12 600 entries, half
/// of the 1 s rejoin budget. A snapshot of that state costs about 5 ms of CPU plus its write,
/// so while a follower lags under 1 000 writes a second (one snapshot every 2.8 s) the leader
/// spends well under 1 % of a core on them.
pub const LAGGING_FOLLOWER_RELIEF: u64 = 32;

/// By how much the entry bound shrinks while a follower lags. The entry bound is
/// what a small state's returning follower replays after installing the snapshot: at the
/// default 5 000 entries, 125-250 ms of the rejoin budget; an eighth of it (625) costs a small
/// state a snapshot that often, and only while a follower lags.
pub const LAGGING_FOLLOWER_ENTRIES_DIVISOR: u64 = 8;

impl SnapshotSchedule {
    /// Whether a snapshot should be built now.
    pub fn due(&self, p: SnapshotProgress) -> bool {
        // A follower more than a full entry interval behind will be cheaper to send a
        // snapshot than the log: a snapshot built under relief purges the log past it.
        let lagging = p.follower_needs_snapshot || p.follower_entries_behind > self.every_entries;
        let (relief, every_entries) = if lagging {
            (
                LAGGING_FOLLOWER_RELIEF,
                (self.every_entries / LAGGING_FOLLOWER_ENTRIES_DIVISOR).max(1),
            )
        } else {
            (1, self.every_entries)
        };
        let log_long_enough =
            p.entries_since >= every_entries || p.log_bytes_since >= self.log_bytes_max;
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
            follower_entries_behind: 0,
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
            follower_entries_behind: 0,
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
        // sent a snapshot up to 90 000 entries old. With it lagging, a 32nd of the state in
        // log is enough.
        assert!(!progress_with_lagging_follower(2_812, 281_200, 9_000_000));
        assert!(progress_with_lagging_follower(2_813, 281_300, 9_000_000));
        assert!(!progress(2_813, 281_300, 9_000_000));
        // A small state is snapshotted after an eighth of the entry bound, so the tail the
        // follower replays after the snapshot stays short; not on every entry.
        assert!(!progress_with_lagging_follower(624, 62_400, 20_000));
        assert!(progress_with_lagging_follower(625, 62_500, 20_000));
        assert!(!progress(625, 62_500, 20_000));
    }

    #[test]
    fn a_follower_far_behind_the_log_counts_as_lagging_before_it_needs_a_snapshot() {
        // A large state: the log is not purged for 90 000 entries, so a follower cut off for
        // 30 s under 1 200 writes a second would replay 36 000 entries (1.3 s). Once it is more
        // than the entry interval behind, snapshots come under relief, and the purge that
        // follows each one leaves it a snapshot and a short tail instead.
        let behind = |entries_behind| {
            SCHEDULE.due(SnapshotProgress {
                entries_since: 2_813,
                log_bytes_since: 281_300,
                snapshot_bytes: 9_000_000,
                follower_needs_snapshot: false,
                follower_entries_behind: entries_behind,
            })
        };
        assert!(!behind(0));
        assert!(
            !behind(5_000),
            "one entry interval behind is still replayed"
        );
        assert!(behind(5_001));
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
            follower_entries_behind: 0,
        }));
    }
}
