//! The packed encoding of a tick's deltas, the bulk of the replicated log.
//!
//! A tick carries one delta per (breaker, instance) that reported in it: at 1 000 instances ×
//! 20 breakers that is 20 000 deltas every 100 ms, each written, fsynced and sent to every
//! follower. Encoded field by field, every delta repeats its breaker key and instance id and
//! spends a byte on each of its seven counters, most of them zero. Packed:
//!
//! ```text
//! version u8 (= 1)
//! instances: n, then n × (len, utf-8)       every instance id once per tick
//! groups:    n, then per run of one breaker:
//!   key (len, utf-8), deltas: n, then per delta:
//!     flags u8, [instance: zigzag step], calls, [failures] [slow] [rejected]
//!     [first_attempts] [retries], [latency]
//! ```
//!
//! All integers are LEB128 varints. `flags` says which optional fields follow: bit 0 "next
//! instance" (the instance index is the previous one's plus one, so no step is written; a
//! group's first delta steps from -1), bits 1-5 the non-zero counters, bit 6 a latency
//! sketch of one bucket holding all `calls` (only its index follows), bit 7 any other
//! non-empty sketch (bucket count, then per bucket the index step and the count). Deltas keep
//! their order, so decoding gives back exactly the deltas that were encoded: the state
//! machine sees the same per-instance evidence either way, which the trip rule's
//! `min_instances` and freshest span depend on.
//!
//! Decoding never trusts a length: every count is checked against the bytes left before
//! anything is allocated, ids are parsed with their own rules, and a truncated, garbled or
//! trailing record is a [`TickCodecError`], never a panic.

use std::collections::HashMap;
use std::fmt;

use crate::{BreakerKey, Delta, InstanceId, LatencySketch, SketchBuckets};

/// The version byte this build writes and reads.
pub const TICK_CODEC_VERSION: u8 = 1;

const NEXT_INSTANCE: u8 = 1;
const HAS_FAILURES: u8 = 1 << 1;
const HAS_SLOW: u8 = 1 << 2;
const HAS_REJECTED: u8 = 1 << 3;
const HAS_FIRST_ATTEMPTS: u8 = 1 << 4;
const HAS_RETRIES: u8 = 1 << 5;
const LATENCY_ONE_BUCKET: u8 = 1 << 6;
const LATENCY_BUCKETS: u8 = 1 << 7;

/// A packed tick that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickCodecError {
    /// Byte offset where decoding stopped.
    pub offset: usize,
    /// What was wrong there.
    pub reason: String,
}

impl fmt::Display for TickCodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "packed tick, byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for TickCodecError {}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Packs `deltas`, keeping their order.
///
/// Instance ids are written once, in string order, and each delta refers to its id's place
/// in that order. The place is found with at most one hash lookup per delta and one sort of
/// the distinct ids (a search of an ordered map per delta compared strings about ten times
/// per delta at 1 000 instances, most of the encoding's cost). The map's hasher is keyed at
/// random, so ids a client chooses cannot be made to collide, and only the sorted order
/// reaches the bytes: the encoding stays deterministic.
pub fn encode(deltas: &[Delta]) -> Vec<u8> {
    let (names, at) = instance_places(deltas);
    let mut out = Vec::with_capacity(16 + deltas.len() * 4 + names.len() * 16);
    out.push(TICK_CODEC_VERSION);
    put_varint(&mut out, names.len() as u64);
    for id in &names {
        put_str(&mut out, id);
    }
    let mut next = 0usize;
    let groups: Vec<&[Delta]> = deltas.chunk_by(|a, b| a.key == b.key).collect();
    put_varint(&mut out, groups.len() as u64);
    for group in groups {
        put_str(&mut out, group[0].key.as_str());
        put_varint(&mut out, group.len() as u64);
        let mut previous: i64 = -1;
        for d in group {
            let at = i64::from(at[next]);
            next += 1;
            let buckets = d.latency.buckets();
            let mut flags = 0u8;
            for (bit, value) in [
                (HAS_FAILURES, d.failures),
                (HAS_SLOW, d.slow),
                (HAS_REJECTED, d.rejected),
                (HAS_FIRST_ATTEMPTS, u64::from(d.first_attempts)),
                (HAS_RETRIES, u64::from(d.retries)),
            ] {
                if value != 0 {
                    flags |= bit;
                }
            }
            if at == previous + 1 {
                flags |= NEXT_INSTANCE;
            }
            match buckets {
                [] => {}
                [(_, count)] if *count == d.calls => flags |= LATENCY_ONE_BUCKET,
                _ => flags |= LATENCY_BUCKETS,
            }
            out.push(flags);
            if flags & NEXT_INSTANCE == 0 {
                put_varint(&mut out, zigzag(at - previous));
            }
            previous = at;
            put_varint(&mut out, d.calls);
            for value in [
                d.failures,
                d.slow,
                d.rejected,
                u64::from(d.first_attempts),
                u64::from(d.retries),
            ] {
                if value != 0 {
                    put_varint(&mut out, value);
                }
            }
            if flags & LATENCY_ONE_BUCKET != 0 {
                put_varint(&mut out, u64::from(buckets[0].0));
            } else if flags & LATENCY_BUCKETS != 0 {
                put_varint(&mut out, buckets.len() as u64);
                let mut last = 0u16;
                for &(bucket, count) in buckets {
                    put_varint(&mut out, u64::from(bucket - last));
                    put_varint(&mut out, count);
                    last = bucket;
                }
            }
        }
    }
    out
}

/// The distinct instance ids of `deltas` in string order, and each delta's place in it.
fn instance_places(deltas: &[Delta]) -> (Vec<&str>, Vec<u32>) {
    // Dense ids in order of first appearance. A merged tick lists the same instances, in the
    // same order, for breaker after breaker, so the id at the same position of the previous
    // breaker's run is tried first: one string compare instead of a hash.
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut name_of: Vec<&str> = Vec::new();
    let mut first_seen: Vec<u32> = Vec::with_capacity(deltas.len());
    let mut previous_run: Vec<u32> = Vec::new();
    let mut run: Vec<u32> = Vec::new();
    for (at, d) in deltas.iter().enumerate() {
        if at > 0 && deltas[at - 1].key != d.key {
            std::mem::swap(&mut previous_run, &mut run);
            run.clear();
        }
        let name = d.instance.as_str();
        let id = match previous_run.get(run.len()) {
            Some(&id) if name_of[id as usize] == name => id,
            _ => *ids.entry(name).or_insert_with(|| {
                name_of.push(name);
                name_of.len() as u32 - 1
            }),
        };
        run.push(id);
        first_seen.push(id);
    }
    let mut by_name: Vec<(&str, u32)> = ids.into_iter().collect();
    by_name.sort_unstable();
    let mut place = vec![0u32; by_name.len()];
    for (at, &(_, id)) in by_name.iter().enumerate() {
        place[id as usize] = at as u32;
    }
    let names = by_name.into_iter().map(|(name, _)| name).collect();
    (
        names,
        first_seen
            .into_iter()
            .map(|id| place[id as usize])
            .collect(),
    )
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, TickCodecError> {
        Err(TickCodecError {
            offset: self.at,
            reason: reason.into(),
        })
    }

    fn byte(&mut self) -> Result<u8, TickCodecError> {
        let Some(&b) = self.bytes.get(self.at) else {
            return self.fail("truncated");
        };
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, TickCodecError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return self.fail("varint overflows 64 bits");
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail("varint longer than 10 bytes")
    }

    /// A count of items that each take at least `min_bytes`, checked against what is left.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize, TickCodecError> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left / min_bytes as u64 {
            return self.fail(format!("{what}: {n} do not fit in the {left} bytes left"));
        }
        Ok(n as usize)
    }

    fn str(&mut self, what: &str) -> Result<&'a str, TickCodecError> {
        let len = self.count(what, 1)?;
        let raw = &self.bytes[self.at..self.at + len];
        let Ok(s) = std::str::from_utf8(raw) else {
            return self.fail(format!("{what}: not UTF-8"));
        };
        self.at += len;
        Ok(s)
    }
}

/// Unpacks what [`encode`] packed.
pub fn decode(bytes: &[u8]) -> Result<Vec<Delta>, TickCodecError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.byte()?;
    if version != TICK_CODEC_VERSION {
        return r.fail(format!(
            "version {version}, this build reads version {TICK_CODEC_VERSION}"
        ));
    }
    let n = r.count("instances", 2)?;
    let mut instances = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.at;
        let id = InstanceId::parse(r.str("instance id")?).map_err(|e| TickCodecError {
            offset: at,
            reason: e.to_string(),
        })?;
        instances.push(id);
    }
    let groups = r.count("breaker groups", 3)?;
    let mut deltas = Vec::new();
    for _ in 0..groups {
        let at = r.at;
        let key = BreakerKey::parse(r.str("breaker key")?).map_err(|e| TickCodecError {
            offset: at,
            reason: e.to_string(),
        })?;
        let n = r.count("deltas", 2)?;
        deltas.reserve(n);
        let mut previous: i64 = -1;
        for _ in 0..n {
            let flags = r.byte()?;
            let at = if flags & NEXT_INSTANCE != 0 {
                previous + 1
            } else {
                previous.wrapping_add(unzigzag(r.varint()?))
            };
            let Some(instance) = usize::try_from(at).ok().and_then(|i| instances.get(i)) else {
                return r.fail(format!("instance index {at} out of {}", instances.len()));
            };
            previous = at;
            let calls = r.varint()?;
            let mut optional = |bit: u8| -> Result<u64, TickCodecError> {
                if flags & bit != 0 { r.varint() } else { Ok(0) }
            };
            let failures = optional(HAS_FAILURES)?;
            let slow = optional(HAS_SLOW)?;
            let rejected = optional(HAS_REJECTED)?;
            let first_attempts = optional(HAS_FIRST_ATTEMPTS)?;
            let retries = optional(HAS_RETRIES)?;
            let (Ok(first_attempts), Ok(retries)) =
                (u32::try_from(first_attempts), u32::try_from(retries))
            else {
                return r.fail("first_attempts or retries beyond 32 bits");
            };
            let latency = read_latency(&mut r, flags, calls)?;
            deltas.push(Delta {
                key: key.clone(),
                instance: instance.clone(),
                calls,
                failures,
                slow,
                rejected,
                latency,
                first_attempts,
                retries,
            });
        }
    }
    if r.at != bytes.len() {
        return r.fail(format!("{} trailing bytes", bytes.len() - r.at));
    }
    Ok(deltas)
}

fn bucket_index(r: &mut Reader<'_>, value: u64) -> Result<u16, TickCodecError> {
    match u16::try_from(value) {
        Ok(i) if i <= LatencySketch::max_bucket_index() => Ok(i),
        _ => r.fail(format!("latency bucket index {value} out of range")),
    }
}

fn read_latency(
    r: &mut Reader<'_>,
    flags: u8,
    calls: u64,
) -> Result<LatencySketch, TickCodecError> {
    let buckets = match (
        flags & LATENCY_ONE_BUCKET != 0,
        flags & LATENCY_BUCKETS != 0,
    ) {
        (false, false) => return Ok(LatencySketch::default()),
        (true, true) => return r.fail("both latency forms flagged"),
        (true, false) => {
            let v = r.varint()?;
            let mut one = SketchBuckets::new();
            one.push((bucket_index(r, v)?, calls));
            one
        }
        (false, true) => {
            let n = r.count("latency buckets", 2)?;
            let mut buckets = SketchBuckets::with_capacity(n);
            let mut last = 0u64;
            for _ in 0..n {
                last = last.saturating_add(r.varint()?);
                let index = bucket_index(r, last)?;
                buckets.push((index, r.varint()?));
            }
            buckets
        }
    };
    let at = r.at;
    LatencySketch::from_buckets(buckets).map_err(|e| TickCodecError {
        offset: at,
        reason: e.to_string(),
    })
}

#[cfg(test)]
#[path = "tick_codec_test.rs"]
mod tests;
