//! What runs against the cluster while faults happen, and what it records:
//!
//! - [`Monitor`]: polls every node's own status (leader, term, commit index) every 100 ms;
//!   windows (how long no leader was known) are computed from its samples.
//! - [`AdminWriter`]: one admin write after another (a FORCED_OPEN override on a fresh key),
//!   trying the next node when one fails, recording each acknowledgement and each write
//!   that no node accepted (a refusal).
//! - [`SdkFleet`]: SDK clients deciding calls in a tight loop, as services would, and
//!   recording how many decisions they made, the slowest one, and the longest pause.
//!
//! Every record carries an `Instant`, so a test can ask "was anything refused outside the
//! windows in which the cluster had no leader?".

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_proto::admin::admin_client::AdminClient;
use switchyard_proto::admin::{self as apb};
use switchyard_sdk::{Breaker, Client, Mode, Outcome, RejectReason};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::cluster::ADMIN_TOKEN;

/// Adds `authorization: Bearer <admin token>` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(AsciiMetadataValue);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// An admin client that authenticates with the cluster's admin token.
pub type Admin = AdminClient<InterceptedService<Channel, Bearer>>;

/// An admin client for `addr` that connects lazily and fails fast: a dead or unreachable node
/// costs one connect timeout, never a hang.
pub fn admin(addr: &str, call_timeout: Duration) -> Admin {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect_timeout(Duration::from_millis(300))
        .timeout(call_timeout)
        .connect_lazy();
    let token = MetadataValue::try_from(format!("Bearer {ADMIN_TOKEN}")).expect("ascii token");
    AdminClient::with_interceptor(channel, Bearer(token))
}

/// A node's own view (no read barrier), or `None` when it does not answer.
pub async fn local_status(admin: &mut Admin) -> Option<apb::StatusResponse> {
    admin
        .status(apb::StatusRequest { local: true })
        .await
        .ok()
        .map(tonic::Response::into_inner)
}

/// Forces `key` open; returns the committed log index.
pub async fn force_open(admin: &mut Admin, key: &str) -> Result<u64, tonic::Status> {
    let request = apb::SetOverrideRequest {
        key: key.into(),
        mode: apb::OverrideMode::ForcedOpen as i32,
        reason: "chaos".into(),
        for_ms: None,
    };
    Ok(admin.set_override(request).await?.into_inner().index)
}

/// Every breaker key the node knows (`local` = its applied state, else a linearizable read).
pub async fn breaker_keys(admin: &mut Admin, local: bool) -> Result<Vec<String>, tonic::Status> {
    let mut keys = Vec::new();
    let mut after_key = String::new();
    loop {
        let page = admin
            .list_breakers(apb::ListBreakersRequest {
                local,
                scope: String::new(),
                after_key: after_key.clone(),
                limit: 0,
            })
            .await?
            .into_inner();
        keys.extend(
            page.breakers
                .iter()
                .filter_map(|b| b.decision.as_ref().map(|d| d.key.clone())),
        );
        if page.next_after_key.is_empty() {
            return Ok(keys);
        }
        after_key = page.next_after_key;
    }
}

/// One status sample of one node.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the answer arrived.
    pub at: Instant,
    /// Which node answered.
    pub node: u64,
    /// The leader the node knows, if any.
    pub leader_id: Option<u64>,
    /// Its term.
    pub term: u64,
    /// Its commit index.
    pub commit_index: u64,
}

impl Sample {
    /// Whether the node reported itself as leader.
    pub fn is_leader(&self) -> bool {
        self.leader_id == Some(self.node)
    }
}

/// Polls every node's local status every 100 ms until dropped.
#[derive(Debug)]
pub struct Monitor {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
}

impl Monitor {
    /// Starts polling `nodes` (id, host gRPC address).
    pub fn start(nodes: &[(u64, String)]) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        for (id, addr) in nodes {
            let (id, samples, stop) = (*id, Arc::clone(&samples), Arc::clone(&stop));
            let mut client = admin(addr, Duration::from_millis(500));
            tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    if let Some(s) = local_status(&mut client).await {
                        samples.lock().expect("samples").push(Sample {
                            at: Instant::now(),
                            node: id,
                            leader_id: s.leader_id,
                            term: s.term,
                            commit_index: s.commit_index,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        Self { samples, stop }
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }

    /// The first moment after `since` at which a node other than `except` reported itself
    /// leader, and that node.
    pub fn new_leader_after(&self, since: Instant, except: Option<u64>) -> Option<(Instant, u64)> {
        self.samples()
            .into_iter()
            .filter(|s| s.at >= since && s.is_leader() && Some(s.node) != except)
            .map(|s| (s.at, s.node))
            .min_by_key(|(at, _)| *at)
    }

    /// Waits until a node other than `except` reports itself leader after `since`.
    pub async fn wait_new_leader(
        &self,
        since: Instant,
        except: Option<u64>,
        timeout: Duration,
    ) -> (Instant, u64) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.new_leader_after(since, except) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no new leader (other than {except:?}) within {timeout:?}; last samples: {:?}",
                self.samples().iter().rev().take(6).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The leader named by the most recent sample that names one.
    pub fn current_leader(&self) -> Option<u64> {
        self.samples().iter().rev().find_map(|s| s.leader_id)
    }

    /// The elections seen: for each rise of the term, from the last sample still at the old
    /// term to the first sample of a node leading the new one (`now` if none leads yet).
    pub fn elections(&self) -> Vec<(Instant, Instant)> {
        let mut samples = self.samples();
        samples.sort_by_key(|s| s.at);
        let mut windows = Vec::new();
        let mut led: Option<(u64, Instant)> = None; // (term of the known leader, last seen)
        let mut started: Option<Instant> = None;
        for s in samples {
            match led {
                None if s.is_leader() => led = Some((s.term, s.at)),
                None => {}
                Some((term, _)) if s.term == term && started.is_none() => led = Some((term, s.at)),
                Some((term, last_seen)) if s.term > term => {
                    let from = *started.get_or_insert(last_seen);
                    if s.is_leader() {
                        windows.push((from, s.at));
                        started = None;
                        led = Some((s.term, s.at));
                    }
                }
                Some(_) => {}
            }
        }
        if let Some(from) = started {
            windows.push((from, Instant::now()));
        }
        windows
    }

    /// The highest commit index any node reported.
    pub fn max_commit_index(&self) -> u64 {
        self.samples()
            .iter()
            .map(|s| s.commit_index)
            .max()
            .unwrap_or(0)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// What the admin writer saw.
#[derive(Debug, Default, Clone)]
pub struct WriteLog {
    /// Acknowledged writes: the key, its committed log index, and when the acknowledgement
    /// arrived.
    pub acked: Vec<(String, u64, Instant)>,
    /// Writes that no node accepted: when the last attempt failed, and why.
    pub refused: Vec<(Instant, String)>,
}

impl WriteLog {
    /// The first acknowledgement at or after `since`.
    pub fn first_ack_after(&self, since: Instant) -> Option<Instant> {
        self.acked
            .iter()
            .map(|(_, _, at)| *at)
            .find(|at| *at >= since)
    }

    /// The longest time without any acknowledgement between `from` and `to`, counted from
    /// the last acknowledgement before `from`: how long writes were unavailable across a
    /// fault. (Writes run one after another, so in steady state the gap is one commit plus
    /// the writer's 50 ms pause.)
    pub fn longest_gap(&self, from: Instant, to: Instant) -> Duration {
        let mut previous = self
            .acked
            .iter()
            .map(|(_, _, at)| *at)
            .filter(|at| *at < from)
            .max()
            .unwrap_or(from);
        let mut longest = Duration::ZERO;
        for at in self.acked.iter().map(|(_, _, at)| *at) {
            if at >= from && at <= to {
                longest = longest.max(at - previous);
                previous = at;
            }
        }
        longest
    }

    /// The highest log index acknowledged so far.
    pub fn last_index(&self) -> u64 {
        self.acked
            .iter()
            .map(|(_, index, _)| *index)
            .max()
            .unwrap_or(0)
    }

    /// The refusals outside every `(from, to)` window.
    pub fn refused_outside(&self, windows: &[(Instant, Instant)]) -> Vec<(Instant, String)> {
        self.refused
            .iter()
            .filter(|(at, _)| !windows.iter().any(|(from, to)| from <= at && at <= to))
            .cloned()
            .collect()
    }
}

/// Writes FORCED_OPEN overrides on fresh keys `chaos/w-00000`, ... one after another.
#[derive(Debug)]
pub struct AdminWriter {
    log: Arc<Mutex<WriteLog>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl AdminWriter {
    /// Starts writing through `endpoints`, about 20 writes per second.
    pub fn start(endpoints: &[String]) -> Self {
        let log = Arc::new(Mutex::new(WriteLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        // A write waits for a commit, and across a failover the node it reached may need a
        // few seconds to learn the new leader: allow that much before trying the next node.
        let mut clients: Vec<Admin> = endpoints
            .iter()
            .map(|e| admin(e, Duration::from_secs(3)))
            .collect();
        let task = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut preferred = 0;
                let mut seq = 0u64;
                while !stop.load(Relaxed) {
                    let key = format!("chaos/w-{seq:05}");
                    seq += 1;
                    let mut last_error = String::new();
                    let mut acked = None;
                    // Like the CLI: try each node once, starting with the last one that worked.
                    for attempt in 0..clients.len() {
                        let i = (preferred + attempt) % clients.len();
                        match force_open(&mut clients[i], &key).await {
                            Ok(index) => {
                                preferred = i;
                                acked = Some(index);
                                break;
                            }
                            Err(e) => last_error = format!("node #{i}: {}", e.message()),
                        }
                    }
                    {
                        let mut log = log.lock().expect("write log");
                        match acked {
                            Some(index) => log.acked.push((key, index, Instant::now())),
                            None => log.refused.push((Instant::now(), last_error)),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        Self { log, stop, task }
    }

    /// What was written so far.
    pub fn log(&self) -> WriteLog {
        self.log.lock().expect("write log").clone()
    }

    /// Waits for an acknowledgement at or after `since`.
    pub async fn wait_ack_after(&self, since: Instant, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.log().first_ack_after(since) {
                return at;
            }
            assert!(
                Instant::now() < deadline,
                "no admin write acknowledged within {timeout:?}; refusals: {:?}",
                self.log().refused.iter().rev().take(3).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops after the write in flight and returns everything it recorded.
    pub async fn finish(self) -> WriteLog {
        self.stop.store(true, Relaxed);
        let Self { log, task, .. } = self;
        let _ = task.await;
        log.lock().expect("write log").clone()
    }
}

/// Per-instance counters of the decision loop.
#[derive(Debug, Default)]
struct Decisions {
    made: AtomicU64,
    slowest_ns: AtomicU64,
    longest_pause_ns: AtomicU64,
}

/// SDK clients, each deciding calls to `chaos/load` every few milliseconds and reporting
/// successes, and each holding a handle on the marker breakers the test forces open.
#[derive(Debug)]
pub struct SdkFleet {
    /// The clients.
    pub clients: Vec<Client>,
    markers: Vec<Vec<(String, Breaker)>>,
    decisions: Vec<Arc<Decisions>>,
    stop: Arc<AtomicBool>,
}

/// The breaker every instance decides calls on.
pub const LOAD_KEY: &str = "chaos/load";

impl SdkFleet {
    /// Starts `n` clients on `endpoints`, with handles on `markers`.
    pub fn start(endpoints: &[String], n: usize, markers: &[&str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut fleet = Self {
            clients: Vec::new(),
            markers: Vec::new(),
            decisions: Vec::new(),
            stop: Arc::clone(&stop),
        };
        for i in 0..n {
            // Each instance lists the nodes in another order, so their watch streams spread
            // over the nodes as a real fleet's would.
            let mut order = endpoints.to_vec();
            order.rotate_left(i % endpoints.len());
            let client = Client::builder()
                .endpoints(order)
                .instance_id(format!("chaos-{i}"))
                .report_interval(Duration::from_millis(100))
                .build()
                .expect("sdk client");
            let load = client.breaker(LOAD_KEY).expect("load breaker");
            fleet.markers.push(
                markers
                    .iter()
                    .map(|key| {
                        (
                            key.to_string(),
                            client.breaker(key).expect("marker breaker"),
                        )
                    })
                    .collect(),
            );
            let decisions = Arc::new(Decisions::default());
            fleet.decisions.push(Arc::clone(&decisions));
            fleet.clients.push(client);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut last = Instant::now();
                while !stop.load(Relaxed) {
                    let started = Instant::now();
                    let pause = started.duration_since(last);
                    // The hot path: a local decision, never a network call.
                    if let Ok(permit) = load.allow() {
                        load.record(permit, Outcome::Success, Duration::from_millis(1));
                    }
                    let took = started.elapsed();
                    last = Instant::now();
                    decisions.made.fetch_add(1, Relaxed);
                    decisions
                        .slowest_ns
                        .fetch_max(took.as_nanos() as u64, Relaxed);
                    decisions
                        .longest_pause_ns
                        .fetch_max(pause.as_nanos() as u64, Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            });
        }
        fleet
    }

    /// Decisions made so far, per instance.
    pub fn decisions(&self) -> Vec<u64> {
        self.decisions
            .iter()
            .map(|d| d.made.load(Relaxed))
            .collect()
    }

    /// The slowest single decision and the longest pause between two decisions of one
    /// instance, over all instances.
    pub fn slowest_and_longest_pause(&self) -> (Duration, Duration) {
        let max = |f: fn(&Decisions) -> u64| {
            Duration::from_nanos(self.decisions.iter().map(|d| f(d)).max().unwrap_or(0))
        };
        (
            max(|d| d.slowest_ns.load(Relaxed)),
            max(|d| d.longest_pause_ns.load(Relaxed)),
        )
    }

    /// Waits until every instance is in cluster mode.
    pub async fn wait_cluster_mode(&self, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            if self.clients.iter().all(|c| c.mode() == Mode::Cluster) {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "not every SDK instance reached cluster mode within {timeout:?}: {:?}",
                self.clients.iter().map(Client::mode).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every instance rejects `marker` as forced open (the decision reached it)
    /// and returns when the last one did.
    pub async fn wait_marker_open(&self, marker: &str, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            let open = self
                .markers
                .iter()
                .map(|markers| {
                    let (_, breaker) = markers
                        .iter()
                        .find(|(key, _)| key == marker)
                        .expect("a marker declared at start");
                    match breaker.allow() {
                        Err(rejected) => rejected.reason == RejectReason::ForcedOpen,
                        Ok(permit) => {
                            breaker.release_unused(permit);
                            false
                        }
                    }
                })
                .filter(|open| *open)
                .count();
            if open == self.markers.len() {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{open} of {} SDK instances saw {marker} forced open within {timeout:?}; \
                 modes {:?}",
                self.markers.len(),
                self.clients.iter().map(Client::mode).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Each instance's watch reconnects so far.
    pub fn watch_reconnects(&self) -> Vec<u64> {
        self.clients
            .iter()
            .map(|c| c.stats().watch_reconnects)
            .collect()
    }
}

impl Drop for SdkFleet {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}
