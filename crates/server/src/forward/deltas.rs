//! The deltas of a forwarded batch, read with each distinct key and instance id parsed and
//! allocated once per batch: [`deserialize`].
//!
//! Two thirds of the deltas a leader applies reach it from followers, in batches merged per
//! (breaker, instance): a key repeats for a whole run of deltas, and an instance once per
//! breaker. The derived decoding read every delta's key and instance into a new string, then
//! validated and copied it again into the shared id, which was a tenth of a loaded leader's
//! CPU. The encoding is unchanged (serde's for `Vec<Delta>`, fields in declaration order), so
//! nodes of either build read each other's batches.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, SeqAccess, Visitor};
use switchyard_core::{BreakerKey, Delta, InstanceId, LatencySketch};

/// Deserializes `Vec<Delta>` as the derived code does, sharing ids within the batch.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Delta>, D::Error> {
    deserializer.deserialize_seq(Batch)
}

/// The ids read so far in one batch.
#[derive(Default)]
struct Ids {
    /// The key of the previous delta: a batch lists a breaker's deltas together.
    key: Option<BreakerKey>,
    /// Every instance read, by its text (the standard keyed hasher: ids come from clients).
    instances: HashMap<Box<str>, InstanceId>,
}

impl Ids {
    fn key<E: Error>(&mut self, text: &str) -> Result<BreakerKey, E> {
        if let Some(key) = &self.key
            && key.as_str() == text
        {
            return Ok(key.clone());
        }
        let key = BreakerKey::parse(text).map_err(E::custom)?;
        self.key = Some(key.clone());
        Ok(key)
    }

    fn instance<E: Error>(&mut self, text: &str) -> Result<InstanceId, E> {
        if let Some(id) = self.instances.get(text) {
            return Ok(id.clone());
        }
        let id = InstanceId::parse(text).map_err(E::custom)?;
        self.instances.insert(text.into(), id.clone());
        Ok(id)
    }
}

/// At most this many deltas are allocated for ahead of reading them: a length prefix is not
/// trusted (the node's message size limit bounds what follows).
const PREALLOCATED_MAX: usize = 16_384;

struct Batch;

impl<'de> Visitor<'de> for Batch {
    type Value = Vec<Delta>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of deltas")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Delta>, A::Error> {
        let mut ids = Ids::default();
        let mut deltas = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(PREALLOCATED_MAX));
        while let Some(delta) = seq.next_element_seed(OneDelta(&mut ids))? {
            deltas.push(delta);
        }
        Ok(deltas)
    }
}

/// The fields of [`Delta`], in declaration order (its serialized order).
const FIELDS: &[&str] = &[
    "key",
    "instance",
    "calls",
    "failures",
    "slow",
    "rejected",
    "latency",
    "first_attempts",
    "retries",
];

struct OneDelta<'a>(&'a mut Ids);

impl<'de> DeserializeSeed<'de> for OneDelta<'_> {
    type Value = Delta;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Delta, D::Error> {
        deserializer.deserialize_struct("Delta", FIELDS, self)
    }
}

impl<'de> Visitor<'de> for OneDelta<'_> {
    type Value = Delta;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a delta")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Delta, A::Error> {
        let ids = self.0;
        let missing = |field: usize| A::Error::invalid_length(field, &"a delta of 9 fields");
        let key = seq
            .next_element_seed(Text(|text: &str| ids.key(text)))?
            .ok_or_else(|| missing(0))?;
        let instance = seq
            .next_element_seed(Text(|text: &str| ids.instance(text)))?
            .ok_or_else(|| missing(1))?;
        let calls = seq.next_element()?.ok_or_else(|| missing(2))?;
        let failures = seq.next_element()?.ok_or_else(|| missing(3))?;
        let slow = seq.next_element()?.ok_or_else(|| missing(4))?;
        let rejected = seq.next_element()?.ok_or_else(|| missing(5))?;
        let latency: LatencySketch = seq.next_element()?.ok_or_else(|| missing(6))?;
        let first_attempts = seq.next_element()?.ok_or_else(|| missing(7))?;
        let retries = seq.next_element()?.ok_or_else(|| missing(8))?;
        Ok(Delta {
            key,
            instance,
            calls,
            failures,
            slow,
            rejected,
            latency,
            first_attempts,
            retries,
        })
    }
}

/// A string field turned into an id by `make`, read in place when the format lends it.
struct Text<F>(F);

impl<'de, T, F> DeserializeSeed<'de> for Text<F>
where
    F: FnOnce(&str) -> Result<T, serde::de::value::Error>,
{
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, T, F> Visitor<'de> for Text<F>
where
    F: FnOnce(&str) -> Result<T, serde::de::value::Error>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<T, E> {
        (self.0)(text).map_err(E::custom)
    }
}

#[cfg(test)]
#[path = "deltas_test.rs"]
mod tests;
