//! Where the reports of `switchyard bench ingest` went: refusals by gRPC code, the evidence that
//! reached the state machine end to end, the CPU of every node, the size of a tick entry, and
//! the size of the state the evidence built.
//!
//! The end-to-end count is read from the leader's `/metrics` (`breaker_sla_calls` over the
//! bench's breakers: every call of every applied delta lands in the day's SLA window), so it
//! counts what the replicated state machine applied, not what a node acknowledged.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;
use switchyard_core::{Actor, Command, Envelope, InstanceId};
use switchyard_proto::client::ReportRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Failed Report calls, by gRPC code name (`ResourceExhausted`, `Unavailable`, ...).
pub type ErrorsByCode = BTreeMap<String, u64>;

/// Adds one failed call to `errors`.
pub fn count_error(errors: &mut ErrorsByCode, status: &tonic::Status) {
    *errors.entry(format!("{:?}", status.code())).or_insert(0) += 1;
}

/// Adds `from` into `into`.
pub fn merge_errors(into: &mut ErrorsByCode, from: ErrorsByCode) {
    for (code, n) in from {
        *into.entry(code).or_insert(0) += n;
    }
}

/// CPU use of one node over the measured seconds.
#[derive(Debug, Clone, Serialize)]
pub struct NodeCpu {
    /// Node id.
    pub node: u64,
    /// Whether it led during the measurement.
    pub leader: bool,
    /// Percent of one core.
    pub cpu_percent: f64,
    /// Its runtime's lag (`switchyard_runtime_lag_seconds`), mean of one reading a second, ms.
    pub runtime_lag_ms: f64,
}

/// Fetches `GET /metrics` from a node's HTTP address (plain HTTP/1.0, the body up to close).
async fn scrape(http_addr: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(http_addr)
        .await
        .with_context(|| format!("connecting to {http_addr} for /metrics"))?;
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {http_addr}\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

/// Sums the samples of metric `name` whose labels contain `label_part`.
fn sum_metric(text: &str, name: &str, label_part: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter(|l| l.contains(label_part))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Deltas the nodes acknowledged or refused but did not hand on, summed over the nodes (from
/// their `/metrics`): where offered deltas that never reached the state machine went.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct NodeLosses {
    /// Refused at a limit (the SDK saw an error).
    pub refused: u64,
    /// Forwarded and rejected by the leader as such (never expected).
    pub dropped_forwarding: u64,
    /// In a tick discarded on a leader change (it may have committed).
    pub lost_in_tick: u64,
    /// Not lost: held by a leader that stepped down and forwarded to the next one.
    pub handed_over: u64,
    /// Not lost: not taken by the leader on a try, kept and forwarded again (per try).
    pub forward_retried: u64,
}

/// Sums the loss counters of every node in `http_addrs`.
pub async fn node_losses(http_addrs: &[String]) -> anyhow::Result<NodeLosses> {
    let mut losses = NodeLosses::default();
    for addr in http_addrs {
        let text = scrape(addr).await?;
        // Unlabelled or labelled (refusals carry the limit that refused them): all samples.
        let read = |name: &str| {
            text.lines()
                .filter(|l| {
                    l.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        };
        losses.refused += read("switchyard_report_deltas_refused_total");
        losses.dropped_forwarding += read("switchyard_report_deltas_dropped_forwarding_total");
        losses.lost_in_tick += read("switchyard_report_deltas_lost_in_tick_total");
        losses.handed_over += read("switchyard_report_deltas_handed_over_total");
        losses.forward_retried += read("switchyard_report_deltas_forward_retried_total");
    }
    Ok(losses)
}

/// Calls of the bench's breakers (`fleet/...`) the node's state machine has applied.
pub async fn calls_applied(http_addr: &str) -> anyhow::Result<u64> {
    let text = scrape(http_addr).await?;
    Ok(sum_metric(&text, "switchyard_breaker_sla_calls", "key=\"fleet/").round() as u64)
}

/// The size of a node's replicated state, as its latest snapshot measured it.
///
/// A node exposes no live size of its state; what it does expose is the encoded size of the
/// state machine in its latest snapshot (`switchyard_snapshot_size_bytes`): exactly the bytes a
/// snapshot writes, flushes and sends to a lagging follower. A snapshot is built once the log
/// since the last one reaches `snapshot_every_entries` entries (a node's default 5 000; `bench
/// ingest` starts its nodes with `--snapshot-every-entries`, default 20) or
/// `snapshot_log_bytes_max` (64 MiB) and is at least as large as that snapshot, so a run
/// shorter than that schedule ends with none yet (0), and the figure is the state at
/// `snapshot_index`, not at `applied_index`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StateSize {
    /// Encoded bytes of the state machine in the latest snapshot (0: none yet).
    pub snapshot_bytes: u64,
    /// The log index that snapshot covers (0: none yet).
    pub snapshot_index: u64,
    /// The node's applied index when read.
    pub applied_index: u64,
}

/// The value of the unlabelled metric `name` (0 when absent).
fn unlabelled(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .next()
        .unwrap_or(0.0) as u64
}

/// The node's smoothed runtime lag (`switchyard_runtime_lag_seconds`), seconds.
pub async fn runtime_lag_seconds(http_addr: &str) -> anyhow::Result<f64> {
    let text = scrape(http_addr).await?;
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("switchyard_runtime_lag_seconds ")?
                .trim()
                .parse()
                .ok()
        })
        .next()
        .context("switchyard_runtime_lag_seconds is not in the node's /metrics")
}

/// The state size of the node at `http_addr` (see [`StateSize`]).
pub async fn state_size(http_addr: &str) -> anyhow::Result<StateSize> {
    let text = scrape(http_addr).await?;
    Ok(StateSize {
        snapshot_bytes: unlabelled(&text, "switchyard_snapshot_size_bytes"),
        snapshot_index: unlabelled(&text, "switchyard_raft_snapshot_index"),
        applied_index: unlabelled(&text, "switchyard_raft_applied_index"),
    })
}

/// Encoded tick entry bytes per delta: what every node writes, fsyncs and replicates.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TickBytes {
    /// As the leader writes it (packed).
    pub packed: f64,
    /// In the field-by-field layout of earlier builds, for comparison.
    pub unpacked: f64,
}

/// The encoded size of the tick entry a leader writes when `instances` each report once with
/// `report(instance)`, per delta.
pub fn tick_bytes_per_delta(
    instances: u32,
    report: impl Fn(u32) -> ReportRequest,
) -> anyhow::Result<TickBytes> {
    let mut deltas = Vec::new();
    for instance in 0..instances {
        let request = report(instance);
        let id = InstanceId::parse(&request.instance)?;
        for delta in request.deltas {
            deltas.push(switchyard_proto::convert::delta_from_wire(
                delta,
                id.clone(),
            )?);
        }
    }
    let deltas = switchyard_server::ingest::merge(deltas);
    let count = deltas.len().max(1) as f64;
    let size = |command| {
        switchyard_store::codec::encode(&Envelope::new(Actor::Node(1), command)).len() as f64
            / count
    };
    Ok(TickBytes {
        packed: size(Command::Tick {
            deltas: deltas.clone().into(),
        }),
        unpacked: size(Command::TickUnpacked { deltas }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_only_the_named_metric_and_matching_labels() {
        let text = "# HELP switchyard_breaker_sla_calls x\n\
                    switchyard_breaker_sla_calls{key=\"fleet/b0\",window=\"24h\"} 30\n\
                    switchyard_breaker_sla_calls{key=\"fleet/b1\",window=\"24h\"} 12\n\
                    switchyard_breaker_sla_calls{key=\"other/b1\",window=\"24h\"} 1000\n\
                    switchyard_breaker_sla_calls_max{key=\"fleet/b1\"} 7\n";
        assert_eq!(
            sum_metric(text, "switchyard_breaker_sla_calls", "key=\"fleet/"),
            42.0
        );
    }

    #[test]
    fn reads_an_unlabelled_gauge_by_its_exact_name() {
        let text = "# HELP switchyard_snapshot_size_bytes Size of the latest snapshot.\n\
                    switchyard_snapshot_size_bytes_total 9\n\
                    switchyard_snapshot_size_bytes 123456\n\
                    switchyard_raft_snapshot_index 7\n";
        assert_eq!(unlabelled(text, "switchyard_snapshot_size_bytes"), 123_456);
        assert_eq!(unlabelled(text, "switchyard_raft_snapshot_index"), 7);
        assert_eq!(unlabelled(text, "switchyard_raft_applied_index"), 0);
    }

    #[test]
    fn counts_errors_by_code() {
        let mut errors = ErrorsByCode::new();
        count_error(&mut errors, &tonic::Status::resource_exhausted("full"));
        count_error(&mut errors, &tonic::Status::resource_exhausted("full"));
        let mut other = ErrorsByCode::new();
        count_error(&mut other, &tonic::Status::unavailable("no leader"));
        merge_errors(&mut errors, other);
        assert_eq!(errors.get("ResourceExhausted"), Some(&2));
        assert_eq!(errors.get("Unavailable"), Some(&1));
    }
}
