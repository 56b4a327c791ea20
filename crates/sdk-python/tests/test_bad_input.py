"""Bad input raises a clear exception naming the argument, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

import switchyard


@pytest.mark.parametrize(
    "key, match",
    [
        ("no-slash", "key: .*one '/'"),
        ("Upper/Case", "key:"),
        ("", "key: .*1 to"),
        ("a/b/c", "key: .*one '/'"),
    ],
)
def test_invalid_key_names_key(client: switchyard.Client, key: str, match: str) -> None:
    """An invalid breaker key is a ValueError that names `key` and the rule."""
    with pytest.raises(ValueError, match=match):
        client.breaker(key)


def test_non_str_key(client: switchyard.Client) -> None:
    """A key that is not a str is a TypeError naming `key`."""
    with pytest.raises(TypeError, match="key: must be a str"):
        client.breaker(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "policy, match",
    [
        ({"failure_rate_threshold": 0}, "policy: .*failure_rate_threshold"),
        ({"failure_rate_threshold": 101}, "policy: .*failure_rate_threshold"),
        ({"min_calls": -1}, "policy: `min_calls`: invalid value: integer `-1`"),
        ({"no_such_field": 1}, "policy: `no_such_field`: unknown field"),
        ({"probe_permits": "three"}, "policy: `probe_permits`: invalid type"),
    ],
)
def test_policy_out_of_range(client: switchyard.Client, policy: Any, match: str) -> None:
    """A policy value out of range or unknown is a ValueError naming the field."""
    with pytest.raises(ValueError, match=match):
        client.breaker("svc/dep", policy=policy)


def test_policy_not_a_dict(client: switchyard.Client) -> None:
    with pytest.raises(TypeError, match="policy: must be a dict"):
        client.breaker("svc/dep", policy=[1, 2])  # type: ignore[arg-type]


def test_non_callable_failure(client: switchyard.Client) -> None:
    """failure= must be callable: the TypeError names `failure`."""
    with pytest.raises(TypeError, match="failure: must be callable, got int"):
        client.breaker("svc/dep", failure=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"report_interval_ms": 1}, ValueError, "report_interval"),
        ({"report_interval_ms": -5}, ValueError, "report_interval_ms: must be ≥ 0"),
        ({"stale_after_ms": 40000}, ValueError, "stale_after"),
        ({"instance_id": "bad id!"}, ValueError, "instance_id: .*instance"),
        ({"endpoints": 12}, TypeError, "endpoints: must be"),
        ({"endpoints": ["ok:1", 2]}, TypeError, "endpoints: every endpoint must be a str"),
        ({"endpoints": ["a b c"], "instance_id": "x"}, ValueError, "invalid endpoint `a b c`"),
        ({"on_fork": "ignore"}, ValueError, "on_fork: must be"),
    ],
)
def test_bad_client_arguments(kwargs: Any, exc: type, match: str) -> None:
    """Each bad Client argument raises an exception naming it."""
    with pytest.raises(exc, match=match):
        switchyard.Client(**kwargs)


def test_bad_record_and_kit_arguments(client: switchyard.Client) -> None:
    p = client.breaker("svc/dep").allow()
    with pytest.raises(ValueError, match="latency_s: must be a finite number"):
        p.record(True, latency_s=-1.0)
    with pytest.raises(ValueError, match="latency_s"):
        p.record(True, latency_s=float("nan"))
    assert p.pending, "a refused record changes nothing"
    p.record(True)
    with pytest.raises(ValueError, match="max_concurrent: must be an int ≥ 1"):
        switchyard.Bulkhead(0)
    with pytest.raises(ValueError, match="attempts_max: must be between 1 and 10"):
        client.retry(0)
    with pytest.raises(ValueError, match="retry_percent"):
        client.retry_budget(retry_percent=0)
    with pytest.raises(TypeError, match="steps\\[1\\]: must be callable"):
        switchyard.Fallback([lambda: 1, 5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="steps: must not be empty"):
        switchyard.Fallback([])
