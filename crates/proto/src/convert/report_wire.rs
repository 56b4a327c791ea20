//! A `ReportRequest` decoded from its wire bytes in one pass, straight into a validated
//! [`Report`]: [`ReportWire`].
//!
//! Reports are the one message a node receives by the ten thousand a second, and decoding them
//! with the generated code was a third of a leader's instructions per report: prost allocates
//! the request, grows its list of deltas one push at a time, and allocates every delta's key and
//! latency list before [`Report::try_from`] walks it all again. This decoder counts the deltas
//! first (one allocation of the right size), reads keys and instance ids in place, and builds
//! each delta's sketch as it reads its buckets; keys come from a per-thread [`KeyCache`].
//!
//! **The contract is that of the generated code.** For any bytes, [`ReportWire::decode`]
//! accepts exactly what `pb::ReportRequest::decode` followed by `Report::try_from` accepts, with
//! the same report, and refuses the rest with the same validation error; bytes that are not a
//! well-formed `ReportRequest` are [`ReportWireError::Malformed`] (prost's decode error). That
//! includes prost's leniencies: unknown fields (groups too) are skipped, a repeated scalar
//! field keeps its last value, a `uint32` keeps the low 32 bits of its varint. A differential
//! test over arbitrary and mutated bytes holds the two to each other (`report_wire_test.rs`).

use std::cell::RefCell;

use switchyard_core::{Delta, InstanceId, SketchBuckets, ValidationError};

use super::report::{
    WireCounts, check_bucket, delta_error, finish_delta, first_duplicate, sketch_from_checked,
};
use super::report_keys::{KeyCache, KeyRead};
use super::{Report, parse_instance};

/// Why the bytes of a report were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportWireError {
    /// Not a well-formed `ReportRequest`: what prost would fail to decode, and why.
    Malformed(String),
    /// Well-formed but invalid: the first error `Report::try_from` would return.
    Invalid(ValidationError),
}

impl std::fmt::Display for ReportWireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed ReportRequest: {why}"),
            Self::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReportWireError {}

impl From<ValidationError> for ReportWireError {
    fn from(e: ValidationError) -> Self {
        Self::Invalid(e)
    }
}

/// A well-formed `ReportRequest` at its top level, read without allocating: the node's cheap
/// refusals (the instance's report rate, the number of deltas) need no more.
/// [`Self::decode`] then reads the deltas.
#[derive(Debug, Clone, Copy)]
pub struct ReportWire<'a> {
    bytes: &'a [u8],
    /// The `instance` field (its last occurrence, as prost keeps it), not yet validated.
    pub instance: &'a str,
    /// The number of `deltas`.
    pub deltas: usize,
}

/// Field numbers and wire types of `ReportRequest`, `BreakerDelta` and `LatencyBucket`.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const GROUP_START: u8 = 3;
const GROUP_END: u8 = 4;
const FIXED32: u8 = 5;

/// The most deltas allocated for before they are read (see [`ReportWire::decode`]).
const PREALLOCATED_MAX: usize = 16_384;

/// prost's nesting budget: a top-level field is read with 100, each message or group level
/// inside costs one, and a field met with none left is refused.
const DEPTH: u32 = 100;

impl<'a> ReportWire<'a> {
    /// Reads the top level of `bytes`: every field well-formed, `instance` valid UTF-8.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ReportWireError> {
        let mut wire = Wire(bytes);
        let mut instance = "";
        let mut deltas = 0;
        while !wire.0.is_empty() {
            let (field, kind) = wire.key()?;
            match field {
                1 => instance = utf8(wire.len_delimited(kind)?)?,
                2 => {
                    wire.len_delimited(kind)?;
                    deltas += 1;
                }
                _ => wire.skip(field, kind, DEPTH)?,
            }
        }
        Ok(Self {
            bytes,
            instance,
            deltas,
        })
    }

    /// The whole report, validated (see the module's contract).
    pub fn decode(&self) -> Result<Report, ReportWireError> {
        KEYS.with(|keys| self.decode_with(&mut keys.borrow_mut()))
    }

    fn decode_with(&self, keys: &mut KeyCache) -> Result<Report, ReportWireError> {
        keys.start_report();
        // Validation errors wait for the whole message to be read: bytes that are also
        // malformed further on are refused as malformed, as prost refuses them before any
        // validation runs.
        let mut first_error = None;
        let instance = match parse_instance(self.instance, "instance") {
            Ok(instance) => Some(instance),
            Err(e) => {
                first_error = Some(e);
                None
            }
        };
        // The count is the bytes' own: a caller checks it against its limit first (the node
        // refuses a report over `report_deltas_max` before decoding it), and at most
        // `PREALLOCATED_MAX` deltas are allocated for ahead of reading them in any case.
        let mut deltas: Vec<Delta> = Vec::with_capacity(self.deltas.min(PREALLOCATED_MAX));
        let mut wire = Wire(self.bytes);
        let mut i = 0;
        while !wire.0.is_empty() {
            let (field, kind) = wire.key()?;
            match field {
                1 => {
                    wire.len_delimited(kind)?;
                }
                2 => {
                    let read = read_delta(wire.len_delimited(kind)?, keys)?;
                    if let (None, Some(instance)) = (&first_error, &instance) {
                        match read.into_delta(instance.clone(), keys) {
                            Ok(delta) => deltas.push(delta),
                            Err(e) => first_error = Some(delta_error(&deltas, i, e)),
                        }
                    }
                    i += 1;
                }
                _ => wire.skip(field, kind, DEPTH)?,
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        if !keys.known_distinct()
            && let Some(e) = first_duplicate(&deltas)
        {
            return Err(e.into());
        }
        keys.finish_report(deltas.iter().map(|d| &d.key));
        let instance = instance.expect("an invalid instance is a first error");
        Ok(Report { instance, deltas })
    }
}

/// One `BreakerDelta` as read: the key known or not yet parsed, the latency already checked.
struct ReadDelta<'a> {
    key: KeyRead<'a>,
    counts: WireCounts,
    latency: Result<SketchBuckets, ValidationError>,
}

impl ReadDelta<'_> {
    fn into_delta(
        self,
        instance: InstanceId,
        keys: &mut KeyCache,
    ) -> Result<Delta, ValidationError> {
        let key = match self.key {
            KeyRead::Known(key) => key,
            KeyRead::Text(text) => keys.parse(text)?,
        };
        let latency = self.latency.and_then(sketch_from_checked);
        finish_delta(key, instance, latency, self.counts)
    }
}

thread_local! {
    /// The keys this thread has read (see [`KeyCache`]).
    static KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

/// Reads one `BreakerDelta` (the bytes inside its length prefix).
fn read_delta<'a>(bytes: &'a [u8], keys: &mut KeyCache) -> Result<ReadDelta<'a>, Fault> {
    let depth = DEPTH - 1;
    let mut wire = Wire(bytes);
    let mut key: Option<&[u8]> = None;
    let mut counts = WireCounts::default();
    let mut buckets = Buckets::default();
    let mut latency_error = None;
    let mut previous = None;
    let mut j = 0;
    while !wire.0.is_empty() {
        let (field, kind) = wire.key()?;
        let counter = match field {
            1 => {
                // prost checks every occurrence; the last one is checked with the key below.
                if let Some(replaced) = key.replace(wire.len_delimited(kind)?) {
                    utf8(replaced)?;
                }
                continue;
            }
            6 => {
                let (index, count) = read_bucket(wire.len_delimited(kind)?, depth - 1)?;
                if latency_error.is_none() {
                    match check_bucket(j, index, count, previous) {
                        Ok(index) => {
                            previous = Some(index);
                            buckets.push((index, count));
                        }
                        Err(e) => latency_error = Some(e),
                    }
                }
                j += 1;
                continue;
            }
            2 => &mut counts.calls,
            3 => &mut counts.failures,
            4 => &mut counts.slow,
            5 => &mut counts.rejected,
            7 => &mut counts.first_attempts,
            8 => &mut counts.retries,
            _ => {
                wire.skip(field, kind, depth)?;
                continue;
            }
        };
        *counter = wire.varint_field(kind)?;
    }
    let key = keys.read(key.unwrap_or_default()).ok_or(Fault::NotUtf8)?;
    Ok(ReadDelta {
        key,
        counts,
        latency: latency_error.map_or_else(|| Ok(buckets.finish()), Err),
    })
}

/// A delta's latency buckets while they are read: a delta carries a few, and a vector grown
/// a push at a time would allocate twice as many slots through its slow path; these are
/// copied at the end inline (one bucket) or into one allocation of the right size.
#[derive(Default)]
struct Buckets {
    few: [(u16, u64); 4],
    len: usize,
    more: Vec<(u16, u64)>,
}

impl Buckets {
    fn push(&mut self, bucket: (u16, u64)) {
        if self.len < self.few.len() {
            self.few[self.len] = bucket;
            self.len += 1;
        } else {
            if self.more.is_empty() {
                self.more.extend_from_slice(&self.few);
            }
            self.more.push(bucket);
        }
    }

    fn finish(self) -> SketchBuckets {
        if self.more.is_empty() {
            SketchBuckets::from_slice(&self.few[..self.len])
        } else {
            SketchBuckets::from_vec(self.more)
        }
    }
}

/// Reads one `LatencyBucket`: `(index, count)`.
fn read_bucket(bytes: &[u8], depth: u32) -> Result<(u32, u64), Fault> {
    let mut wire = Wire(bytes);
    let (mut index, mut count) = (0, 0);
    while !wire.0.is_empty() {
        let (field, kind) = wire.key()?;
        match field {
            // A `uint32` keeps the low 32 bits of its varint, as prost reads it.
            1 => index = wire.varint_field(kind)? as u32,
            2 => count = wire.varint_field(kind)?,
            _ => wire.skip(field, kind, depth)?,
        }
    }
    Ok((index, count))
}

/// Why bytes are not a well-formed message: the rules of prost's decode. One byte, so the
/// results of the readers below fit in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Varint,
    KeyValue,
    WireTypeValue,
    TagZero,
    Underflow,
    WantLen,
    WantVarint,
    Recursion,
    EndGroup,
    NotUtf8,
}

impl From<Fault> for ReportWireError {
    fn from(fault: Fault) -> Self {
        Self::Malformed(
            match fault {
                Fault::Varint => "invalid varint",
                Fault::KeyValue => "invalid key value",
                Fault::WireTypeValue => "invalid wire type value",
                Fault::TagZero => "invalid tag value: 0",
                Fault::Underflow => "buffer underflow",
                Fault::WantLen => "invalid wire type for a length-delimited field",
                Fault::WantVarint => "invalid wire type for a varint field",
                Fault::Recursion => "recursion limit reached",
                Fault::EndGroup => "unexpected end group tag",
                Fault::NotUtf8 => "a string field is not valid UTF-8",
            }
            .to_owned(),
        )
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, Fault> {
    std::str::from_utf8(bytes).map_err(|_| Fault::NotUtf8)
}

/// The unread rest of a message's bytes.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    /// A base-128 varint of at most 10 bytes, the tenth at most 1 (prost's rule).
    #[inline]
    fn varint(&mut self) -> Result<u64, Fault> {
        // Most varints of a report (keys, lengths, small counts) are one byte.
        if let Some((&byte, rest)) = self.0.split_first()
            && byte < 0x80
        {
            self.0 = rest;
            return Ok(u64::from(byte));
        }
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().take(10).enumerate() {
            if i == 9 && byte > 1 {
                break;
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(Fault::Varint)
    }

    /// A field key: `(field number, wire type)`.
    #[inline]
    fn key(&mut self) -> Result<(u32, u8), Fault> {
        let key = self.varint()?;
        let field = u32::try_from(key).map_err(|_| Fault::KeyValue)? >> 3;
        let kind = (key & 7) as u8;
        if kind > FIXED32 {
            return Err(Fault::WireTypeValue);
        }
        if field == 0 {
            return Err(Fault::TagZero);
        }
        Ok((field, kind))
    }

    #[inline]
    fn take(&mut self, len: u64) -> Result<&'a [u8], Fault> {
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= self.0.len())
            .ok_or(Fault::Underflow)?;
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(taken)
    }

    /// The bytes of a length-delimited field whose key had wire type `kind`.
    #[inline]
    fn len_delimited(&mut self, kind: u8) -> Result<&'a [u8], Fault> {
        if kind != LEN {
            return Err(Fault::WantLen);
        }
        let len = self.varint()?;
        self.take(len)
    }

    /// The value of a varint field whose key had wire type `kind`.
    #[inline]
    fn varint_field(&mut self, kind: u8) -> Result<u64, Fault> {
        if kind != VARINT {
            return Err(Fault::WantVarint);
        }
        self.varint()
    }

    /// Skips an unknown field, with `depth` nesting levels left (see [`DEPTH`]).
    fn skip(&mut self, field: u32, kind: u8, depth: u32) -> Result<(), Fault> {
        if depth == 0 {
            return Err(Fault::Recursion);
        }
        match kind {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.take(8)?;
            }
            FIXED32 => {
                self.take(4)?;
            }
            LEN => {
                self.len_delimited(kind)?;
            }
            GROUP_START => loop {
                let (inner, inner_kind) = self.key()?;
                if inner_kind == GROUP_END {
                    if inner != field {
                        return Err(Fault::EndGroup);
                    }
                    break;
                }
                self.skip(inner, inner_kind, depth - 1)?;
            },
            _ => return Err(Fault::EndGroup),
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "report_wire_test.rs"]
mod tests;
