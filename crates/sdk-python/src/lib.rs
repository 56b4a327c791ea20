//! `switchyard._switchyard`: the native half of the Python SDK.
//!
//! Every decision is made by the Rust SDK (`switchyard-sdk`): the hot path, the agent, the
//! fail-static modes, the local breaker, the retry budget, the bulkhead. This crate only
//! converts between Python and Rust values, and owns what only a binding has to care about:
//!
//! - a tokio runtime per client, on which the SDK's agent runs (one worker thread);
//! - `fork()`: a child process inherits the parent's memory but not its threads, so the
//!   agent is gone in the child. Python tells us about every fork (`os.register_at_fork`
//!   calls [`after_fork_in_child`]); each client then either builds a fresh agent in the
//!   child on first use, or raises a clear error (`on_fork="raise"`). The parent's runtime
//!   is leaked in the child, never dropped: dropping it would join threads that do not exist;
//! - the GIL: the hot path (`allow`, `record`) is a few atomic operations and keeps it;
//!   anything that may wait on a lock the agent holds (creating a breaker, `stats()`) runs
//!   with the GIL released.
//!
//! ```text
//!   Python: Client ─ breaker(key) ─▶ Breaker ─ allow() ─▶ Permit ─ record(ok)
//!              │                        │                    │
//!   Rust:   _Client (runtime + agent) _Breaker (sdk::Breaker) Permit (sdk::Permit; Drop releases)
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

mod breaker;
mod client;
mod kit;

/// Bumped in the child after every `fork()`: a client or breaker built under another
/// generation belongs to the parent's agent.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Relaxed)
}

/// Called by `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Relaxed);
}

/// The exception classes, defined in Python (`switchyard/_errors.py`) so that they carry
/// ordinary attributes and pickle like any Python exception.
struct Errors {
    base: Py<PyType>,
    rejected: Py<PyType>,
}

static ERRORS: PyOnceLock<Errors> = PyOnceLock::new();

fn errors(py: Python<'_>) -> PyResult<&Errors> {
    ERRORS.get_or_try_init(py, || {
        let module = py.import("switchyard._errors")?;
        Ok(Errors {
            base: module
                .getattr("SwitchyardError")?
                .cast_into::<PyType>()?
                .unbind(),
            rejected: module.getattr("Rejected")?.cast_into::<PyType>()?.unbind(),
        })
    })
}

/// A `switchyard.SwitchyardError` with `message`.
pub(crate) fn switchyard_error(py: Python<'_>, message: String) -> PyErr {
    match errors(py) {
        Ok(e) => PyErr::from_type(e.base.bind(py).clone(), message),
        Err(err) => err,
    }
}

/// A `switchyard.Rejected(message, key, state, reason)`.
pub(crate) fn rejected_error(
    py: Python<'_>,
    key: &str,
    state: &'static str,
    reason: &'static str,
) -> PyErr {
    let message = format!("call to `{key}` rejected: {reason} (breaker {state})");
    match errors(py) {
        Ok(e) => PyErr::from_type(
            e.rejected.bind(py).clone(),
            (message, key.to_owned(), state, reason),
        ),
        Err(err) => err,
    }
}

/// Maps an SDK error: bad input is a `ValueError` naming the argument; the rest is a
/// `SwitchyardError`.
pub(crate) fn sdk_error(py: Python<'_>, err: switchyard_sdk::Error) -> PyErr {
    use switchyard_sdk::Error as E;
    match err {
        E::Invalid(_) | E::InvalidEndpoint { .. } | E::InvalidOption { .. } => {
            PyValueError::new_err(err.to_string())
        }
        E::MissingInstanceId => PyValueError::new_err(
            "instance_id: required with endpoints (e.g. the pod or host name)",
        ),
        other => switchyard_error(py, other.to_string()),
    }
}

/// `value` must be a callable, or a `TypeError` names `argument`.
pub(crate) fn check_callable(value: &Bound<'_, PyAny>, argument: &str) -> PyResult<()> {
    if value.is_callable() {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "{argument}: must be callable, got {}",
            value.get_type().name()?
        )))
    }
}

/// The snake_case name of a breaker state, as Python sees it (and as spans show it).
pub(crate) fn state_name(state: switchyard_core::BreakerState) -> &'static str {
    switchyard_sdk::otel::state_label(state)
}

#[pymodule]
fn _switchyard(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(after_fork_in_child, m)?)?;
    m.add_class::<client::Client>()?;
    m.add_class::<breaker::Breaker>()?;
    m.add_class::<breaker::Permit>()?;
    m.add_class::<kit::Bulkhead>()?;
    m.add_class::<kit::BulkheadSlot>()?;
    m.add_class::<kit::RetryBudget>()?;
    m.add_class::<kit::Retry>()?;
    m.add(
        "BREAKER_KEY_MAX_BYTES",
        switchyard_core::BREAKER_KEY_MAX_BYTES,
    )?;
    m.add("RETRY_ATTEMPTS_MAX", switchyard_sdk::RETRY_ATTEMPTS_MAX)?;
    // Span and attribute names: the Rust SDK's, so both SDKs' spans read the same.
    {
        use switchyard_sdk::otel::{SPAN_CALL, SPAN_FALLBACK, TRACER_NAME, attr, decision};
        m.add("TRACER_NAME", TRACER_NAME)?;
        m.add("SPAN_CALL", SPAN_CALL)?;
        m.add("SPAN_FALLBACK", SPAN_FALLBACK)?;
        m.add("ATTR_KEY", attr::KEY)?;
        m.add("ATTR_DECISION", attr::DECISION)?;
        m.add("ATTR_REJECT_REASON", attr::REJECT_REASON)?;
        m.add("ATTR_PERMIT", attr::PERMIT)?;
        m.add("ATTR_STATE", attr::STATE)?;
        m.add("ATTR_MODE", attr::MODE)?;
        m.add("ATTR_OUTCOME", attr::OUTCOME)?;
        m.add("ATTR_FALLBACK_STEP", attr::FALLBACK_STEP)?;
        m.add("ATTR_FALLBACK_DECIDED_BY", attr::FALLBACK_DECIDED_BY)?;
        m.add("ATTR_FALLBACK_STEPS_TRIED", attr::FALLBACK_STEPS_TRIED)?;
        m.add("DECISION_REJECTED", decision::REJECTED)?;
    }
    Ok(())
}
