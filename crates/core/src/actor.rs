//! Who issued a command; recorded in the audit log.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{InstanceId, ValidationError};

/// The issuer of a command.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Actor {
    /// An operator, by identity.
    Operator(String),
    /// A cluster node (e.g. the leader writing a timed tick).
    Node(u64),
    /// The automatic policy engine.
    Policy,
    /// An SDK instance (probe requests).
    Instance(InstanceId),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator(name) => write!(f, "operator:{name}"),
            Actor::Node(id) => write!(f, "node:{id}"),
            Actor::Policy => f.write_str("policy"),
            Actor::Instance(id) => write!(f, "instance:{id}"),
        }
    }
}

impl FromStr for Actor {
    type Err = ValidationError;
    /// Parses the `Display` form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "policy" {
            return Ok(Actor::Policy);
        }
        let err = || {
            ValidationError::new(
                "actor",
                format!("must be operator:NAME, node:N, policy or instance:ID, got {s:?}"),
            )
        };
        let (kind, rest) = s.split_once(':').ok_or_else(err)?;
        match kind {
            "operator"
                if !rest.is_empty() && rest.len() <= 128 && !rest.chars().any(char::is_control) =>
            {
                Ok(Actor::Operator(rest.to_owned()))
            }
            "node" => rest.parse().map(Actor::Node).map_err(|_| err()),
            "instance" => InstanceId::parse(rest).map(Actor::Instance),
            _ => Err(err()),
        }
    }
}
