//! How a [`Window`] is stored, and how windows written before fine positions still load.
//!
//! A window is written as variant 2 (`Current`) of [`WindowRepr`]. Variants 0 and 1 are not
//! written any more: their encoding is byte for byte the earlier layout `{ spec, slots,
//! next_chunk }`, whose first field was the window spec's own variant (0 time, 1 count). So a
//! snapshot from before the freshest-span rule decodes into them without any version flag,
//! and [`From`] turns them into today's window: time positions are rescaled to fine
//! positions (`legacy_scale`, which the breaker applies to its instance marks too), and each
//! coarse bucket seeds one fine slot at its start, so the freshest span sees its calls.

use std::collections::VecDeque;

use serde::ser::SerializeStructVariant;
use serde::{Deserialize, Serialize, Serializer};

use crate::WindowSpec;
use crate::policy::COUNT_MAX_AGE_MS_DEFAULT;
use crate::window::{FreshSlot, Slot, Window};

/// The stored forms of a window.
#[derive(Deserialize)]
pub(crate) enum WindowRepr {
    /// Before fine positions: a time window (positions are bucket numbers).
    LegacyTime {
        duration_ms: u64,
        buckets: u32,
        slots: VecDeque<Slot>,
        next_chunk: u64,
    },
    /// Before `max_age_ms`: a count window.
    LegacyCount {
        calls: u32,
        slots: VecDeque<Slot>,
        next_chunk: u64,
    },
    /// Today's window.
    Current {
        spec: WindowSpec,
        slots: VecDeque<Slot>,
        fresh: VecDeque<FreshSlot>,
        next_chunk: u64,
    },
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Written by hand (not through `WindowRepr`) so that serializing borrows the slots
        // instead of cloning them: snapshots and state digests serialize every window.
        let mut v = serializer.serialize_struct_variant("WindowRepr", 2, "Current", 4)?;
        v.serialize_field("spec", &self.spec)?;
        v.serialize_field("slots", &self.slots)?;
        v.serialize_field("fresh", &self.fresh)?;
        v.serialize_field("next_chunk", &self.next_chunk)?;
        v.end()
    }
}

impl From<WindowRepr> for Window {
    fn from(repr: WindowRepr) -> Self {
        match repr {
            WindowRepr::Current {
                spec,
                slots,
                fresh,
                next_chunk,
            } => Window {
                spec,
                slots,
                fresh,
                next_chunk,
                legacy_scale: 1,
            },
            WindowRepr::LegacyCount {
                calls,
                slots,
                next_chunk,
            } => Window {
                spec: WindowSpec::Count {
                    calls,
                    max_age_ms: COUNT_MAX_AGE_MS_DEFAULT,
                },
                slots,
                fresh: VecDeque::new(),
                next_chunk,
                legacy_scale: 1,
            },
            WindowRepr::LegacyTime {
                duration_ms,
                buckets,
                mut slots,
                next_chunk,
            } => {
                let spec = WindowSpec::Time {
                    duration_ms,
                    buckets,
                };
                let scale = Window::fine_per_bucket(spec);
                for s in &mut slots {
                    s.position = s.position.saturating_mul(scale);
                }
                let fresh = slots
                    .iter()
                    .map(|s| FreshSlot {
                        position: s.position,
                        totals: s.totals,
                    })
                    .collect();
                Window {
                    spec,
                    slots,
                    fresh,
                    next_chunk,
                    legacy_scale: scale,
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WindowRepr::deserialize(deserializer).map(Window::from)
    }
}
