//! `ReportRequest` and `BreakerDelta`: outcomes reported by an SDK instance.

use switchyard_core::{
    BreakerKey, DELTA_COUNT_MAX, Delta, InstanceId, LatencySketch, SketchBuckets, ValidationError,
};

use super::{at, parse_instance, parse_key, within};
use crate::client as pb;

/// A validated `ReportRequest`: one instance's deltas, keys unique, every
/// delta consistent (`failures <= calls`, latency buckets sorted and unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The reporting instance.
    pub instance: InstanceId,
    /// One delta per breaker key, in request order; each carries `instance`.
    pub deltas: Vec<Delta>,
}

impl From<&Report> for pb::ReportRequest {
    fn from(report: &Report) -> Self {
        pb::ReportRequest {
            instance: report.instance.to_string(),
            deltas: report.deltas.iter().map(pb::BreakerDelta::from).collect(),
        }
    }
}

/// Paths: `instance`, `deltas[i].key`, `deltas[i].failures`,
/// `deltas[i].latency[j].index`, ...
impl TryFrom<pb::ReportRequest> for Report {
    type Error = ValidationError;

    fn try_from(request: pb::ReportRequest) -> Result<Self, Self::Error> {
        let instance = parse_instance(&request.instance, "instance")?;
        let mut deltas = Vec::with_capacity(request.deltas.len());
        for (i, delta) in request.deltas.into_iter().enumerate() {
            match delta_from_wire(delta, instance.clone()) {
                Ok(delta) => deltas.push(delta),
                // The first error in request order: a repeated key before this delta first.
                Err(e) => return Err(delta_error(&deltas, i, e)),
            }
        }
        match first_duplicate(&deltas) {
            Some(e) => Err(e),
            None => Ok(Report { instance, deltas }),
        }
    }
}

/// The error for the first delta (in request order) whose key an earlier delta already has.
///
/// Sorting borrowed keys costs no allocation, unlike a set of owned keys: this runs for every
/// report the cluster receives.
pub(crate) fn first_duplicate(deltas: &[Delta]) -> Option<ValidationError> {
    let mut keys: Vec<(&str, usize)> = deltas
        .iter()
        .enumerate()
        .map(|(i, d)| (d.key.as_str(), i))
        .collect();
    keys.sort_unstable();
    let i = keys
        .windows(2)
        .filter(|pair| pair[0].0 == pair[1].0)
        .map(|pair| pair[1].1)
        .min()?;
    Some(ValidationError::new(
        format!("deltas[{i}].key"),
        format!("duplicate key `{}` in one report", deltas[i].key),
    ))
}

impl From<&Delta> for pb::BreakerDelta {
    fn from(delta: &Delta) -> Self {
        pb::BreakerDelta {
            key: delta.key.to_string(),
            calls: delta.calls,
            failures: delta.failures,
            slow: delta.slow,
            rejected: delta.rejected,
            latency: latency_to_wire(&delta.latency),
            first_attempts: u64::from(delta.first_attempts),
            retries: u64::from(delta.retries),
        }
    }
}

/// Converts one wire delta from `instance`; paths are relative to the delta
/// (`key`, `failures`, `latency[2].index`).
pub fn delta_from_wire(
    delta: pb::BreakerDelta,
    instance: InstanceId,
) -> Result<Delta, ValidationError> {
    let key = parse_key(&delta.key, "key")?;
    let latency = latency_from_wire(delta.latency);
    finish_delta(
        key,
        instance,
        latency,
        WireCounts {
            calls: delta.calls,
            failures: delta.failures,
            slow: delta.slow,
            rejected: delta.rejected,
            first_attempts: delta.first_attempts,
            retries: delta.retries,
        },
    )
}

/// The scalar fields of a wire delta, as they arrive.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WireCounts {
    pub calls: u64,
    pub failures: u64,
    pub slow: u64,
    pub rejected: u64,
    pub first_attempts: u64,
    pub retries: u64,
}

/// A delta from its parsed key and latency, checked in the order every decoder of a
/// `BreakerDelta` reports its first error: key, then latency, then the counters.
pub(crate) fn finish_delta(
    key: BreakerKey,
    instance: InstanceId,
    latency: Result<LatencySketch, ValidationError>,
    counts: WireCounts,
) -> Result<Delta, ValidationError> {
    let latency = latency.map_err(|e| within(e, "latency"))?;
    let delta = Delta {
        key,
        instance,
        calls: counts.calls,
        failures: counts.failures,
        slow: counts.slow,
        rejected: counts.rejected,
        latency,
        first_attempts: retry_count(counts.first_attempts, "first_attempts")?,
        retries: retry_count(counts.retries, "retries")?,
    };
    delta.validate()?;
    Ok(delta)
}

/// The error that refuses a report whose delta `i` is invalid (`error`, relative to the
/// delta), given the deltas before it: a key repeated among those comes first.
pub(crate) fn delta_error(before: &[Delta], i: usize, error: ValidationError) -> ValidationError {
    first_duplicate(before).unwrap_or_else(|| within(error, &format!("deltas[{i}]")))
}

/// A retry figure of a wire delta: at most [`DELTA_COUNT_MAX`] (so it fits the domain's `u32`).
fn retry_count(value: u64, field: &str) -> Result<u32, ValidationError> {
    u32::try_from(value)
        .ok()
        .filter(|v| u64::from(*v) <= DELTA_COUNT_MAX)
        .ok_or_else(|| {
            ValidationError::new(
                field,
                format!("must be at most {DELTA_COUNT_MAX}, got {value}"),
            )
        })
}

/// The sketch's sparse buckets as wire buckets.
pub fn latency_to_wire(sketch: &LatencySketch) -> Vec<pb::LatencyBucket> {
    sketch
        .buckets()
        .iter()
        .map(|&(index, count)| pb::LatencyBucket {
            index: u32::from(index),
            count,
        })
        .collect()
}

/// Builds a sketch from wire buckets: indexes in range, strictly increasing,
/// counts non-zero. Paths are relative to the list (`[2].index`, `[0].count`).
pub fn latency_from_wire(
    buckets: Vec<pb::LatencyBucket>,
) -> Result<LatencySketch, ValidationError> {
    let mut previous: Option<u16> = None;
    // Collected in place: a wire bucket and a sketch bucket have the same size, so the
    // request's allocation is reused (a single bucket then moves inline).
    let out: Vec<(u16, u64)> = buckets
        .into_iter()
        .enumerate()
        .map(|(j, bucket)| {
            let index = check_bucket(j, bucket.index, bucket.count, previous)?;
            previous = Some(index);
            Ok((index, bucket.count))
        })
        .collect::<Result<_, _>>()?;
    sketch_from_checked(SketchBuckets::from_vec(out))
}

/// Checks wire bucket `j` (`index`, `count`) after the bucket index `previous`: index in
/// range and above `previous`, count non-zero. Returns the index.
pub(crate) fn check_bucket(
    j: usize,
    index: u32,
    count: u64,
    previous: Option<u16>,
) -> Result<u16, ValidationError> {
    let max = LatencySketch::max_bucket_index();
    let checked = u16::try_from(index)
        .ok()
        .filter(|index| *index <= max)
        .ok_or_else(|| {
            ValidationError::new(
                format!("[{j}].index"),
                format!("must be at most {max}, got {index}"),
            )
        })?;
    if count == 0 {
        return Err(ValidationError::new(
            format!("[{j}].count"),
            "must not be zero",
        ));
    }
    if let Some(previous) = previous
        && previous >= checked
    {
        return Err(ValidationError::new(
            format!("[{j}].index"),
            format!(
                "buckets must be sorted by strictly increasing index, got {checked} after {previous}"
            ),
        ));
    }
    Ok(checked)
}

/// The sketch of buckets that passed [`check_bucket`] one by one.
pub(crate) fn sketch_from_checked(
    buckets: SketchBuckets,
) -> Result<LatencySketch, ValidationError> {
    LatencySketch::from_buckets(buckets).map_err(|e| at(e, ""))
}
