//! The per-breaker instance table: a hash map, written in id order.
//!
//! Every delta of every tick finds its instance here. An ordered map did it in a dozen string
//! comparisons down a B-tree, about 440 instructions a delta and an eighth of the leader's
//! work per report; a hash map does it with the hash the id carries (keyed SipHash, computed
//! once as the id was read, see [`InstanceId`]) and one comparison, usually of pointers.
//!
//! Nothing that reaches the replicated state depends on the map's order: the trip rule and
//! the views count entries, pruning keeps entries by a predicate, and eviction picks the
//! oldest by `(last report, id)`, a total order. The one place order shows is serialization
//! (snapshots, state digests), which writes entries sorted by id, byte for byte what the
//! ordered map wrote, so every node writes the same snapshot of the same state and snapshots
//! written before this table load unchanged.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use serde::Serializer;

use super::InstanceMarks;
use crate::{InstanceId, InstanceIdHasher};

/// An instance's marks by its id.
pub(super) type InstanceTable =
    HashMap<InstanceId, InstanceMarks, BuildHasherDefault<InstanceIdHasher>>;

/// Serializes `table` as a map in id order.
pub(super) fn serialize_in_id_order<S: Serializer>(
    table: &InstanceTable,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut entries: Vec<(&InstanceId, &InstanceMarks)> = table.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    serializer.collect_map(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Wrapped<'a>(#[serde(serialize_with = "serialize_in_id_order")] &'a InstanceTable);

    fn marks(n: u64) -> InstanceMarks {
        InstanceMarks {
            last_report: n,
            last_failure_next: n + 1,
            last_slow_next: 0,
            last_attempt_next: 0,
        }
    }

    #[test]
    fn tables_with_the_same_entries_serialize_alike_in_id_order_whatever_their_history() {
        // The same 200 entries inserted in opposite orders, into tables of different
        // capacities: their iteration orders differ, their bytes must not.
        let ids: Vec<InstanceId> = (0..200)
            .map(|i| InstanceId::parse(&format!("pod-{:03}", (i * 37) % 200)).unwrap())
            .collect();
        let mut forward = InstanceTable::default();
        for (n, id) in ids.iter().enumerate() {
            forward.insert(id.clone(), marks(n as u64));
        }
        let mut backward = InstanceTable::with_capacity_and_hasher(4_096, Default::default());
        for (n, id) in ids.iter().enumerate().rev() {
            backward.insert(id.clone(), marks(n as u64));
        }
        let a = bincode::serialize(&Wrapped(&forward)).unwrap();
        let b = bincode::serialize(&Wrapped(&backward)).unwrap();
        assert_eq!(a, b);
        // Byte for byte what the ordered map wrote before this table.
        let ordered: std::collections::BTreeMap<_, _> = forward.iter().collect();
        let ordered = bincode::serialize(&ordered).unwrap();
        assert_eq!(a, ordered);
    }
}
