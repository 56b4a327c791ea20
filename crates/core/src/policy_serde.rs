//! How [`WindowSpec`] and [`Policy`] are written, and how policies stored before the
//! freshest-span rule still load.
//!
//! Human-readable formats (TOML, JSON: files, the HTTP API) use field names; a count window's
//! `max_age_ms` and a policy's `fresh_span_confidence` may be left out (defaults).
//!
//! Binary formats (bincode: the Raft log and snapshots) are not self-describing, so a type
//! that gains a field gains a new *variant* instead, and the old variants keep decoding:
//! - `WindowSpec`: variants 0 (time) and 1 (count, before `max_age_ms`) as before; count
//!   windows are now written as variant 2 and variant 1 reads with the default age.
//! - `Policy`: it used to start with its window spec, whose variant (0 or 1) came first. It is
//!   now written as variant 2 of [`PolicyBinary`], so variants 0 and 1 read exactly the old
//!   bytes (the spec's fields, then the old policy's fields) and default the new field.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::COUNT_MAX_AGE_MS_DEFAULT;
use crate::{Confidence, Policy, WindowSpec};

fn default_max_age_ms() -> u64 {
    COUNT_MAX_AGE_MS_DEFAULT
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum WindowSpecTagged {
    Time {
        duration_ms: u64,
        buckets: u32,
    },
    Count {
        calls: u32,
        #[serde(default = "default_max_age_ms")]
        max_age_ms: u64,
    },
}

#[derive(Serialize, Deserialize)]
enum WindowSpecBinary {
    Time {
        duration_ms: u64,
        buckets: u32,
    },
    /// Before `max_age_ms`; read only.
    Count {
        calls: u32,
    },
    CountAged {
        calls: u32,
        max_age_ms: u64,
    },
}

impl Serialize for WindowSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (*self, serializer.is_human_readable()) {
            (
                WindowSpec::Time {
                    duration_ms,
                    buckets,
                },
                true,
            ) => WindowSpecTagged::Time {
                duration_ms,
                buckets,
            }
            .serialize(serializer),
            (WindowSpec::Count { calls, max_age_ms }, true) => {
                WindowSpecTagged::Count { calls, max_age_ms }.serialize(serializer)
            }
            (
                WindowSpec::Time {
                    duration_ms,
                    buckets,
                },
                false,
            ) => WindowSpecBinary::Time {
                duration_ms,
                buckets,
            }
            .serialize(serializer),
            (WindowSpec::Count { calls, max_age_ms }, false) => {
                WindowSpecBinary::CountAged { calls, max_age_ms }.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for WindowSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            Ok(match WindowSpecTagged::deserialize(deserializer)? {
                WindowSpecTagged::Time {
                    duration_ms,
                    buckets,
                } => WindowSpec::Time {
                    duration_ms,
                    buckets,
                },
                WindowSpecTagged::Count { calls, max_age_ms } => {
                    WindowSpec::Count { calls, max_age_ms }
                }
            })
        } else {
            Ok(match WindowSpecBinary::deserialize(deserializer)? {
                WindowSpecBinary::Time {
                    duration_ms,
                    buckets,
                } => WindowSpec::Time {
                    duration_ms,
                    buckets,
                },
                WindowSpecBinary::Count { calls } => WindowSpec::Count {
                    calls,
                    max_age_ms: COUNT_MAX_AGE_MS_DEFAULT,
                },
                WindowSpecBinary::CountAged { calls, max_age_ms } => {
                    WindowSpec::Count { calls, max_age_ms }
                }
            })
        }
    }
}

/// The policy fields that followed the window before `fresh_span_confidence`.
#[derive(Deserialize)]
struct LegacyTail {
    min_calls: u32,
    failure_rate_threshold: u32,
    slow_call_duration_ms: u64,
    slow_call_rate_threshold: u32,
    min_instances: u32,
    open_duration_ms: u64,
    open_duration_max_ms: u64,
    open_jitter_percent: u32,
    probe_permits: u32,
    probe_success_threshold: u32,
    probe_lease_ms: u64,
}

impl LegacyTail {
    fn with_window(self, window: WindowSpec) -> Policy {
        Policy {
            window,
            min_calls: self.min_calls,
            failure_rate_threshold: self.failure_rate_threshold,
            slow_call_duration_ms: self.slow_call_duration_ms,
            slow_call_rate_threshold: self.slow_call_rate_threshold,
            min_instances: self.min_instances,
            open_duration_ms: self.open_duration_ms,
            open_duration_max_ms: self.open_duration_max_ms,
            open_jitter_percent: self.open_jitter_percent,
            probe_permits: self.probe_permits,
            probe_success_threshold: self.probe_success_threshold,
            probe_lease_ms: self.probe_lease_ms,
            fresh_span_confidence: Confidence::default(),
        }
    }
}

/// Today's policy fields, through the derived (remote) implementation.
struct Fields<T>(T);

impl Serialize for Fields<&Policy> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Policy::serialize(self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Fields<Policy> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Policy::deserialize(deserializer).map(Fields)
    }
}

/// The binary forms of a policy: variants 0 and 1 are the layout before
/// `fresh_span_confidence` (read only), 2 is today's.
#[derive(Deserialize)]
enum PolicyBinary {
    LegacyTime(u64, u32, LegacyTail),
    LegacyCount(u32, LegacyTail),
    Current(Fields<Policy>),
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            Policy::serialize(self, serializer)
        } else {
            serializer.serialize_newtype_variant("PolicyBinary", 2, "Current", &Fields(self))
        }
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            return Policy::deserialize(deserializer);
        }
        Ok(match PolicyBinary::deserialize(deserializer)? {
            PolicyBinary::LegacyTime(duration_ms, buckets, tail) => {
                tail.with_window(WindowSpec::Time {
                    duration_ms,
                    buckets,
                })
            }
            PolicyBinary::LegacyCount(calls, tail) => tail.with_window(WindowSpec::Count {
                calls,
                max_age_ms: COUNT_MAX_AGE_MS_DEFAULT,
            }),
            PolicyBinary::Current(Fields(policy)) => policy,
        })
    }
}
