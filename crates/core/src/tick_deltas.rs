//! [`TickDeltas`]: a tick's deltas together with their packed encoding, computed at most once.
//!
//! A leader encodes a tick entry more than once: to append it to its own log, and for every
//! follower both to size an AppendEntries call and to send it. At 1 000 instances × 20
//! breakers the packing was the biggest item of a loaded leader's profile because of those
//! repeats. The packed bytes are kept beside the deltas the first time they are needed; an
//! entry is shared (`Arc`) by the log, every replication stream and the state machine, so they
//! all reuse one encoding. A follower keeps the bytes it received, so its own log append does
//! not encode again either.
//!
//! The wire format is [`crate::tick_codec`]'s, unchanged. Equality compares the deltas only.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::de::{Error, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Delta;
use crate::tick_codec;

/// A tick's deltas and, once asked for, their packed encoding.
#[derive(Debug, Clone, Default)]
pub struct TickDeltas {
    deltas: Vec<Delta>,
    packed: OnceLock<Arc<[u8]>>,
}

impl TickDeltas {
    /// The packed encoding, computed on first use.
    pub fn packed(&self) -> &[u8] {
        self.packed
            .get_or_init(|| tick_codec::encode(&self.deltas).into())
    }

    /// The deltas.
    pub fn into_vec(self) -> Vec<Delta> {
        self.deltas
    }
}

impl From<Vec<Delta>> for TickDeltas {
    fn from(deltas: Vec<Delta>) -> Self {
        Self {
            deltas,
            packed: OnceLock::new(),
        }
    }
}

impl FromIterator<Delta> for TickDeltas {
    fn from_iter<I: IntoIterator<Item = Delta>>(iter: I) -> Self {
        Vec::from_iter(iter).into()
    }
}

impl Deref for TickDeltas {
    type Target = Vec<Delta>;

    fn deref(&self) -> &Vec<Delta> {
        &self.deltas
    }
}

impl PartialEq for TickDeltas {
    fn eq(&self, other: &Self) -> bool {
        self.deltas == other.deltas
    }
}

impl Serialize for TickDeltas {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.packed())
    }
}

struct Packed;

impl Packed {
    fn decoded<E: Error>(bytes: &[u8]) -> Result<TickDeltas, E> {
        let deltas = tick_codec::decode(bytes).map_err(E::custom)?;
        Ok(TickDeltas {
            deltas,
            packed: OnceLock::from(Arc::<[u8]>::from(bytes)),
        })
    }
}

impl<'de> Visitor<'de> for Packed {
    type Value = TickDeltas;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a packed tick")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Self::decoded(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut bytes = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Self::decoded(&bytes)
    }
}

impl<'de> Deserialize<'de> for TickDeltas {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(Packed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BreakerKey, InstanceId};

    fn deltas() -> Vec<Delta> {
        (0..3)
            .map(|i| Delta {
                key: BreakerKey::parse("s/k").unwrap(),
                instance: InstanceId::parse(&format!("i{i}")).unwrap(),
                calls: 5,
                failures: i,
                slow: 0,
                rejected: 0,
                latency: crate::LatencySketch::default(),
                first_attempts: 0,
                retries: 0,
            })
            .collect()
    }

    #[test]
    fn encodes_once_and_clones_share_the_bytes() {
        let tick = TickDeltas::from(deltas());
        assert!(tick.packed.get().is_none());
        let first = tick.packed().as_ptr();
        let copy = tick.clone();
        assert_eq!(copy.packed().as_ptr(), first);
        assert_eq!(tick.packed(), tick_codec::encode(&deltas()).as_slice());
    }

    #[test]
    fn a_decoded_tick_keeps_the_bytes_it_came_from() {
        let bytes = tick_codec::encode(&deltas());
        let tick: TickDeltas = Packed::decoded::<serde::de::value::Error>(&bytes).unwrap();
        assert_eq!(*tick, deltas());
        assert_eq!(tick.packed.get().map(|b| b.to_vec()), Some(bytes.clone()));
        assert_eq!(tick, TickDeltas::from(deltas()));
        let mut garbled = bytes;
        garbled.truncate(garbled.len() - 1);
        assert!(Packed::decoded::<serde::de::value::Error>(&garbled).is_err());
    }
}
