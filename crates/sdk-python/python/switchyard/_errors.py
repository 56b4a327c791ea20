"""The exceptions of the Switchyard SDK (raised by the native module too)."""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional


class SwitchyardError(Exception):
    """Base class of every error raised by Switchyard itself."""


class Rejected(SwitchyardError):
    """A call the breaker (or a bulkhead) did not admit; it was not attempted.

    ``key`` is the breaker key (or the bulkhead's name), ``state`` the breaker state this
    process saw, ``reason`` why: ``cluster_open``, ``forced_open``, ``local_open``,
    ``half_open_no_permit`` or ``bulkhead``.
    """

    def __init__(self, message: str, key: str, state: str, reason: str) -> None:
        super().__init__(message)
        self.key = key
        self.state = state
        self.reason = reason

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.key, self.state, self.reason))


class Timeout(SwitchyardError, TimeoutError):
    """A guarded async call took longer than its ``timeout_s`` (counted as a failure)."""

    def __init__(self, message: str, key: str, timeout_s: float) -> None:
        super().__init__(message)
        self.key = key
        self.timeout_s = timeout_s


class Attempt(NamedTuple):
    """One step of a fallback chain and what became of it."""

    name: str
    #: ``"ok"``, ``"rejected"`` (skipped: breaker open) or ``"failed"``.
    outcome: str
    error: Optional[BaseException]


class FallbackError(SwitchyardError):
    """Every step of a fallback chain was skipped or failed; ``attempts`` lists them all."""

    def __init__(self, attempts: List[Attempt]) -> None:
        listed = "; ".join(
            f"{a.name}: {a.outcome}" + (f" ({a.error!r})" if a.error is not None else "")
            for a in attempts
        )
        super().__init__(f"every fallback step failed: {listed}")
        self.attempts = attempts
