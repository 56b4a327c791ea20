//! The Raft type configuration of Switchyard and the payload of its log entries.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchyard_core::{Applied, CommandError, Envelope};

use crate::RaftRuntime;

/// A node's identity in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Switchyard's openraft type configuration: `u64` node ids, `BasicNode` addresses,
    /// [`Request`] entries and [`Response`] results, on tokio through [`RaftRuntime`] (whose
    /// random draws a seed scope can fix).
    pub TypeConfig:
        D = Request,
        R = Response,
        AsyncRuntime = RaftRuntime,
);

/// The Raft handle of a Switchyard node.
pub type Raft = openraft::Raft<TypeConfig, crate::StateMachine>;

/// One command in the log: an operator, policy or fleet command stamped by the leader with its
/// wall-clock time. The state machine never reads a clock: it uses
/// `max(previous time, stamped_ms)` so time never goes backwards across leader changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Leader wall-clock time when the entry was proposed, in ms since the Unix epoch.
    pub stamped_ms: u64,
    /// The command and who issued it. Shared, not copied: an entry is handed to every
    /// replication stream and to the state machine, and a fleet `Tick` carries thousands of
    /// deltas.
    pub envelope: Arc<Envelope>,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {} at {}",
            self.envelope.command.kind(),
            self.envelope.actor,
            self.stamped_ms
        )
    }
}

/// The result of applying one [`Request`], returned to the proposer once committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The log index the request was applied at.
    pub index: u64,
    /// The effects, or why the command changed nothing.
    pub outcome: Result<Applied, CommandError>,
}

/// A fleet tick for tests: `instances` × `breakers` deltas of 10 calls, one instance in ten
/// failing once, in merged order (breaker, then instance).
#[cfg(test)]
pub(crate) fn fleet_tick(instances: u32, breakers: u32) -> Vec<switchyard_core::Delta> {
    let mut deltas = Vec::new();
    for b in 0..breakers {
        for i in 0..instances {
            let mut latency = switchyard_core::LatencySketch::default();
            latency.record_n(2_000, 10);
            deltas.push(switchyard_core::Delta {
                key: switchyard_core::BreakerKey::parse(&format!("fleet/b{b}")).unwrap(),
                instance: switchyard_core::InstanceId::parse(&format!("bench-{i}")).unwrap(),
                calls: 10,
                failures: u64::from(i % 10 == 0),
                slow: 0,
                rejected: 0,
                latency,
                first_attempts: 0,
                retries: 0,
            });
        }
    }
    deltas
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use switchyard_core::{Actor, BreakerKey, Command, Delta, Envelope};

    use super::fleet_tick;
    use crate::codec;

    /// The command layout of builds before packed ticks: `Tick` was variant 0.
    #[derive(Serialize)]
    enum OldCommand {
        Tick { deltas: Vec<Delta> },
    }

    #[derive(Serialize)]
    struct OldEnvelope {
        actor: Actor,
        command: OldCommand,
    }

    /// `value` as a record of format `version` (bincode with variable-length integers).
    fn encode_as<T: Serialize>(version: u8, value: &T) -> Vec<u8> {
        use bincode::Options;
        let mut out = vec![version];
        out.extend(bincode::DefaultOptions::new().serialize(value).unwrap());
        out
    }

    #[test]
    fn a_tick_written_before_packing_still_decodes() {
        let deltas = fleet_tick(5, 3);
        let old = encode_as(
            3,
            &OldEnvelope {
                actor: Actor::Node(2),
                command: OldCommand::Tick {
                    deltas: deltas.clone(),
                },
            },
        );
        let back: Envelope = codec::decode("log entry", &old).unwrap();
        assert_eq!(back.command, Command::TickUnpacked { deltas });
        assert_eq!(back.command.kind(), "tick");
    }

    #[test]
    fn an_entry_from_before_request_ids_decodes_without_one_and_new_ones_keep_theirs() {
        let command = Command::ResetBreaker {
            key: BreakerKey::parse("payments/db").unwrap(),
            reason: "incident 42".into(),
        };
        // Version 3: the envelope had no trace.
        #[derive(Serialize)]
        struct V3Envelope {
            actor: Actor,
            command: Command,
        }
        let old = encode_as(
            3,
            &V3Envelope {
                actor: Actor::Operator("alice".into()),
                command: command.clone(),
            },
        );
        let back: Envelope = codec::decode("log entry", &old).unwrap();
        assert_eq!(
            back,
            Envelope::new(Actor::Operator("alice".into()), command.clone())
        );

        let trace = switchyard_core::RequestTrace {
            request_id: "req-1".into(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        };
        let new = Envelope::new(Actor::Operator("alice".into()), command).with_trace(Some(trace));
        let bytes = codec::encode(&new);
        assert_eq!(bytes[0], codec::FORMAT_VERSION);
        let back: Envelope = codec::decode("log entry", &bytes).unwrap();
        assert_eq!(back, new);
        // The same bytes read as the old layout would not be the same entry: the version byte
        // is what tells them apart.
        let mut as_v4 = bytes.clone();
        as_v4[0] = 4;
        assert!(codec::decode::<Envelope>("log entry", &as_v4).is_err());
    }

    #[test]
    fn a_packed_fleet_tick_is_at_least_5x_smaller_and_round_trips() {
        let deltas = fleet_tick(1_000, 20);
        let packed = codec::encode(&Envelope::new(
            Actor::Node(1),
            Command::Tick {
                deltas: deltas.clone().into(),
            },
        ));
        let unpacked = codec::encode(&Envelope::new(
            Actor::Node(1),
            Command::TickUnpacked {
                deltas: deltas.clone(),
            },
        ));
        assert!(
            packed.len() * 5 <= unpacked.len(),
            "packed {} bytes, unpacked {} bytes",
            packed.len(),
            unpacked.len()
        );
        let back: Envelope = codec::decode("log entry", &packed).unwrap();
        assert_eq!(
            back.command,
            Command::Tick {
                deltas: deltas.into()
            }
        );

        // A garbled packed tick is a decode error of the record, not a panic.
        let mut garbled = packed.clone();
        let last = garbled.len() - 1;
        garbled[last] = 0xff;
        let err = codec::decode::<Envelope>("log entry", &garbled).unwrap_err();
        assert!(
            err.to_string().starts_with("log entry: corrupt record"),
            "{err}"
        );
    }
}
