//! A payment fraud check whose ML scoring falls back to rule-based scoring.
//!
//! Every request runs a fallback chain: `ml-primary` → `ml-cheap` → `rules`. Open breakers
//! are skipped without being called, and each answer says which step `decided_by`. The ML
//! steps only run while the scope's tier keeps the `ml_fraud` feature on (a tier rule in
//! the cluster turns it off when the scope degrades). The primary model suffers a
//! simulated outage in the middle of the run, so you can watch the breaker open, the
//! answers move to the cheap model, and the breaker probe and close again.
//!
//! ```text
//! cargo run -p switchyard-sdk --example fraud_check -- --requests 3000
//! SWITCHYARD_ENDPOINTS=127.0.0.1:7071,127.0.0.1:7072 cargo run -p switchyard-sdk --example fraud_check
//! ```
//!
//! With no cluster reachable it still works: the SDK is fail-static and, after
//! `fallback_after`, local breakers alone decide (set short here, 3 s, for the demo).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchyard_sdk::{Breaker, Client, Fallback, Policy, WindowSpec};

const SCOPE: &str = "payments";
const WORKERS: u64 = 8;

/// One fraud verdict.
#[derive(Debug, Clone)]
struct Answer {
    payment_id: u64,
    score: f64,
    verdict: &'static str,
    decided_by: String,
}

/// A simulated scoring dependency.
#[derive(Debug)]
struct Model {
    latency: Duration,
    /// Requests in `outage` (by payment id) fail.
    outage: std::ops::Range<u64>,
}

impl Model {
    async fn score(&self, payment_id: u64, amount_cents: u64) -> Result<f64, String> {
        tokio::time::sleep(self.latency).await;
        if self.outage.contains(&payment_id) {
            return Err("model server returned 503".into());
        }
        Ok(((amount_cents % 1000) as f64 / 1000.0 + (payment_id % 7) as f64 / 20.0).min(1.0))
    }
}

/// Rule-based scoring: always available, less precise.
fn rules_score(amount_cents: u64) -> f64 {
    if amount_cents > 500_000 {
        0.8
    } else if amount_cents > 100_000 {
        0.4
    } else {
        0.1
    }
}

#[derive(Debug)]
struct Service {
    client: Client,
    ml_primary: Breaker,
    ml_cheap: Breaker,
    primary: Model,
    cheap: Model,
}

impl Service {
    async fn check(&self, payment_id: u64, amount_cents: u64) -> Answer {
        let ml_on = self.client.feature_enabled(SCOPE, "ml_fraud");
        let mut chain = Fallback::new().step_timeout(Duration::from_millis(50));
        if ml_on {
            chain = chain
                .then("ml-primary", &self.ml_primary, || {
                    self.primary.score(payment_id, amount_cents)
                })
                .then("ml-cheap", &self.ml_cheap, || {
                    self.cheap.score(payment_id, amount_cents)
                });
        }
        let chain = chain.then_unguarded("rules", || async move { Ok(rules_score(amount_cents)) });
        let (score, decided_by) = match chain.run().await {
            Ok(d) if ml_on => (d.value, d.decided_by.into_owned()),
            Ok(d) => (
                d.value,
                format!(
                    "{} (ml_fraud off at tier {})",
                    d.decided_by,
                    self.client.tier(SCOPE)
                ),
            ),
            // Unreachable in practice (rules cannot fail), but answer conservatively anyway.
            Err(e) => (1.0, format!("none: {e}")),
        };
        let verdict = if score >= 0.75 { "review" } else { "approve" };
        Answer {
            payment_id,
            score,
            verdict,
            decided_by,
        }
    }
}

fn parse_requests() -> Result<u64, String> {
    let mut args = std::env::args().skip(1);
    let mut requests = 8_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--requests" => {
                let v = args.next().ok_or("--requests needs a number")?;
                requests = v
                    .parse()
                    .map_err(|_| format!("--requests: not a number: {v}"))?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: fraud_check [--requests N]   (endpoints from SWITCHYARD_ENDPOINTS)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`; try --help")),
        }
    }
    Ok(requests)
}

fn print_table(
    client: &Client,
    svc: &Service,
    by_step: &BTreeMap<String, u64>,
    done: u64,
    last: Option<&Answer>,
) {
    let stats = client.stats();
    println!(
        "-- {done} answers | mode {} | applied index {} | tier {} | ml_fraud {} | reports sent {} dropped {}",
        stats.mode,
        stats.applied_index,
        client.tier(SCOPE),
        if client.feature_enabled(SCOPE, "ml_fraud") {
            "on"
        } else {
            "off"
        },
        stats.reports_sent,
        stats.reports_dropped,
    );
    println!(
        "   ml-primary: {:?}   ml-cheap: {:?}",
        svc.ml_primary.admission(),
        svc.ml_cheap.admission()
    );
    println!("   {:<40} {:>8}", "decided_by", "answers");
    for (step, n) in by_step {
        println!("   {step:<40} {n:>8}");
    }
    if let Some(a) = last {
        println!(
            "   last: payment {} score {:.2} verdict {} decided_by {}",
            a.payment_id, a.score, a.verdict, a.decided_by
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests = parse_requests()?;
    let client = Client::builder()
        .endpoints_from_env("127.0.0.1:7070")
        .instance_id(format!("fraud-check-{}", std::process::id()))
        // Twice the nodes' 1 s watch heartbeat, so an idle stream never looks stale.
        .stale_after(Duration::from_secs(2))
        .fallback_after(Duration::from_secs(3))
        .build()?;
    // Short windows so the demo trips and recovers within seconds (the cluster's policy,
    // when there is one, replaces this).
    let demo_policy = Policy {
        window: WindowSpec::Time {
            duration_ms: 2_000,
            buckets: 10,
        },
        min_calls: 20,
        open_duration_ms: 1_000,
        open_duration_max_ms: 2_000,
        probe_success_threshold: 2,
        ..Policy::default()
    };
    let svc = Arc::new(Service {
        ml_primary: client.breaker_with_policy("payments/ml-fraud", demo_policy.clone())?,
        ml_cheap: client.breaker_with_policy("payments/ml-fraud-cheap", demo_policy)?,
        primary: Model {
            latency: Duration::from_millis(4),
            outage: requests / 4..requests * 3 / 5,
        },
        cheap: Model {
            latency: Duration::from_millis(1),
            outage: 0..0,
        },
        client: client.clone(),
    });

    let next = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Answer>(1024);
    for _ in 0..WORKERS {
        let (svc, next, tx) = (Arc::clone(&svc), Arc::clone(&next), tx.clone());
        tokio::spawn(async move {
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= requests {
                    return;
                }
                // Pace the load (~1 600 requests/s in all) so that time, not the speed of
                // rejections, drives the run: breakers need seconds to open and recover.
                tokio::time::sleep(Duration::from_millis(5)).await;
                let amount_cents = (id * 7_919) % 700_000;
                if tx.send(svc.check(id, amount_cents).await).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);

    let mut by_step: BTreeMap<String, u64> = BTreeMap::new();
    let mut done = 0;
    let mut last = None;
    let mut last_print = Instant::now();
    while let Some(answer) = rx.recv().await {
        *by_step.entry(answer.decided_by.clone()).or_default() += 1;
        done += 1;
        last = Some(answer);
        if last_print.elapsed() >= Duration::from_secs(1) {
            print_table(&client, &svc, &by_step, done, last.as_ref());
            last_print = Instant::now();
        }
    }
    println!("== final");
    print_table(&client, &svc, &by_step, done, last.as_ref());
    Ok(())
}
