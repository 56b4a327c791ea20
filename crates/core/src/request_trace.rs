//! What a request carries for correlation: the caller's request id and its W3C trace context.
//!
//! Both travel with an operator's write into the log (see [`crate::Envelope`]), so every node
//! that applies the entry can tie its work, and the audit events it records, to the request an
//! operator quotes. The rules here are the one home of what a valid request id and a valid
//! `traceparent` are; the server, the HTTP API and the CLI all use them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Longest request id accepted, in bytes.
pub const REQUEST_ID_MAX_BYTES: usize = 128;

/// Checks a request id: 1 to [`REQUEST_ID_MAX_BYTES`] characters of `[A-Za-z0-9._-]`.
/// A UUID, a ULID or a gateway's hex id all fit; anything that could break a log line or a
/// table column does not.
pub fn validate_request_id(id: &str) -> Result<(), ValidationError> {
    let rule = || {
        ValidationError::new(
            "x-request-id",
            format!("must be 1 to {REQUEST_ID_MAX_BYTES} characters of [A-Za-z0-9._-]"),
        )
    };
    if id.is_empty() || id.len() > REQUEST_ID_MAX_BYTES {
        return Err(rule());
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(rule());
    }
    Ok(())
}

/// Request ids for requests that came without one: UUID-shaped (8-4-4-4-12 hex digits), drawn
/// from `seed` and a counter, so the ids a node makes are unique within its run and the same
/// for the same seed (the simulation replays byte for byte). Whoever makes one picks the seed:
/// a node from its id and start time, the CLI from the OS.
#[derive(Debug)]
pub struct RequestIds {
    seed: u64,
    next: std::sync::atomic::AtomicU64,
}

impl RequestIds {
    /// A generator drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> String {
        use crate::hash::{SPLITMIX64_GAMMA, splitmix64_mix};
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let high = splitmix64_mix(self.seed ^ n.wrapping_mul(SPLITMIX64_GAMMA));
        let low = splitmix64_mix(high.wrapping_add(self.seed).wrapping_add(n));
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }
}

/// A W3C trace context (`traceparent`, version 00): which trace a request belongs to and the
/// caller's span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id (never zero).
    pub trace_id: u128,
    /// The caller's span id (never zero).
    pub parent_id: u64,
    /// Trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

impl TraceParent {
    /// Parses `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` (lowercase hex, as the
    /// W3C recommendation requires). Anything else, including all-zero ids and the reserved
    /// version `ff`, is `None`: an invalid `traceparent` is ignored and the request starts a
    /// new trace, as the recommendation says.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" {
            return None;
        }
        fn hex(s: &str, len: usize) -> Option<&str> {
            (s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then_some(s)
        }
        let trace_id = u128::from_str_radix(hex(trace, 32)?, 16).ok()?;
        let parent_id = u64::from_str_radix(hex(parent, 16)?, 16).ok()?;
        let flags = u8::from_str_radix(hex(flags, 2)?, 16).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace id as 32 lowercase hex digits, as tracing back ends show it.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

/// The correlation a logged command carries: the request id, and the W3C trace context of the
/// request when it had one (text, as received or as the proposing node's span).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestTrace {
    /// The request id (valid per [`validate_request_id`]).
    pub request_id: String,
    /// The `traceparent` the node's work joins, if any.
    pub traceparent: Option<String>,
}

impl RequestTrace {
    /// The trace id, when the trace context is present and valid.
    pub fn trace_id(&self) -> Option<String> {
        self.traceparent
            .as_deref()
            .and_then(TraceParent::parse)
            .map(|t| t.trace_id_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_follow_the_rule_up_to_the_limit() {
        validate_request_id("0af7651916cd43dd8448eb211c80319c").unwrap();
        validate_request_id("req_2026.12-06").unwrap();
        validate_request_id(&"a".repeat(REQUEST_ID_MAX_BYTES)).unwrap();
        for bad in [
            String::new(),
            "a".repeat(REQUEST_ID_MAX_BYTES + 1),
            "has space".into(),
            "new\nline".into(),
            "semi;colon".into(),
            "é".into(),
        ] {
            let e = validate_request_id(&bad).unwrap_err();
            assert_eq!(e.field, "x-request-id");
            assert!(e.rule.contains("1 to 128 characters"), "{e}");
        }
    }

    #[test]
    fn generated_ids_are_valid_distinct_and_replayable() {
        let ids = RequestIds::new(7);
        let a: Vec<String> = (0..1_000).map(|_| ids.next_id()).collect();
        let again = RequestIds::new(7);
        let b: Vec<String> = (0..1_000).map(|_| again.next_id()).collect();
        assert_eq!(a, b);
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
        assert_ne!(RequestIds::new(8).next_id(), a[0]);
        for id in &a {
            validate_request_id(id).unwrap();
            assert_eq!(id.len(), 36, "{id}");
        }
    }

    #[test]
    fn traceparent_round_trips_and_rejects_what_w3c_rejects() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(text).unwrap();
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(tp.flags, 1);
        assert_eq!(tp.to_string(), text);
        for bad in [
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }
}
