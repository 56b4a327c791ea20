//! [`Client`]: the SDK entry point. Owns the breakers, the background agent and the metrics.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchyard_sdk::Error> {
//! use std::time::Duration;
//! use switchyard_sdk::{Client, Outcome};
//!
//! let client = Client::builder()
//!     .endpoints(["10.0.0.1:7070", "10.0.0.2:7070"])
//!     .instance_id("payments-7f9c")
//!     .token_from_env() // SWITCHYARD_CLIENT_TOKEN, when the cluster requires one
//!     .build()?;
//! let ml = client.breaker("payments/ml-fraud")?;
//! match ml.allow() {
//!     Ok(permit) => { /* call the dependency */ ml.record(permit, Outcome::Success, Duration::from_millis(3)) }
//!     Err(rejected) => { /* fall back */ let _ = rejected.reason; }
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::Tracer;
use prometheus_client::registry::Registry;
use switchyard_core::{BreakerKey, InstanceId, Policy, Tier};
use tokio::sync::{Notify, watch};
use tonic::transport::{Channel, Endpoint};

use crate::agent::{self, Shared};
use crate::agent_state::{AgentConfig, AgentState, Published, ScopeInfo};
use crate::clock::{Clock, CoarseClock, TokioClock};
use crate::credentials::{BearerToken, CLIENT_TOKEN_ENV, ClientTls};
use crate::metrics::SdkMetrics;
use crate::mode::ModeOptions;
use crate::otel::{CallTracing, ModeSource};
use crate::report_queue::REPORT_QUEUE_MAX_DEFAULT;
use crate::stripe;
use crate::{Backoff, Breaker, Error, Mode, Retry, RetryBudget, RetryBudgetOptions, SmallRng};

/// Environment variable holding comma-separated cluster endpoints.
pub const ENDPOINTS_ENV: &str = "SWITCHYARD_ENDPOINTS";

/// Limits of [`ClientOptions`] fields, checked by [`ClientBuilder::build`].
pub mod limits {
    use std::time::Duration;

    /// `report_interval` range.
    pub const REPORT_INTERVAL: (Duration, Duration) =
        (Duration::from_millis(10), Duration::from_secs(60));
    /// `report_queue_max` range.
    pub const REPORT_QUEUE_MAX: (usize, usize) = (1, 10_000);
    /// `breakers_max` range.
    pub const BREAKERS_MAX: (usize, usize) = (1, 100_000);
    /// Endpoints per client.
    pub const ENDPOINTS_MAX: usize = 64;
    /// `probe_permits_per_instance_max` range.
    pub const PROBE_PERMITS_PER_INSTANCE: (u32, u32) = (1, 100);
}

/// Every setting of a client, with the defaults of DESIGN §5.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How often outcomes are flushed and local breakers judged. Default 100 ms.
    pub report_interval: Duration,
    /// Thresholds of the fail-static modes (5 s / 30 s).
    pub modes: ModeOptions,
    /// Bound on each unary RPC (report, probe). Default 1 s.
    pub rpc_timeout: Duration,
    /// Reports kept while the cluster is unreachable; the oldest is dropped. Default 64.
    pub report_queue_max: usize,
    /// Breakers per client. Default 1024.
    pub breakers_max: usize,
    /// Policy of a local breaker until the cluster sends one. Default: DESIGN defaults.
    pub default_policy: Policy,
    /// Counter stripes per breaker (a power of two ≤ 16). Default: available parallelism.
    pub stripes: usize,
    /// Reconnect backoff of the watch stream (full jitter). Default 100 ms .. 5 s.
    pub watch_backoff: Backoff,
    /// A watch stream silent for this long is reconnected. Default 5 s.
    pub watch_idle_timeout: Duration,
    /// Cluster probe permits this instance holds at once per breaker. Default 1.
    pub probe_permits_per_instance_max: u32,
    /// Scopes to watch; empty means all. Default empty.
    pub watch_scopes: Vec<String>,
    /// Record an OpenTelemetry span per guarded call, with the global tracer provider's
    /// tracer (see [`crate::otel`]). Default off.
    pub tracing: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            report_interval: Duration::from_millis(100),
            modes: ModeOptions::default(),
            rpc_timeout: Duration::from_secs(1),
            report_queue_max: REPORT_QUEUE_MAX_DEFAULT,
            breakers_max: 1024,
            default_policy: Policy::default(),
            stripes: stripe::default_stripes(),
            watch_backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(5),
            },
            watch_idle_timeout: Duration::from_secs(5),
            probe_permits_per_instance_max: 1,
            watch_scopes: Vec::new(),
            tracing: false,
        }
    }
}

impl ClientOptions {
    fn validate(&self) -> Result<(), Error> {
        let bad = |option: &'static str, rule: String| Err(Error::InvalidOption { option, rule });
        let (lo, hi) = limits::REPORT_INTERVAL;
        if self.report_interval < lo || self.report_interval > hi {
            return bad(
                "report_interval",
                format!("must be between {lo:?} and {hi:?}"),
            );
        }
        if self.modes.stale_after >= self.modes.fallback_after {
            return bad("stale_after", "must be shorter than fallback_after".into());
        }
        let (lo, hi) = limits::REPORT_QUEUE_MAX;
        if !(lo..=hi).contains(&self.report_queue_max) {
            return bad("report_queue_max", format!("must be between {lo} and {hi}"));
        }
        let (lo, hi) = limits::BREAKERS_MAX;
        if !(lo..=hi).contains(&self.breakers_max) {
            return bad("breakers_max", format!("must be between {lo} and {hi}"));
        }
        let (lo, hi) = limits::PROBE_PERMITS_PER_INSTANCE;
        if !(lo..=hi).contains(&self.probe_permits_per_instance_max) {
            return bad(
                "probe_permits_per_instance_max",
                format!("must be between {lo} and {hi}"),
            );
        }
        if self.rpc_timeout.is_zero() || self.watch_idle_timeout.is_zero() {
            return bad("rpc_timeout", "timeouts must be positive".into());
        }
        self.default_policy.validate()?;
        Ok(())
    }
}

/// Builds a [`Client`].
#[derive(Debug, Default)]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    channels: Vec<(String, Channel)>,
    instance_id: Option<String>,
    options: ClientOptions,
    clock: Option<Arc<dyn Clock>>,
    token: Option<String>,
    tls: Option<ClientTls>,
    tracer: Option<BoxedTracer>,
}

impl ClientBuilder {
    /// Cluster endpoints, `host:port` or `http://host:port`. Any node will do; the agent
    /// rotates across them.
    pub fn endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints.extend(endpoints.into_iter().map(Into::into));
        self
    }

    /// Endpoints from `SWITCHYARD_ENDPOINTS` (comma-separated), or `default` when unset.
    pub fn endpoints_from_env(self, default: &str) -> Self {
        let value = std::env::var(ENDPOINTS_ENV).unwrap_or_else(|_| default.to_owned());
        let list: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        self.endpoints(list)
    }

    /// Ready-made channels (e.g. over turmoil's simulated network), with a name each.
    pub fn channels<I>(mut self, channels: I) -> Self
    where
        I: IntoIterator<Item = (String, Channel)>,
    {
        self.channels.extend(channels);
        self
    }

    /// This process's instance id (pod or host name): stable for the life of the process.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// Replaces all options.
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// How often outcomes are flushed (default 100 ms).
    pub fn report_interval(mut self, interval: Duration) -> Self {
        self.options.report_interval = interval;
        self
    }

    /// No contact for this long → Stale (default 5 s).
    pub fn stale_after(mut self, after: Duration) -> Self {
        self.options.modes.stale_after = after;
        self
    }

    /// No contact for longer than this → LocalOnly (default 30 s).
    pub fn fallback_after(mut self, after: Duration) -> Self {
        self.options.modes.fallback_after = after;
        self
    }

    /// Reports kept while the cluster is unreachable (default 64).
    pub fn report_queue_max(mut self, max: usize) -> Self {
        self.options.report_queue_max = max;
        self
    }

    /// Breakers per client (default 1024).
    pub fn breakers_max(mut self, max: usize) -> Self {
        self.options.breakers_max = max;
        self
    }

    /// Local breaker policy until the cluster sends one.
    pub fn default_policy(mut self, policy: Policy) -> Self {
        self.options.default_policy = policy;
        self
    }

    /// The client token sent with every call (`authorization: Bearer <token>`); needed when
    /// the nodes have a client token configured. Never logged.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The client token from `SWITCHYARD_CLIENT_TOKEN`, when set (otherwise unchanged).
    pub fn token_from_env(self) -> Self {
        match std::env::var(CLIENT_TOKEN_ENV) {
            Ok(token) if !token.trim().is_empty() => self.token(token),
            _ => self,
        }
    }

    /// Connects to `host:port` endpoints over TLS (`https://`), verifying the nodes with
    /// `tls`. Channels given with [`ClientBuilder::channels`] are used as they are.
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Records an OpenTelemetry span per guarded call (`Breaker::call`, `Guard`, `Fallback`,
    /// the tower layer) in the caller's current trace, with the tracer of the global tracer
    /// provider as it is when the client is built: set the provider first. Default off; off,
    /// it costs the hot path one branch and no allocation. See [`crate::otel`].
    pub fn tracing(mut self, on: bool) -> Self {
        self.options.tracing = on;
        self
    }

    /// Turns tracing on with spans from `tracer` instead of the global provider's.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        self.options.tracing = true;
        self.tracer = Some(BoxedTracer::new(Box::new(tracer)));
        self
    }

    /// The clock the agent reads (tests inject a [`crate::clock::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the client and starts its agent on the current tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        self.build_on(&handle)
    }

    /// Builds the client and starts its agent on `handle`.
    pub fn build_on(self, handle: &tokio::runtime::Handle) -> Result<Client, Error> {
        self.options.validate()?;
        if self.endpoints.len() + self.channels.len() > limits::ENDPOINTS_MAX {
            return Err(Error::InvalidOption {
                option: "endpoints",
                rule: format!("at most {} endpoints", limits::ENDPOINTS_MAX),
            });
        }
        let has_cluster = !self.endpoints.is_empty() || !self.channels.is_empty();
        let instance = match self.instance_id {
            Some(id) => InstanceId::parse(&id)?,
            None if has_cluster => return Err(Error::MissingInstanceId),
            None => InstanceId::parse("local")?,
        };
        let token = BearerToken::new(self.token.as_deref())?;
        let mut channels = self.channels;
        {
            // `connect_lazy` spawns the channel's worker: it needs the runtime entered.
            let _guard = handle.enter();
            for endpoint in &self.endpoints {
                channels.push((
                    endpoint.clone(),
                    lazy_channel(endpoint, &self.options, self.tls.as_ref())?,
                ));
            }
        }
        let clock = self.clock.unwrap_or_else(|| {
            let _guard = handle.enter();
            Arc::new(TokioClock::new())
        });
        let now_ms = clock.now_ms();
        let options = self.options;
        let published = Arc::new(Published::default());
        let tracing = options.tracing.then(|| {
            let tracer = self
                .tracer
                .unwrap_or_else(|| opentelemetry::global::tracer(crate::otel::TRACER_NAME));
            Arc::new(CallTracing::new(
                tracer,
                ModeSource::Client(Arc::clone(&published)),
            ))
        });
        let metrics = SdkMetrics::default();
        let config = AgentConfig {
            instance: instance.clone(),
            has_cluster,
            mode: options.modes,
            default_policy: options.default_policy.clone(),
            stripes: options.stripes,
            breakers_max: options.breakers_max,
            report_queue_max: options.report_queue_max,
            probe_permits_per_instance_max: options.probe_permits_per_instance_max,
            report_interval_ms: options.report_interval.as_millis() as u64,
        };
        let state = AgentState::new(config, now_ms, Arc::clone(&published), metrics.clone());
        let first_endpoint = crate::report_route::first_endpoint(instance.as_str(), channels.len());
        let shared = Arc::new(Shared {
            state: std::sync::Mutex::new(state),
            published,
            metrics,
            clock,
            coarse: CoarseClock::new(now_ms),
            rng: SmallRng::from_str_seed(instance.as_str()),
            options,
            instance,
            channels,
            report_ready: Notify::new(),
            report_endpoint: AtomicUsize::new(first_endpoint),
            leader_left_at_ms: AtomicU64::new(crate::agent::NEVER),
            token,
        });
        let (shutdown, _) = watch::channel(());
        agent::spawn(&shared, handle, &shutdown);
        Ok(Client {
            inner: Arc::new(ClientInner {
                shared,
                tracing,
                _shutdown: shutdown,
            }),
        })
    }
}

fn lazy_channel(
    endpoint: &str,
    options: &ClientOptions,
    tls: Option<&ClientTls>,
) -> Result<Channel, Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let uri = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("{scheme}://{endpoint}")
    };
    let invalid = |reason: String| Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let mut ep = Endpoint::from_shared(uri).map_err(|e| invalid(e.to_string()))?;
    if let Some(tls) = tls {
        ep = ep
            .tls_config(tls.config.clone())
            .map_err(|e| invalid(format!("TLS settings unusable: {e}")))?;
    }
    // No per-request `timeout` on the endpoint: it would cut the long-lived watch stream.
    // Unary calls are bounded by `rpc_timeout` where they are made.
    Ok(ep
        .connect_timeout(options.rpc_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

#[derive(Debug)]
struct ClientInner {
    shared: Arc<Shared>,
    /// What every breaker handle of a client built with tracing gets.
    tracing: Option<Arc<CallTracing>>,
    /// Dropping the sender (with the last client clone) stops the agent tasks.
    _shutdown: watch::Sender<()>,
}

/// A Switchyard client: hands out [`Breaker`]s and runs the background agent. Cheap to
/// clone; the agent stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// A snapshot of the client's health counters, for dashboards and examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    /// The mode in force.
    pub mode: Mode,
    /// The applied index of the decisions in force.
    pub applied_index: u64,
    /// Reports waiting to be sent.
    pub reports_queued: usize,
    /// Reports acknowledged.
    pub reports_sent: u64,
    /// Reports dropped because the queue was full.
    pub reports_dropped: u64,
    /// Deltas inside dropped reports.
    pub report_deltas_dropped: u64,
    /// Watch streams reopened.
    pub watch_reconnects: u64,
    /// Reports the cluster refused at a limit (`RESOURCE_EXHAUSTED`; they stay queued).
    pub reports_refused: u64,
    /// The report interval in force, ms: the configured one, or wider when the cluster asks
    /// for it (back-pressure) or refuses reports.
    pub report_interval_ms: u64,
}

impl Client {
    /// A builder with the default options.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client with no cluster: every breaker is judged by its local breaker alone
    /// (always [`Mode::LocalOnly`]). Must be called inside a tokio runtime.
    pub fn local_only() -> Result<Client, Error> {
        Client::builder().build()
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The breaker for `key` (`scope/name`), created on first use.
    pub fn breaker(&self, key: &str) -> Result<Breaker, Error> {
        let key = BreakerKey::parse(key)?;
        let shared = self.shared().lock().breaker(&key, None)?;
        Ok(Breaker::from_shared(shared).with_tracing(self.inner.tracing.clone()))
    }

    /// The breaker for `key`, whose local breaker uses `policy` until the cluster sends
    /// one (ignored if the breaker already exists).
    pub fn breaker_with_policy(&self, key: &str, policy: Policy) -> Result<Breaker, Error> {
        policy.validate()?;
        let key = BreakerKey::parse(key)?;
        let shared = self.shared().lock().breaker(&key, Some(policy))?;
        Ok(Breaker::from_shared(shared).with_tracing(self.inner.tracing.clone()))
    }

    /// The fail-static mode in force.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.shared().published.mode.load(Relaxed))
    }

    /// The applied index of the decisions in force (0 before the first).
    pub fn applied_index(&self) -> u64 {
        self.shared().published.applied_index.load(Relaxed)
    }

    /// This client's instance id.
    pub fn instance_id(&self) -> &str {
        self.shared().instance.as_str()
    }

    /// The tier of `scope` from the last decisions; [`Tier::Full`] when unknown.
    pub fn tier(&self, scope: &str) -> Tier {
        let scopes = self
            .shared()
            .published
            .scopes
            .read()
            .unwrap_or_else(|e| e.into_inner());
        scopes.get(scope).map_or(Tier::Full, |s| s.tier)
    }

    /// Whether feature `name` of `scope` is on at its current tier. A feature the cluster
    /// does not know is on (a scope without decisions is at FULL).
    pub fn feature_enabled(&self, scope: &str, name: &str) -> bool {
        let scopes = self
            .shared()
            .published
            .scopes
            .read()
            .unwrap_or_else(|e| e.into_inner());
        scopes
            .get(scope)
            .and_then(|s| s.features.get(name).copied())
            .unwrap_or(true)
    }

    /// Everything known about `scope`, if the cluster sent it.
    pub fn scope_info(&self, scope: &str) -> Option<ScopeInfo> {
        let scopes = self
            .shared()
            .published
            .scopes
            .read()
            .unwrap_or_else(|e| e.into_inner());
        scopes.get(scope).cloned()
    }

    /// The coarse clock the agent advances every tick (for [`RetryBudget`]).
    pub fn coarse_clock(&self) -> CoarseClock {
        self.shared().coarse.clone()
    }

    /// A retry budget following this client's coarse clock. Used through a breaker (as
    /// [`crate::Guard`] does), it is the fleet retry budget while the cluster's figures for the
    /// breaker are fresh, and this process's own budget otherwise (see [`RetryBudget`]).
    pub fn retry_budget(&self, options: RetryBudgetOptions) -> Arc<RetryBudget> {
        Arc::new(RetryBudget::new(options, self.coarse_clock()))
    }

    /// A retry policy of `attempts_max` attempts under `budget`, with jitter seeded from
    /// the instance id.
    pub fn retry(&self, attempts_max: u32, budget: Arc<RetryBudget>) -> Retry {
        let seed = self.shared().rng.next_u64();
        Retry::new(attempts_max, budget, Arc::new(SmallRng::new(seed)))
    }

    /// Registers the SDK's metrics (`switchyard_sdk_*`) in `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.shared().metrics.register(registry);
    }

    /// The SDK's metrics.
    pub fn metrics(&self) -> &SdkMetrics {
        &self.shared().metrics
    }

    /// Health counters at a glance.
    pub fn stats(&self) -> ClientStats {
        let m = &self.shared().metrics;
        let (reports_queued, report_interval_ms) = {
            let state = self.shared().lock();
            (state.reports.len(), state.report_interval_ms())
        };
        ClientStats {
            mode: self.mode(),
            applied_index: self.applied_index(),
            reports_queued,
            reports_sent: m.reports_sent.get(),
            reports_dropped: m.reports_dropped.get(),
            report_deltas_dropped: m.report_deltas_dropped.get(),
            watch_reconnects: m.watch_reconnects.get(),
            reports_refused: m.reports_refused.get(),
            report_interval_ms,
        }
    }
}

#[cfg(test)]
#[path = "client_test.rs"]
mod tests;
