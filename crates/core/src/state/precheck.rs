//! The checks of a command that need the state, made before anything changes.

use super::CoordinatorState;
use super::breaker_entry::BreakerEntry;
use crate::{BreakerKey, Command, CommandError, PolicyTarget, ValidationError};

impl CoordinatorState {
    fn expiry_in_future(expires_at_ms: Option<u64>, now_ms: u64) -> Result<(), CommandError> {
        match expires_at_ms {
            Some(e) if e <= now_ms => Err(ValidationError::new(
                "expires_at_ms",
                format!("must be in the future (now {now_ms} ms), got {e} ms"),
            )
            .into()),
            _ => Ok(()),
        }
    }

    fn known(&self, key: &BreakerKey) -> Result<&BreakerEntry, CommandError> {
        self.breakers
            .get(key)
            .ok_or_else(|| CommandError::UnknownBreaker(key.clone()))
    }

    /// The checks that need the state, made before anything changes.
    pub(super) fn precheck(&self, command: &Command, now_ms: u64) -> Result<(), CommandError> {
        match command {
            Command::Tick { .. }
            | Command::TickUnpacked { .. }
            | Command::PutTierRules { .. }
            | Command::PutSettings { .. } => Ok(()),
            Command::PutPolicies { policies } => {
                let new = policies
                    .iter()
                    .filter(|(target, _)| match target {
                        PolicyTarget::Key(k) => !self.key_policies.contains_key(k),
                        PolicyTarget::Scope(s) => !self.scope_policies.contains_key(s),
                    })
                    .count();
                let count = self.key_policies.len() + self.scope_policies.len();
                if count + new > self.settings.max_breakers as usize {
                    return Err(CommandError::ResourceExhausted {
                        limit: "max_policies".into(),
                        max: u64::from(self.settings.max_breakers),
                    });
                }
                Ok(())
            }
            Command::DeletePolicy { target } => {
                let exists = match target {
                    PolicyTarget::Key(k) => self.key_policies.contains_key(k),
                    PolicyTarget::Scope(s) => self.scope_policies.contains_key(s),
                };
                if exists {
                    Ok(())
                } else {
                    Err(CommandError::NotFound {
                        what: format!("policy for {target}"),
                    })
                }
            }
            Command::SetOverride {
                key, expires_at_ms, ..
            } => {
                Self::expiry_in_future(*expires_at_ms, now_ms)?;
                if !self.breakers.contains_key(key)
                    && self.breakers.len() >= self.settings.max_breakers as usize
                {
                    return Err(CommandError::ResourceExhausted {
                        limit: "max_breakers".into(),
                        max: u64::from(self.settings.max_breakers),
                    });
                }
                Ok(())
            }
            Command::ClearOverride { key, .. } => {
                let b = &self.known(key)?.breaker;
                let active = b.override_mode().is_some()
                    && b.override_expires_at_ms().is_none_or(|e| now_ms < e);
                if active {
                    Ok(())
                } else {
                    Err(CommandError::NotFound {
                        what: format!("active override on `{key}`"),
                    })
                }
            }
            Command::ResetBreaker { key, .. } | Command::AcquireProbe { key, .. } => {
                self.known(key).map(|_| ())
            }
            Command::ReleaseProbe { key, permit_id, .. } => {
                if self.known(key)?.breaker.has_live_lease(*permit_id, now_ms) {
                    Ok(())
                } else {
                    Err(CommandError::StaleProbe {
                        permit_id: *permit_id,
                    })
                }
            }
            Command::DeleteTierRules { scope } => {
                if self.tier_rules.contains_key(scope) {
                    Ok(())
                } else {
                    Err(CommandError::NotFound {
                        what: format!("tier rules for scope `{scope}`"),
                    })
                }
            }
            Command::SetTierOverride { expires_at_ms, .. } => {
                Self::expiry_in_future(*expires_at_ms, now_ms)
            }
            Command::ClearTierOverride { scope, .. } => {
                if self.scopes.get(scope).is_some_and(|s| s.pinned_at(now_ms)) {
                    Ok(())
                } else {
                    Err(CommandError::NotFound {
                        what: format!("tier override on scope `{scope}`"),
                    })
                }
            }
        }
    }
}
