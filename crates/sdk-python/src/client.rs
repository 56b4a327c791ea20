//! `_Client`: one SDK client, its tokio runtime, and what happens to both across `fork()`.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tokio::runtime::Runtime;

use crate::kit::{Retry, RetryBudget, budget_options, check_attempts};
use crate::{fork_generation, sdk_error, switchyard_error};

/// What a client does when it is first used in a child process after `fork()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnFork {
    /// Build a fresh agent (and runtime) in the child, with the child's own instance id.
    Restart,
    /// Raise `SwitchyardError`: the child must create its own client.
    Raise,
}

/// Everything needed to build the SDK client again (in a child after `fork()`).
#[derive(Debug, Clone)]
struct Config {
    endpoints: Vec<String>,
    /// `None`: derived from the host name and the process id (so each process differs).
    instance_id: Option<String>,
    token: Option<String>,
    report_interval: Duration,
    stale_after: Duration,
    fallback_after: Duration,
    /// The Rust SDK records OpenTelemetry spans (`ClientBuilder::tracing`); the Python layer
    /// adds its own around what the SDK decided.
    tracing: bool,
}

impl Config {
    fn instance_id(&self, forked: bool) -> String {
        let pid = std::process::id();
        match &self.instance_id {
            Some(id) if forked => format!("{id}-{pid}"),
            Some(id) => id.clone(),
            None => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .or_else(|| std::env::var("HOSTNAME").ok())
                    .unwrap_or_default();
                let host: String = host
                    .trim()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    .take(100)
                    .collect();
                let host = if host.is_empty() { "python" } else { &host };
                format!("{host}-{pid}")
            }
        }
    }

    fn build(&self, forked: bool) -> Result<Live, switchyard_sdk::Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchyard-agent")
            .enable_all()
            .build()
            .map_err(|e| switchyard_sdk::Error::InvalidOption {
                option: "runtime",
                rule: format!("cannot start the agent's thread: {e}"),
            })?;
        let mut builder = switchyard_sdk::Client::builder()
            .report_interval(self.report_interval)
            .stale_after(self.stale_after)
            .fallback_after(self.fallback_after)
            .tracing(self.tracing)
            .endpoints(self.endpoints.iter().cloned())
            .instance_id(self.instance_id(forked));
        if let Some(token) = &self.token {
            builder = builder.token(token.clone());
        }
        let client = builder.build_on(runtime.handle())?;
        Ok(Live {
            generation: fork_generation(),
            client: Some(client),
            runtime: Some(runtime),
        })
    }
}

/// The SDK client of one process generation.
#[derive(Debug)]
struct Live {
    generation: u64,
    client: Option<switchyard_sdk::Client>,
    runtime: Option<Runtime>,
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.generation != fork_generation() {
            // A parent's agent, inherited by a child: its threads do not exist here. Dropping
            // the runtime would wait for them, so leak it (and the client that refers to it).
            std::mem::forget(self.client.take());
            std::mem::forget(self.runtime.take());
            return;
        }
        // Stop the agent first (the last client handle closes its shutdown channel), then
        // let the runtime wind down on its own thread: nothing here waits.
        drop(self.client.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The native client; `switchyard.Client` subclasses it.
#[pyclass(name = "_Client", module = "switchyard._switchyard", subclass, frozen)]
#[derive(Debug)]
pub(crate) struct Client {
    config: Config,
    on_fork: OnFork,
    live: Mutex<Option<Live>>,
    closed: std::sync::atomic::AtomicBool,
}

fn millis(name: &str, value: i64) -> PyResult<Duration> {
    u64::try_from(value)
        .map(Duration::from_millis)
        .map_err(|_| PyValueError::new_err(format!("{name}: must be ≥ 0 ms, got {value}")))
}

fn parse_endpoints(endpoints: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let Some(value) = endpoints.filter(|v| !v.is_none()) else {
        return Ok(std::env::var(switchyard_sdk::ENDPOINTS_ENV)
            .map(|v| split(&v))
            .unwrap_or_default());
    };
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(split(&s.to_cow()?));
    }
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| {
        PyTypeError::new_err("endpoints: must be a list of \"host:port\" or a comma-separated str")
    })? {
        let item = item?;
        let s = item.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err("endpoints: every endpoint must be a str \"host:port\"")
        })?;
        out.extend(split(&s.to_cow()?));
    }
    Ok(out)
}

impl Client {
    /// Whether this client records spans.
    pub(crate) fn tracing_on(&self) -> bool {
        self.config.tracing
    }

    /// The SDK client for this process: built again in a child after `fork()` (or an
    /// error, with `on_fork="raise"`).
    pub(crate) fn sdk(&self, py: Python<'_>) -> PyResult<switchyard_sdk::Client> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(switchyard_error(py, "this Client is closed".into()));
        }
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let generation = fork_generation();
        if let Some(l) = live.as_ref().filter(|l| l.generation == generation)
            && let Some(client) = &l.client
        {
            return Ok(client.clone());
        }
        if self.on_fork == OnFork::Raise {
            return Err(switchyard_error(
                py,
                "this Client was created before os.fork() and its agent does not run in this \
                 child process: create a new switchyard.Client in the child (or pass \
                 on_fork=\"restart\")"
                    .into(),
            ));
        }
        let fresh = self.config.build(true).map_err(|e| sdk_error(py, e))?;
        let client = fresh.client.clone();
        // The replaced `Live` belongs to the parent: its Drop leaks it.
        *live = Some(fresh);
        client.ok_or_else(|| switchyard_error(py, "this Client is closed".into()))
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        endpoints=None, instance_id=None, token=None, report_interval_ms=100,
        stale_after_ms=5000, fallback_after_ms=30000, *, on_fork="restart", tracing=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        endpoints: Option<&Bound<'_, PyAny>>,
        instance_id: Option<String>,
        token: Option<String>,
        report_interval_ms: i64,
        stale_after_ms: i64,
        fallback_after_ms: i64,
        on_fork: &str,
        tracing: bool,
    ) -> PyResult<Self> {
        let on_fork = match on_fork {
            "restart" => OnFork::Restart,
            "raise" => OnFork::Raise,
            other => {
                return Err(PyValueError::new_err(format!(
                    "on_fork: must be \"restart\" or \"raise\", got {other:?}"
                )));
            }
        };
        let token = token.or_else(|| {
            std::env::var(switchyard_sdk::CLIENT_TOKEN_ENV)
                .ok()
                .filter(|t| !t.trim().is_empty())
        });
        let config = Config {
            endpoints: parse_endpoints(endpoints)?,
            instance_id,
            token,
            report_interval: millis("report_interval_ms", report_interval_ms)?,
            stale_after: millis("stale_after_ms", stale_after_ms)?,
            fallback_after: millis("fallback_after_ms", fallback_after_ms)?,
            tracing,
        };
        if let Some(id) = &config.instance_id {
            switchyard_core::InstanceId::parse(id)
                .map_err(|e| PyValueError::new_err(format!("instance_id: {e}")))?;
        }
        let live = py
            .detach(|| config.build(false))
            .map_err(|e| sdk_error(py, e))?;
        Ok(Self {
            config,
            on_fork,
            live: Mutex::new(Some(live)),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Stops the agent. Breakers keep their last decisions; the client cannot be used again.
    fn close(&self, py: Python<'_>) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner()).take();
        py.detach(|| drop(live));
    }

    /// Whether guarded calls record OpenTelemetry spans.
    #[getter]
    fn tracing(&self) -> bool {
        self.config.tracing
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `"cluster"`, `"stale"` or `"local_only"`.
    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(self.sdk(py)?.mode().as_str())
    }

    #[getter]
    fn applied_index(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.sdk(py)?.applied_index())
    }

    #[getter]
    fn instance_id(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.sdk(py)?.instance_id().to_owned())
    }

    #[getter]
    fn endpoints(&self) -> Vec<String> {
        self.config.endpoints.clone()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let client = self.sdk(py)?;
        let s = py.detach(|| client.stats());
        let d = PyDict::new(py);
        d.set_item("mode", s.mode.as_str())?;
        d.set_item("applied_index", s.applied_index)?;
        d.set_item("reports_queued", s.reports_queued)?;
        d.set_item("reports_sent", s.reports_sent)?;
        d.set_item("reports_dropped", s.reports_dropped)?;
        d.set_item("report_deltas_dropped", s.report_deltas_dropped)?;
        d.set_item("watch_reconnects", s.watch_reconnects)?;
        Ok(d)
    }

    /// The tier of `scope` as an int 1..5 (the Python layer wraps it in `Tier`).
    fn _tier(&self, py: Python<'_>, scope: &str) -> PyResult<u8> {
        let client = self.sdk(py)?;
        Ok(py.detach(|| client.tier(scope)) as u8)
    }

    /// A retry budget following this client's clock (defaults of the Rust SDK: 20 % of calls,
    /// at least 10 retries per second, over 10 s).
    #[pyo3(signature = (retry_percent=20, min_retries_per_sec=10, ttl_s=10.0))]
    fn retry_budget(
        &self,
        py: Python<'_>,
        retry_percent: i64,
        min_retries_per_sec: i64,
        ttl_s: f64,
    ) -> PyResult<RetryBudget> {
        let options = budget_options(retry_percent, min_retries_per_sec, ttl_s)?;
        Ok(RetryBudget {
            inner: self.sdk(py)?.retry_budget(options),
        })
    }

    /// The native retry policy behind `client.retry(...)`.
    #[pyo3(signature = (attempts_max, budget=None))]
    fn _retry(
        &self,
        py: Python<'_>,
        attempts_max: i64,
        budget: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Retry> {
        let attempts_max = check_attempts(attempts_max)?;
        let sdk = self.sdk(py)?;
        let budget = match budget.filter(|b| !b.is_none()) {
            Some(b) => b
                .cast::<RetryBudget>()
                .map_err(|_| {
                    PyTypeError::new_err("budget: must be a RetryBudget from client.retry_budget()")
                })?
                .get()
                .inner
                .clone(),
            None => sdk.retry_budget(switchyard_sdk::RetryBudgetOptions::default()),
        };
        Ok(Retry {
            inner: sdk.retry(attempts_max, budget),
        })
    }

    fn feature_enabled(&self, py: Python<'_>, scope: &str, name: &str) -> PyResult<bool> {
        let client = self.sdk(py)?;
        Ok(py.detach(|| client.feature_enabled(scope, name)))
    }
}
