//! Stories about the replicated state machine: breakers, probes, overrides, tiers, audit,
//! SLA, files, and properties that must hold for any command sequence.

mod audit_sla;
mod breaker;
mod compat;
mod compat_v3;
mod files;
mod fresh;
mod helpers;
mod overrides;
mod probes;
mod props;
mod props_fresh;
mod retries;
mod tiers;
