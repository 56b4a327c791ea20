"""Switchyard for Python: circuit breakers whose state the whole fleet shares.

The Rust SDK does the work (``switchyard._switchyard``): ``allow()`` and ``record()`` are a
few atomic operations on local memory, a background agent reports to the cluster and
follows its decisions, and when the cluster is unreachable the SDK is fail-static. This
package adds the Python surface: decorators, context managers, ``async def``, exceptions.

    import switchyard

    client = switchyard.Client(endpoints="10.0.0.1:7070,10.0.0.2:7070")
    ml = client.breaker("payments/ml-fraud")

    @ml
    def score(tx): ...
"""

from __future__ import annotations

import os

from . import _switchyard
from ._client import Breaker, Client, Tier
from ._errors import Attempt, FallbackError, Rejected, SwitchyardError, Timeout
from ._kit import Bulkhead, Decided, Fallback, Retry
from ._switchyard import BulkheadSlot, Permit, RetryBudget

__all__ = [
    "Attempt",
    "Breaker",
    "Bulkhead",
    "BulkheadSlot",
    "Client",
    "Decided",
    "Fallback",
    "FallbackError",
    "Permit",
    "Rejected",
    "Retry",
    "RetryBudget",
    "SwitchyardError",
    "Tier",
    "Timeout",
]

# A forked child has the parent's memory but not its threads (the agent): tell the native
# module, so each client restarts its agent in the child (or raises, with on_fork="raise").
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_switchyard.after_fork_in_child)
