//! `_Breaker` and `Permit`: the hot path, one SDK call each, with the GIL held (a few
//! atomic operations: releasing the GIL would cost more than the work).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use switchyard_sdk::otel::decision;
use switchyard_sdk::{Outcome, Policy};

use crate::client::Client;
use crate::{
    check_callable, fork_generation, rejected_error, sdk_error, state_name, switchyard_error,
};

/// The native breaker; `switchyard.Breaker` subclasses it.
#[pyclass(name = "_Breaker", module = "switchyard._switchyard", subclass, frozen)]
#[derive(Debug)]
pub(crate) struct Breaker {
    client: Py<Client>,
    key: String,
    policy: Option<Policy>,
    failure: Option<Py<PyAny>>,
    generation: u64,
    breaker: switchyard_sdk::Breaker,
    /// The breaker of the child's own agent, after a `fork()`.
    forked: Mutex<Option<(u64, switchyard_sdk::Breaker)>>,
}

fn parse_policy(py: Python<'_>, policy: &Bound<'_, PyAny>) -> PyResult<Policy> {
    if !policy.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "policy: must be a dict of policy fields, got {}",
            policy.get_type().name()?
        )));
    }
    let dumps = py.import("json")?.getattr("dumps")?;
    let json: String = dumps.call1((policy,))?.extract()?;
    let policy: Policy = match serde_json::from_str(&json) {
        Ok(p) => p,
        Err(e) => {
            // serde names unknown fields but not the field of a wrong value: find it by
            // parsing each field alone.
            let dict = policy.cast::<PyDict>()?;
            for (field, value) in dict.iter() {
                let one = PyDict::new(py);
                one.set_item(&field, value)?;
                let json: String = dumps.call1((one,))?.extract()?;
                if let Err(e) = serde_json::from_str::<Policy>(&json) {
                    return Err(PyValueError::new_err(format!(
                        "policy: `{field}`: {}",
                        without_position(&e)
                    )));
                }
            }
            return Err(PyValueError::new_err(format!(
                "policy: {}",
                without_position(&e)
            )));
        }
    };
    policy
        .validate()
        .map_err(|e| PyValueError::new_err(format!("policy: {e}")))?;
    Ok(policy)
}

/// A serde error without its " at line 1 column 9" (the JSON is ours, not the user's).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn make(
    py: Python<'_>,
    client: &Client,
    key: &str,
    policy: Option<&Policy>,
) -> PyResult<switchyard_sdk::Breaker> {
    let sdk = client.sdk(py)?;
    py.detach(|| match policy {
        Some(p) => sdk.breaker_with_policy(key, p.clone()),
        None => sdk.breaker(key),
    })
    .map_err(|e| sdk_error(py, e))
}

impl Breaker {
    /// The SDK breaker of this process (the child's own after a `fork()`).
    fn current(&self, py: Python<'_>) -> PyResult<switchyard_sdk::Breaker> {
        let generation = fork_generation();
        let mut forked = self.forked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, b)) = forked.as_ref()
            && *g == generation
        {
            return Ok(b.clone());
        }
        let b = make(py, self.client.get(), &self.key, self.policy.as_ref())?;
        *forked = Some((generation, b.clone()));
        Ok(b)
    }

    fn allow_on(&self, py: Python<'_>, b: &switchyard_sdk::Breaker) -> PyResult<Permit> {
        match b.allow() {
            Ok(permit) => Ok(Permit {
                decision: if permit.is_probe() {
                    decision::PROBE
                } else {
                    decision::ADMITTED
                },
                breaker: b.clone(),
                permit: Some(permit),
                start: Instant::now(),
                failure: self.failure.as_ref().map(|f| f.clone_ref(py)),
                outcome: None,
            }),
            Err(rejected) => Err(rejected_error(
                py,
                &self.key,
                state_name(b.state()),
                rejected.reason.as_str(),
            )),
        }
    }

    /// The SDK breaker of this process.
    pub(crate) fn sdk_breaker(&self, py: Python<'_>) -> PyResult<switchyard_sdk::Breaker> {
        self.with_current(py, |b| Ok(b.clone()))
    }

    fn with_current<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&switchyard_sdk::Breaker) -> PyResult<T>,
    ) -> PyResult<T> {
        if self.generation == fork_generation() {
            f(&self.breaker)
        } else {
            f(&self.current(py)?)
        }
    }
}

/// Whether `exc` counts as a dependency failure under `failure` (default: any exception).
/// A classifier that raises counts the call as failed: the error is the dependency's.
fn classify(py: Python<'_>, failure: Option<&Py<PyAny>>, exc: &Bound<'_, PyAny>) -> Outcome {
    match failure {
        None => Outcome::Failure,
        Some(f) => match f.bind(py).call1((exc,)).and_then(|v| v.is_truthy()) {
            Ok(true) | Err(_) => Outcome::Failure,
            Ok(false) => Outcome::Success,
        },
    }
}

#[pymethods]
impl Breaker {
    #[new]
    #[pyo3(signature = (client, key, policy=None, failure=None))]
    fn new(
        py: Python<'_>,
        client: Bound<'_, Client>,
        key: &Bound<'_, PyAny>,
        policy: Option<&Bound<'_, PyAny>>,
        failure: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let key: String = key.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "key: must be a str \"scope/name\", got {}",
                key.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        switchyard_core::BreakerKey::parse(&key)
            .map_err(|e| PyValueError::new_err(format!("key: {e}")))?;
        let policy = match policy.filter(|p| !p.is_none()) {
            Some(p) => Some(parse_policy(py, p)?),
            None => None,
        };
        let failure = match failure.filter(|f| !f.is_none()) {
            Some(f) => {
                check_callable(&f, "failure")?;
                Some(f.unbind())
            }
            None => None,
        };
        let breaker = make(py, client.get(), &key, policy.as_ref())?;
        Ok(Self {
            client: client.unbind(),
            key,
            policy,
            failure,
            generation: fork_generation(),
            breaker,
            forked: Mutex::new(None),
        })
    }

    /// The breaker key, `scope/name`.
    #[getter]
    fn key(&self) -> &str {
        &self.key
    }

    /// The classifier given as `failure`, or None.
    #[getter]
    fn failure(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.failure.as_ref().map(|f| f.clone_ref(py))
    }

    /// The state this process sees: closed, open, half_open, forced_open, forced_closed,
    /// disabled or metrics_only.
    #[getter]
    fn state(&self, py: Python<'_>) -> PyResult<&'static str> {
        self.with_current(py, |b| Ok(state_name(b.state())))
    }

    #[getter]
    fn applied_index(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_current(py, |b| Ok(b.applied_index()))
    }

    /// Whether this breaker's client records spans (`Client(tracing=True)`).
    #[getter]
    fn _tracing(&self) -> bool {
        self.client.get().tracing_on()
    }

    /// The SDK mode of this breaker's client: `cluster`, `stale` or `local_only`.
    #[getter]
    fn _mode(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(self.client.get().sdk(py)?.mode().as_str())
    }

    /// A `Permit` for one call, or raises `Rejected`.
    fn allow(&self, py: Python<'_>) -> PyResult<Permit> {
        if self.generation == fork_generation() {
            self.allow_on(py, &self.breaker)
        } else {
            self.allow_on(py, &self.current(py)?)
        }
    }

    /// Whether `exc` counts as a dependency failure for this breaker.
    fn is_failure(&self, py: Python<'_>, exc: &Bound<'_, PyAny>) -> bool {
        classify(py, self.failure.as_ref(), exc) == Outcome::Failure
    }

    /// The guarded sync call: allow, call `fn(*args, **kwargs)`, classify, record with the
    /// measured latency. `BaseException`s that are not `Exception`s (KeyboardInterrupt,
    /// SystemExit) say nothing about the dependency: the permit is released unused.
    #[pyo3(signature = (func, args, kwargs=None))]
    fn _call<'py>(
        &self,
        py: Python<'py>,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.with_current(py, |b| {
            let permit = match b.allow() {
                Ok(p) => p,
                Err(r) => {
                    return Err(rejected_error(
                        py,
                        &self.key,
                        state_name(b.state()),
                        r.reason.as_str(),
                    ));
                }
            };
            let start = Instant::now();
            let result = func.call(args, kwargs);
            let latency = start.elapsed();
            match &result {
                Ok(_) => b.record(permit, Outcome::Success, latency),
                Err(err) if err.is_instance_of::<PyException>(py) => {
                    let outcome = classify(py, self.failure.as_ref(), err.value(py).as_any());
                    b.record(permit, outcome, latency);
                }
                Err(_) => b.release_unused(permit),
            }
            result
        })
    }
}

/// Permission for one call. `record(ok)` hands it back. A permit dropped or garbage-collected
/// unrecorded drops the SDK permit it holds, which gives a half-open probe token back to its
/// breaker at once (the SDK's `Permit` does that in its `Drop`): a probe is never leaked.
#[pyclass(module = "switchyard")]
#[derive(Debug)]
pub(crate) struct Permit {
    breaker: switchyard_sdk::Breaker,
    permit: Option<switchyard_sdk::Permit>,
    start: Instant,
    failure: Option<Py<PyAny>>,
    /// `admitted` or `probe` (the span attribute's value).
    decision: &'static str,
    /// What became of it: `success` / `failure` once recorded, `released` once handed back.
    outcome: Option<&'static str>,
}

impl Permit {
    fn record_outcome(
        &mut self,
        permit: switchyard_sdk::Permit,
        outcome: Outcome,
        latency: Duration,
    ) {
        self.breaker.record(permit, outcome, latency);
        self.outcome = Some(match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        });
    }

    fn release_permit(&mut self, permit: switchyard_sdk::Permit) {
        self.breaker.release_unused(permit);
        self.outcome = Some("released");
    }

    fn take(&mut self, py: Python<'_>) -> PyResult<switchyard_sdk::Permit> {
        self.permit.take().ok_or_else(|| {
            switchyard_error(
                py,
                format!(
                    "this permit of `{}` was already recorded or released",
                    self.breaker.key()
                ),
            )
        })
    }
}

#[pymethods]
impl Permit {
    /// Records the call's outcome. `latency_s` defaults to the time since `allow()`.
    #[pyo3(signature = (ok, latency_s=None))]
    fn record(
        &mut self,
        py: Python<'_>,
        ok: &Bound<'_, PyAny>,
        latency_s: Option<f64>,
    ) -> PyResult<()> {
        let ok = ok
            .extract::<bool>()
            .map_err(|_| PyTypeError::new_err("ok: must be a bool"))?;
        let latency = match latency_s {
            None => self.start.elapsed(),
            Some(s) if s.is_finite() && s >= 0.0 => {
                Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
            }
            Some(s) => {
                return Err(PyValueError::new_err(format!(
                    "latency_s: must be a finite number of seconds ≥ 0, got {s}"
                )));
            }
        };
        let permit = self.take(py)?;
        self.record_outcome(permit, Outcome::failure_if(!ok), latency);
        Ok(())
    }

    /// Hands the permit back without a call (the call was not made).
    fn release(&mut self, py: Python<'_>) -> PyResult<()> {
        let permit = self.take(py)?;
        self.release_permit(permit);
        Ok(())
    }

    /// True for a half-open trial call (a probe permit).
    #[getter]
    fn is_probe(&self) -> bool {
        self.permit.as_ref().is_some_and(|p| p.is_probe())
    }

    /// `"normal"`, `"cluster_probe"` or `"local_probe"`; `None` once recorded.
    #[getter]
    fn kind(&self) -> Option<&'static str> {
        self.permit.as_ref().map(|p| p.kind().as_str())
    }

    #[getter]
    fn key(&self) -> &str {
        self.breaker.key()
    }

    /// True until recorded or released.
    #[getter]
    fn pending(&self) -> bool {
        self.permit.is_some()
    }

    /// `"admitted"` or `"probe"`: what the breaker decided for this call.
    #[getter]
    fn decision(&self) -> &'static str {
        self.decision
    }

    /// `"success"` or `"failure"` once recorded, `"released"` once handed back unused;
    /// `None` while pending.
    #[getter]
    fn outcome(&self) -> Option<&'static str> {
        self.outcome
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Records on leaving a `with` block: success, or the exception classified by the
    /// breaker's `failure`. A BaseException that is not an Exception releases the permit.
    fn __exit__(
        &mut self,
        py: Python<'_>,
        _ty: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let Some(permit) = self.permit.take() else {
            return Ok(false);
        };
        let latency = self.start.elapsed();
        if exc.is_none() {
            self.record_outcome(permit, Outcome::Success, latency);
        } else if exc.is_instance_of::<PyException>() {
            let outcome = classify(py, self.failure.as_ref(), exc);
            self.record_outcome(permit, outcome, latency);
        } else {
            self.release_permit(permit);
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<switchyard.Permit key={:?} kind={}>",
            self.breaker.key(),
            self.kind().unwrap_or("done")
        )
    }
}
