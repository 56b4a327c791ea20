"""``Client`` and ``Breaker``: thin Python subclasses of the native types.

The native types do the work; these add what makes them feel like Python: the breaker as a
decorator for ``def`` and ``async def``, ``with`` / ``async with`` blocks, ``Tier`` as an
``IntEnum``. Every decision (admit, reject, count) is the Rust SDK's.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import inspect
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Mapping,
    TYPE_CHECKING,
    Optional,
    Tuple,
    Type,
    TypeVar,
    cast,
)

from . import _otel
from ._errors import Timeout

if TYPE_CHECKING:
    from ._kit import Retry
from ._switchyard import Permit, RetryBudget, _Breaker, _Client

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Tier(enum.IntEnum):
    """The service tier of a scope, best first."""

    FULL = 1
    DEGRADED = 2
    ESSENTIAL = 3
    READ_ONLY = 4
    MAINTENANCE = 5


# The permits of `with breaker:` blocks in progress, per thread and per asyncio task (a
# context variable: each task and each thread sees its own). Immutable tuples: a task that
# inherits its parent's context never mutates the parent's entries.
_Held = Tuple[int, Permit, "Optional[_otel.CallSpan]"]
_held: contextvars.ContextVar[Tuple[_Held, ...]] = contextvars.ContextVar(
    "switchyard_held_permits", default=()
)


def _push(owner: object, permit: Permit, span: "Optional[_otel.CallSpan]" = None) -> None:
    _held.set(_held.get() + ((id(owner), permit, span),))


def _pop(owner: object) -> "Tuple[Optional[Permit], Optional[_otel.CallSpan]]":
    stack = _held.get()
    for i in range(len(stack) - 1, -1, -1):
        if stack[i][0] == id(owner):
            _held.set(stack[:i] + stack[i + 1 :])
            return stack[i][1], stack[i][2]
    return None, None


class Breaker(_Breaker):
    """One breaker; get it with ``client.breaker(key)``.

    - ``allow()`` returns a ``Permit`` or raises ``Rejected``; ``permit.record(ok)``.
    - ``@breaker`` guards a ``def`` or ``async def``: allow, call, classify the exception with
      ``failure`` (default: any exception is a failure), record with the measured latency.
    - ``with breaker:`` / ``async with breaker:`` do the same for a block.
    """

    __slots__ = ()

    def __call__(self, func: F) -> F:
        return self.guard()(func)

    def guard(self, timeout_s: Optional[float] = None) -> Callable[[F], F]:
        """A decorator; ``timeout_s`` bounds each call of an ``async def`` (a timed-out call
        counts as a failure and raises ``switchyard.Timeout``)."""
        if timeout_s is not None and not (timeout_s > 0):
            raise ValueError(f"timeout_s: must be > 0 seconds, got {timeout_s!r}")

        def decorate(func: F) -> F:
            if not callable(func):
                raise TypeError(f"func: must be callable, got {type(func).__name__}")
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                    return await self.acall(func, *args, timeout_s=timeout_s, **kwargs)

                return cast(F, guarded_async)
            if timeout_s is not None:
                raise TypeError("timeout_s: only async def functions can be timed out")
            if _otel.traced(self):

                @functools.wraps(func)
                def guarded_traced(*args: Any, **kwargs: Any) -> Any:
                    return _otel.call(self, func, args, kwargs)

                return cast(F, guarded_traced)
            call = self._call

            @functools.wraps(func)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                return call(func, args, kwargs)

            return cast(F, guarded)

        return decorate

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Calls ``func(*args, **kwargs)`` through the breaker."""
        if _otel.traced(self):
            return cast(T, _otel.call(self, func, args, kwargs))
        return cast(T, self._call(func, args, kwargs))

    async def acall(
        self,
        func: Callable[..., Awaitable[T]],
        *args: Any,
        timeout_s: Optional[float] = None,
        **kwargs: Any,
    ) -> T:
        """Awaits ``func(*args, **kwargs)`` through the breaker, within ``timeout_s``."""
        span = _otel.CallSpan(self) if _otel.traced(self) else None
        permit = self.allow() if span is None else span.permit
        timed_out = False
        try:
            try:
                if timeout_s is None:
                    result = await func(*args, **kwargs)
                else:
                    result = await asyncio.wait_for(func(*args, **kwargs), timeout_s)
            except asyncio.TimeoutError as exc:
                if timeout_s is None:
                    permit.record(not self.is_failure(exc))
                    raise
                permit.record(False)
                timed_out = True
                raise Timeout(
                    f"call to `{self.key}` timed out after {timeout_s} s", self.key, timeout_s
                ) from exc
            except Exception as exc:
                permit.record(not self.is_failure(exc))
                raise
            except BaseException:
                # Cancelled or interrupted: says nothing about the dependency.
                permit.release()
                raise
            permit.record(True)
            return result
        finally:
            if span is not None:
                span.end(timed_out)

    def __enter__(self) -> Permit:
        if _otel.traced(self):
            span = _otel.CallSpan(self)
            _push(self, span.permit, span)
            return span.permit
        permit = self.allow()
        _push(self, permit)
        return permit

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        permit, span = _pop(self)
        if permit is not None:
            permit.__exit__(exc_type, exc, tb)
        if span is not None:
            span.end()

    async def __aenter__(self) -> Permit:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<switchyard.Breaker {self.key!r} {self.state}>"


class Client(_Client):
    """A Switchyard client: hands out breakers and runs the background agent.

    ``endpoints`` is a list or a comma-separated string (default: ``SWITCHYARD_ENDPOINTS``;
    none means local-only), ``token`` defaults to ``SWITCHYARD_CLIENT_TOKEN``.
    ``instance_id`` defaults to ``<hostname>-<pid>``. After ``os.fork()`` the client restarts
    its agent in the child on first use (``on_fork="restart"``, the default; the child
    reports as its own instance) or raises ``SwitchyardError`` (``on_fork="raise"``).
    ``tracing=True`` records an OpenTelemetry span per guarded call in the current trace
    (needs ``opentelemetry-api``; without it, nothing is recorded) and sends the W3C
    ``traceparent`` on the httpx / requests integrations' requests.
    """

    __slots__ = ()

    @classmethod
    def local_only(cls) -> "Client":
        """A client with no cluster: every breaker is judged by its local breaker alone."""
        return cls(endpoints=[])

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def breaker(
        self,
        key: str,
        policy: Optional[Mapping[str, Any]] = None,
        failure: Optional[Callable[[BaseException], bool]] = None,
    ) -> Breaker:
        """The breaker for ``key`` (``scope/name``). ``policy`` (a dict of policy fields)
        applies until the cluster sends one; ``failure(exc)`` says whether an exception is
        a dependency failure (default: every exception)."""
        return Breaker(self, key, policy, failure)

    def tier(self, scope: str) -> Tier:
        """The tier of ``scope`` from the last decisions; ``Tier.FULL`` when unknown."""
        return Tier(self._tier(scope))

    def retry(self, attempts_max: int, budget: Optional[RetryBudget] = None) -> "Retry":
        """A retry policy usable as a decorator; retries are taken from ``budget`` (default:
        a fresh budget of this client), and from the fleet's budget when decorated calls go
        through a breaker given to ``Retry.through``."""
        from ._kit import Retry

        return Retry(self._retry(attempts_max, budget))

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.mode
        return f"<switchyard.Client {state} endpoints={self.endpoints!r}>"
