//! Writers that keep a cluster busy with durable override writes while a bench breaks
//! something (`bench failover`, `bench stability`, `bench partitions`).
//!
//! Each writer stays on one node while it answers and moves to the next endpoint on any error
//! or timeout, as an operator's client would, so the acknowledged writes show when the cluster
//! as a whole could take writes. Every attempt is bounded by `timeout`; writers run until
//! `stop` is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchyard_proto::admin::admin_client::AdminClient;
use switchyard_proto::admin::{OverrideMode, SetOverrideRequest};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::cluster::connect;

/// What the writers saw: each acknowledged write (when, and how long it took) and the
/// attempts that failed or timed out.
#[derive(Debug, Default, Clone)]
pub struct WriteLog {
    /// Acknowledged writes in the order they were acknowledged (per writer).
    pub acked: Vec<(Instant, Duration)>,
    /// Writes that failed or timed out (each moved its writer to the next endpoint).
    pub failures: u64,
}

impl WriteLog {
    /// The acknowledgement times, sorted.
    pub fn acked_at(&self) -> Vec<Instant> {
        let mut at: Vec<Instant> = self.acked.iter().map(|(at, _)| *at).collect();
        at.sort();
        at
    }
}

/// Starts `writers` writers against `endpoints`; keys are `bench/{name}-{writer}-{0..16}`.
pub fn start(
    endpoints: Vec<String>,
    writers: u32,
    name: &'static str,
    timeout: Duration,
    stop: &Arc<AtomicBool>,
    log: &Arc<Mutex<WriteLog>>,
) -> Vec<JoinHandle<()>> {
    let endpoints = Arc::new(endpoints);
    (0..writers)
        .map(|writer| {
            let (endpoints, stop, log) = (endpoints.clone(), stop.clone(), log.clone());
            tokio::spawn(async move {
                let mut target = writer as usize % endpoints.len();
                let mut client: Option<AdminClient<_>> = None;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let Some(admin) = client.as_mut() else {
                        match tokio::time::timeout(timeout, connect(&endpoints[target])).await {
                            Ok(Ok(channel)) => client = Some(AdminClient::new(channel)),
                            _ => target = (target + 1) % endpoints.len(),
                        }
                        continue;
                    };
                    let mut request = tonic::Request::new(SetOverrideRequest {
                        key: format!("bench/{name}-{writer}-{}", n % 16),
                        mode: OverrideMode::ForcedClosed as i32,
                        reason: "bench".into(),
                        for_ms: None,
                    });
                    request.set_timeout(timeout);
                    n += 1;
                    let started = Instant::now();
                    match tokio::time::timeout(timeout, admin.set_override(request)).await {
                        Ok(Ok(_)) => {
                            let now = Instant::now();
                            log.lock().await.acked.push((now, now - started));
                        }
                        _ => {
                            log.lock().await.failures += 1;
                            client = None;
                            target = (target + 1) % endpoints.len();
                        }
                    }
                }
            })
        })
        .collect()
}
