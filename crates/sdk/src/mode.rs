//! Fail-static modes: how much the SDK trusts the cluster's last word.
//!
//! Why fail-static: the coordinator must never become the reason a service fails. When
//! the cluster is unreachable the SDK keeps serving from what it last knew, and only
//! when that knowledge is clearly too old does it fall back to judging the dependency by
//! itself. No call ever waits for the cluster.
//!
//! ```text
//!            contact                 no contact for stale_after
//!   ┌─────────┐ ◄─────────────── ┌───────┐ ◄──────────────┐
//!   │ Cluster │ ────────────────►│ Stale │                │
//!   └─────────┘  no contact for  └───────┘                │ any watch event
//!        ▲       stale_after         │ no contact for     │
//!        │                           ▼ fallback_after     │
//!        │ any watch event      ┌───────────┐             │
//!        └──────────────────────│ LocalOnly │─────────────┘
//!                               └───────────┘
//! ```
//!
//! - **Cluster**: a watch event arrived within `stale_after`; cluster decisions rule,
//!   combined with the instance's local breaker.
//! - **Stale**: no contact for `stale_after` (default 5 s): keep the last decisions as they
//!   were (an OPEN breaker stays open; a HALF_OPEN one admits nothing new, since permits
//!   cannot be obtained).
//! - **LocalOnly**: no contact for longer than `fallback_after` (default 30 s), or a client
//!   built without endpoints: the local breaker alone decides.
//!
//! A client that has never heard from the cluster starts in `Stale` (it has no fresh
//! decision, and none to keep: every breaker follows its local breaker).

use std::fmt;
use std::time::Duration;

use switchyard_core::plant::{Plant, planted};

/// How the SDK is deciding right now. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Mode {
    /// Fresh contact: cluster decisions rule.
    Cluster = 0,
    /// No contact for `stale_after`: the last decisions are kept.
    Stale = 1,
    /// No contact for longer than `fallback_after`: local breakers alone decide.
    LocalOnly = 2,
}

impl Mode {
    /// The lowercase name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cluster => "cluster",
            Mode::Stale => "stale",
            Mode::LocalOnly => "local_only",
        }
    }

    /// All modes, for metrics that export one series per mode.
    pub const ALL: [Mode; 3] = [Mode::Cluster, Mode::Stale, Mode::LocalOnly];

    pub(crate) fn from_u8(v: u8) -> Mode {
        match v {
            0 => Mode::Cluster,
            1 => Mode::Stale,
            _ => Mode::LocalOnly,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The thresholds between modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeOptions {
    /// No contact for this long → [`Mode::Stale`]. Default 5 s. An idle watch stream hears
    /// from its node once a second (a heartbeat): keep this well above that.
    pub stale_after: Duration,
    /// No contact for longer than this → [`Mode::LocalOnly`]. Default 30 s.
    pub fallback_after: Duration,
}

impl Default for ModeOptions {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(5),
            fallback_after: Duration::from_secs(30),
        }
    }
}

/// Tracks the last contact with the cluster and derives the [`Mode`] from it.
#[derive(Debug, Clone)]
pub struct ModeTracker {
    options: ModeOptions,
    started_ms: u64,
    last_contact_ms: Option<u64>,
    has_cluster: bool,
}

impl ModeTracker {
    /// A tracker for a client started at `started_ms`; `has_cluster` is false for a
    /// local-only client, which is always in [`Mode::LocalOnly`].
    pub fn new(options: ModeOptions, started_ms: u64, has_cluster: bool) -> Self {
        Self {
            options,
            started_ms,
            last_contact_ms: None,
            has_cluster,
        }
    }

    /// Records contact with the cluster (a watch event arrived) at `now_ms`.
    pub fn contact(&mut self, now_ms: u64) {
        if planted(Plant::StickyLocalOnly) && self.mode_at(now_ms) == Mode::LocalOnly {
            return;
        }
        self.last_contact_ms = Some(self.last_contact_ms.map_or(now_ms, |t| t.max(now_ms)));
    }

    /// When the cluster was last heard from, if ever.
    pub fn last_contact_ms(&self) -> Option<u64> {
        self.last_contact_ms
    }

    /// The mode at `now_ms`.
    pub fn mode_at(&self, now_ms: u64) -> Mode {
        if !self.has_cluster {
            return Mode::LocalOnly;
        }
        let stale_ms = duration_ms(self.options.stale_after);
        let fallback_ms = duration_ms(self.options.fallback_after);
        match self.last_contact_ms {
            Some(t) => {
                let silent_ms = now_ms.saturating_sub(t);
                if silent_ms < stale_ms {
                    Mode::Cluster
                } else if silent_ms <= fallback_ms || planted(Plant::NoFallback) {
                    Mode::Stale
                } else {
                    Mode::LocalOnly
                }
            }
            None if now_ms.saturating_sub(self.started_ms) > fallback_ms => Mode::LocalOnly,
            None => Mode::Stale,
        }
    }
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_only_client_is_always_local_only() {
        let mut t = ModeTracker::new(ModeOptions::default(), 0, false);
        t.contact(0);
        assert_eq!(t.mode_at(0), Mode::LocalOnly);
    }

    #[test]
    fn never_contacted_is_stale_then_local_only() {
        let t = ModeTracker::new(ModeOptions::default(), 1_000, true);
        assert_eq!(t.mode_at(1_000), Mode::Stale);
        assert_eq!(t.mode_at(31_000), Mode::Stale);
        assert_eq!(t.mode_at(31_001), Mode::LocalOnly);
    }

    #[test]
    fn cluster_stale_local_only_and_back() {
        let mut t = ModeTracker::new(ModeOptions::default(), 0, true);
        // phase: fresh contact
        t.contact(100);
        assert_eq!(t.mode_at(100), Mode::Cluster);
        assert_eq!(t.mode_at(5_099), Mode::Cluster);
        // phase: silence past stale_after
        assert_eq!(t.mode_at(5_100), Mode::Stale);
        assert_eq!(t.mode_at(30_100), Mode::Stale);
        // phase: silence past fallback_after
        assert_eq!(t.mode_at(30_101), Mode::LocalOnly);
        // phase: contact again
        t.contact(40_000);
        assert_eq!(t.mode_at(40_000), Mode::Cluster);
        // contact never moves backwards
        t.contact(10);
        assert_eq!(t.last_contact_ms(), Some(40_000));
    }
}
