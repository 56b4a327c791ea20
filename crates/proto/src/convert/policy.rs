//! `Policy`, `PolicyTarget` and `PolicyEntry`.

use switchyard_core::{
    COUNT_MAX_AGE_MS_DEFAULT, Confidence, Policy, PolicyTarget, ValidationError, WindowSpec,
};

use super::{parse_key, parse_scope, required, within};
use crate::admin as apb;
use crate::client as pb;

impl From<&WindowSpec> for pb::policy::Window {
    fn from(window: &WindowSpec) -> Self {
        match *window {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => pb::policy::Window::Time(pb::TimeWindow {
                duration_ms,
                buckets,
            }),
            WindowSpec::Count { calls, max_age_ms } => pb::policy::Window::Count(pb::CountWindow {
                calls,
                max_age_ms: Some(max_age_ms),
            }),
        }
    }
}

impl From<pb::policy::Window> for WindowSpec {
    fn from(window: pb::policy::Window) -> Self {
        match window {
            pb::policy::Window::Time(t) => WindowSpec::Time {
                duration_ms: t.duration_ms,
                buckets: t.buckets,
            },
            pb::policy::Window::Count(c) => WindowSpec::Count {
                calls: c.calls,
                max_age_ms: c.max_age_ms.unwrap_or(COUNT_MAX_AGE_MS_DEFAULT),
            },
        }
    }
}

impl From<&Policy> for pb::Policy {
    fn from(p: &Policy) -> Self {
        pb::Policy {
            window: Some((&p.window).into()),
            min_calls: p.min_calls,
            failure_rate_threshold: p.failure_rate_threshold,
            slow_call_duration_ms: p.slow_call_duration_ms,
            slow_call_rate_threshold: p.slow_call_rate_threshold,
            min_instances: p.min_instances,
            open_duration_ms: p.open_duration_ms,
            open_duration_max_ms: p.open_duration_max_ms,
            open_jitter_percent: p.open_jitter_percent,
            probe_permits: p.probe_permits,
            probe_success_threshold: p.probe_success_threshold,
            probe_lease_ms: p.probe_lease_ms,
            fresh_span_confidence: Some(p.fresh_span_confidence.percent()),
        }
    }
}

/// Validates with [`Policy::validate`]; paths are relative to the policy
/// (`window`, `window.buckets`, `failure_rate_threshold`).
impl TryFrom<pb::Policy> for Policy {
    type Error = ValidationError;

    fn try_from(p: pb::Policy) -> Result<Self, Self::Error> {
        let window = required(p.window, "window")?.into();
        let fresh_span_confidence = match p.fresh_span_confidence {
            Some(percent) => Confidence::from_percent(percent)?,
            None => Confidence::default(),
        };
        let policy = Policy {
            window,
            min_calls: p.min_calls,
            failure_rate_threshold: p.failure_rate_threshold,
            slow_call_duration_ms: p.slow_call_duration_ms,
            slow_call_rate_threshold: p.slow_call_rate_threshold,
            min_instances: p.min_instances,
            open_duration_ms: p.open_duration_ms,
            open_duration_max_ms: p.open_duration_max_ms,
            open_jitter_percent: p.open_jitter_percent,
            probe_permits: p.probe_permits,
            probe_success_threshold: p.probe_success_threshold,
            probe_lease_ms: p.probe_lease_ms,
            fresh_span_confidence,
        };
        policy.validate()?;
        Ok(policy)
    }
}

/// Converts an optional nested policy named `field` (e.g. `policy`,
/// `policies[2].policy`), prefixing errors with it.
pub(crate) fn policy_at(p: Option<pb::Policy>, field: &str) -> Result<Policy, ValidationError> {
    Policy::try_from(required(p, field)?).map_err(|e| within(e, field))
}

impl From<&PolicyTarget> for apb::PolicyTarget {
    fn from(target: &PolicyTarget) -> Self {
        let target = match target {
            PolicyTarget::Key(key) => apb::policy_target::Target::Key(key.to_string()),
            PolicyTarget::Scope(scope) => apb::policy_target::Target::Scope(scope.to_string()),
        };
        apb::PolicyTarget {
            target: Some(target),
        }
    }
}

/// Paths are relative to the target (`key`, `scope`, or `` when absent).
impl TryFrom<apb::PolicyTarget> for PolicyTarget {
    type Error = ValidationError;

    fn try_from(t: apb::PolicyTarget) -> Result<Self, Self::Error> {
        match t.target {
            Some(apb::policy_target::Target::Key(key)) => {
                Ok(PolicyTarget::Key(parse_key(&key, "key")?))
            }
            Some(apb::policy_target::Target::Scope(scope)) => {
                Ok(PolicyTarget::Scope(parse_scope(&scope, "scope")?))
            }
            None => Err(ValidationError::new(
                "",
                "one of `key` or `scope` is required",
            )),
        }
    }
}

/// Converts an optional nested target named `field` (e.g. `target`,
/// `policies[2].target`), prefixing errors with it.
pub(crate) fn target_at(
    t: Option<apb::PolicyTarget>,
    field: &str,
) -> Result<PolicyTarget, ValidationError> {
    PolicyTarget::try_from(required(t, field)?).map_err(|e| within(e, field))
}

impl From<(&PolicyTarget, &Policy)> for apb::PolicyEntry {
    fn from((target, policy): (&PolicyTarget, &Policy)) -> Self {
        apb::PolicyEntry {
            target: Some(target.into()),
            policy: Some(policy.into()),
        }
    }
}

/// Paths are relative to the entry (`target.key`, `policy.window`).
impl TryFrom<apb::PolicyEntry> for (PolicyTarget, Policy) {
    type Error = ValidationError;

    fn try_from(e: apb::PolicyEntry) -> Result<Self, Self::Error> {
        let target = target_at(e.target, "target")?;
        let policy = policy_at(e.policy, "policy")?;
        Ok((target, policy))
    }
}
