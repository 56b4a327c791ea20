//! The leader's work per fleet report, as a fixed in-process workload for an instruction
//! counter (`valgrind --tool=callgrind --toggle-collect='report_cost::leader_work*'`).
//!
//! ```text
//! cargo build --release -p switchyard-server --example report_cost
//! valgrind --tool=callgrind --toggle-collect='report_cost::leader_work*' \
//!     target/release/examples/report_cost packed 20
//! ```
//!
//! What it counts, per tick of `INSTANCES` reports of `BREAKERS` deltas each (the bench's
//! 1 000 instances × 20 breakers every 100 ms): every report's protobuf decode and its
//! validation into core deltas (`ReportWire`, as the node reads Report RPCs), and its offer
//! to the leader's report buffer; then the tick: taking the buffer, one log entry encoded as
//! the log and the replication stream store it, and its apply to the replicated state. Left out: gRPC and HTTP/2 framing, Raft's own
//! bookkeeping and the disk write, which do not depend on the tick layout.
//!
//! `packed` writes ticks as today; `unpacked` in the field-by-field layout written before
//! ticks were packed (`Command::TickUnpacked`, still applied the same way), so one binary
//! measures both layouts on the same code.

use std::hint::black_box;
use std::sync::Arc;

use prost::Message;
use switchyard_core::{Actor, ApplyContext, Command, CoordinatorState, Envelope};
use switchyard_proto::client as pb;
use switchyard_proto::convert::ReportWire;
use switchyard_server::ingest::Ingest;
use switchyard_store::Request;

const INSTANCES: usize = 1_000;
const BREAKERS: usize = 20;
const TICK_MS: u64 = 100;
const T0: u64 = 1_700_000_000_000;

/// One instance's report of `BREAKERS` deltas, as the SDK puts it on the wire.
fn report_bytes(instance: usize, tick: usize) -> Vec<u8> {
    let deltas = (0..BREAKERS)
        .map(|b| pb::BreakerDelta {
            key: format!("payments/dep-{b:02}"),
            calls: 1,
            failures: u64::from((instance + b + tick).is_multiple_of(10)),
            latency: vec![pb::LatencyBucket {
                index: 40 + (instance % 8) as u32,
                count: 1,
            }],
            ..Default::default()
        })
        .collect();
    pb::ReportRequest {
        instance: format!("pod-{instance:04}"),
        deltas,
    }
    .encode_to_vec()
}

/// The measured part: `ticks` ticks of reports into `state`. Returns the log bytes written.
#[inline(never)]
fn leader_work(
    reports: &[Vec<Vec<u8>>],
    packed: bool,
    ingest: &Ingest,
    state: &mut CoordinatorState,
    index: &mut u64,
) -> usize {
    let mut log_bytes = 0;
    for (tick, wire) in reports.iter().enumerate() {
        let now_ms = T0 + (tick as u64 + 1) * TICK_MS;
        for bytes in wire {
            let report = ReportWire::parse(bytes)
                .and_then(|wire| wire.decode())
                .expect("valid");
            ingest
                .offer(report.instance.as_str(), report.deltas, now_ms)
                .expect("within limits");
        }
        let batch = ingest.take_batch();
        ingest.settle();
        let command = if packed {
            Command::Tick {
                deltas: batch.deltas.into(),
            }
        } else {
            Command::TickUnpacked {
                deltas: batch.deltas,
            }
        };
        let request = Request {
            stamped_ms: now_ms,
            envelope: Arc::new(Envelope::new(Actor::Node(1), command)),
        };
        log_bytes += black_box(switchyard_store::codec::encode(&request)).len();
        *index += 1;
        state
            .apply(
                ApplyContext {
                    index: *index,
                    stamped_ms: now_ms,
                },
                &request.envelope,
            )
            .expect("applies");
    }
    log_bytes
}

fn main() {
    let mut args = std::env::args().skip(1);
    let packed = match args.next().as_deref() {
        Some("packed") => true,
        Some("unpacked") => false,
        _ => {
            eprintln!("usage: report_cost packed|unpacked [ticks]");
            std::process::exit(2);
        }
    };
    let ticks: usize = args.next().map_or(20, |t| t.parse().expect("ticks"));
    let reports: Vec<Vec<Vec<u8>>> = (0..ticks)
        .map(|tick| (0..INSTANCES).map(|i| report_bytes(i, tick)).collect())
        .collect();
    let ingest = Ingest::new(1_000_000, 1_000);
    let mut state = CoordinatorState::default();
    let mut index = 0;
    // A warm-up tick creates the breakers and instance marks, as on a running cluster.
    leader_work(&reports[..1], packed, &ingest, &mut state, &mut index);
    let bytes = leader_work(&reports[1..], packed, &ingest, &mut state, &mut index);
    let measured = (ticks - 1) * INSTANCES;
    println!(
        "{} ticks, {measured} reports of {BREAKERS} deltas: {:.2} log bytes per delta ({})",
        ticks - 1,
        bytes as f64 / (measured * BREAKERS) as f64,
        if packed { "packed" } else { "unpacked" }
    );
}
