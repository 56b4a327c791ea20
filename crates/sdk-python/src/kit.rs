//! The resilience kit's native parts: the bulkhead and the retry budget with its jittered
//! backoff. The Python layer (`switchyard/_kit.py`) turns them into decorators and context
//! managers; every count and every decision stays here, in the Rust SDK.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::breaker::Breaker;
use crate::rejected_error;

/// A concurrency limit that rejects at once (`switchyard.Bulkhead` wraps it).
#[pyclass(
    name = "_Bulkhead",
    module = "switchyard._switchyard",
    subclass,
    frozen
)]
#[derive(Debug)]
pub(crate) struct Bulkhead {
    inner: switchyard_sdk::Bulkhead,
}

/// One admitted call of a bulkhead; its slot is freed when released or garbage-collected.
#[pyclass(name = "BulkheadSlot", module = "switchyard")]
#[derive(Debug)]
pub(crate) struct BulkheadSlot {
    permit: Option<switchyard_sdk::BulkheadPermit>,
}

#[pymethods]
impl BulkheadSlot {
    /// Frees the slot (idempotent).
    fn release(&mut self) {
        self.permit = None;
    }
}

#[pymethods]
impl Bulkhead {
    #[new]
    #[pyo3(signature = (max_concurrent, name="bulkhead"))]
    fn new(max_concurrent: i64, name: &str) -> PyResult<Self> {
        let limit = u32::try_from(max_concurrent)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "max_concurrent: must be an int ≥ 1, got {max_concurrent}"
                ))
            })?;
        Ok(Self {
            inner: switchyard_sdk::Bulkhead::new(name, limit),
        })
    }

    /// A slot, or raises `Rejected` (reason `"bulkhead"`) when `max_concurrent` calls run.
    fn acquire(&self, py: Python<'_>) -> PyResult<BulkheadSlot> {
        match self.inner.try_acquire() {
            Ok(permit) => Ok(BulkheadSlot {
                permit: Some(permit),
            }),
            Err(full) => Err(rejected_error(py, &full.name, "full", "bulkhead")),
        }
    }

    #[getter]
    fn max_concurrent(&self) -> u32 {
        self.inner.limit()
    }

    #[getter]
    fn in_flight(&self) -> u32 {
        self.inner.in_flight()
    }

    #[getter]
    fn rejected_total(&self) -> u64 {
        self.inner.rejected_total()
    }
}

/// A retry budget shared by the retries of many calls (`client.retry_budget(...)`).
#[pyclass(module = "switchyard", frozen)]
#[derive(Debug)]
pub(crate) struct RetryBudget {
    pub(crate) inner: Arc<switchyard_sdk::RetryBudget>,
}

#[pymethods]
impl RetryBudget {
    /// Retries the budget allows now (this process's own window).
    #[getter]
    fn balance(&self) -> i64 {
        self.inner.balance()
    }
}

/// `attempts_max` attempts under a retry budget, with exponential backoff and full jitter.
#[pyclass(name = "_Retry", module = "switchyard._switchyard", frozen)]
#[derive(Debug)]
pub(crate) struct Retry {
    pub(crate) inner: switchyard_sdk::Retry,
}

#[pymethods]
impl Retry {
    #[getter]
    fn attempts_max(&self) -> u32 {
        self.inner.attempts_max
    }

    /// Counts a first attempt: it earns the budget a fraction of a retry.
    #[pyo3(signature = (breaker=None))]
    fn deposit(&self, py: Python<'_>, breaker: Option<&Bound<'_, Breaker>>) -> PyResult<()> {
        match breaker {
            Some(b) => self.inner.budget.deposit_for(&b.get().sdk_breaker(py)?),
            None => self.inner.budget.deposit(),
        }
        Ok(())
    }

    /// Takes one retry from the budget (the fleet's, through a breaker, when it can).
    #[pyo3(signature = (breaker=None))]
    fn try_withdraw(&self, py: Python<'_>, breaker: Option<&Bound<'_, Breaker>>) -> PyResult<bool> {
        Ok(match breaker {
            Some(b) => self
                .inner
                .budget
                .try_withdraw_for(&b.get().sdk_breaker(py)?),
            None => self.inner.budget.try_withdraw(),
        })
    }

    /// The jittered delay before retry number `retry` (0 for the first retry), seconds.
    fn delay_s(&self, retry: u32) -> f64 {
        self.inner
            .backoff
            .delay(retry, &self.inner.rng)
            .as_secs_f64()
    }
}

pub(crate) fn budget_options(
    retry_percent: i64,
    min_retries_per_sec: i64,
    ttl_s: f64,
) -> PyResult<switchyard_sdk::RetryBudgetOptions> {
    let retry_percent = u32::try_from(retry_percent)
        .ok()
        .filter(|p| (1..=100).contains(p))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "retry_percent: must be between 1 and 100, got {retry_percent}"
            ))
        })?;
    let min_retries_per_sec = u32::try_from(min_retries_per_sec)
        .ok()
        .filter(|p| *p <= 10_000)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "min_retries_per_sec: must be between 0 and 10000, got {min_retries_per_sec}"
            ))
        })?;
    if !(ttl_s.is_finite() && (1.0..=600.0).contains(&ttl_s)) {
        return Err(PyValueError::new_err(format!(
            "ttl_s: must be between 1 and 600 seconds, got {ttl_s}"
        )));
    }
    Ok(switchyard_sdk::RetryBudgetOptions {
        ttl: Duration::from_secs_f64(ttl_s),
        min_retries_per_sec,
        retry_percent,
    })
}

pub(crate) fn check_attempts(attempts_max: i64) -> PyResult<u32> {
    u32::try_from(attempts_max)
        .ok()
        .filter(|n| (1..=switchyard_sdk::RETRY_ATTEMPTS_MAX).contains(n))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "attempts_max: must be between 1 and {}, got {attempts_max}",
                switchyard_sdk::RETRY_ATTEMPTS_MAX
            ))
        })
}
