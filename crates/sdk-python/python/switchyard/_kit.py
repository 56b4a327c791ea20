"""The resilience kit around breakers: fallback chains, retries under a budget, bulkheads.

The counting and deciding parts are native (the Rust SDK's retry budget, jittered backoff,
bulkhead and breakers); this module only sequences calls, which in Python must happen in
Python (the calls are Python functions).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import time
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Generic,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

from . import _otel
from ._client import Breaker, _pop, _push
from ._errors import Attempt, FallbackError, Rejected
from ._switchyard import BulkheadSlot, _Bulkhead, _Retry

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: A fallback step: a callable, or a ``(breaker, callable)`` pair guarded by the breaker.
Step = Union[Callable[..., Any], Tuple[Breaker, Callable[..., Any]]]


@dataclasses.dataclass(frozen=True)
class Decided(Generic[T]):
    """The answer of a fallback chain and which step gave it."""

    value: T
    step: str
    attempts: List[Attempt]


def _step_name(step: Step) -> str:
    if isinstance(step, tuple):
        return step[0].key
    return getattr(step, "__qualname__", None) or repr(step)


class Fallback:
    """Try A, then B, then C: ``Fallback([(ml, call_ml), (backup, call_backup), rules])``.

    A ``(breaker, callable)`` step whose breaker rejects is skipped without calling; a step
    that raises is recorded as failed and the next step runs. When every step fails,
    ``FallbackError`` lists every attempt. ``fallback(...)`` returns the value;
    ``fallback.run(...)`` a ``Decided`` that also says which step answered; ``arun`` and
    ``acall`` await ``async def`` steps.
    """

    def __init__(self, steps: Sequence[Step]) -> None:
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
            raise TypeError("steps: must be a list of callables or (breaker, callable) pairs")
        if not steps:
            raise ValueError("steps: must not be empty")
        for i, step in enumerate(steps):
            fn = step[1] if isinstance(step, tuple) and len(step) == 2 else step
            if isinstance(step, tuple) and not (
                len(step) == 2 and isinstance(step[0], Breaker)
            ):
                raise TypeError(f"steps[{i}]: a pair must be (Breaker, callable)")
            if not callable(fn):
                raise TypeError(f"steps[{i}]: must be callable, got {type(fn).__name__}")
        self.steps: List[Step] = list(steps)

    def _traced(self) -> bool:
        return any(isinstance(s, tuple) and _otel.traced(s[0]) for s in self.steps)

    def run(self, *args: Any, **kwargs: Any) -> Decided[Any]:
        if not self._traced():
            return self._run(args, kwargs, traced=False)
        span = _otel.FallbackSpan()
        try:
            decided = self._run(args, kwargs, traced=True)
        except FallbackError as exc:
            span.end(None, len(exc.attempts))
            raise
        except BaseException:
            span.end(None, 0)
            raise
        span.end(decided.step, len(decided.attempts))
        return decided

    def _run(self, args: Any, kwargs: Any, traced: bool) -> Decided[Any]:
        attempts: List[Attempt] = []
        for step in self.steps:
            name = _step_name(step)
            try:
                if isinstance(step, tuple) and traced and _otel.traced(step[0]):
                    value = _otel.call(step[0], step[1], args, kwargs, step=name)
                elif isinstance(step, tuple):
                    value = step[0].call(step[1], *args, **kwargs)
                else:
                    value = step(*args, **kwargs)
            except Rejected as exc:
                attempts.append(Attempt(name, "rejected", exc))
                continue
            except Exception as exc:
                attempts.append(Attempt(name, "failed", exc))
                continue
            attempts.append(Attempt(name, "ok", None))
            return Decided(value, name, attempts)
        raise FallbackError(attempts)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs).value

    async def arun(self, *args: Any, **kwargs: Any) -> Decided[Any]:
        if not self._traced():
            return await self._arun(args, kwargs)
        span = _otel.FallbackSpan()
        try:
            decided = await self._arun(args, kwargs)
        except FallbackError as exc:
            span.end(None, len(exc.attempts))
            raise
        except BaseException:
            span.end(None, 0)
            raise
        span.end(decided.step, len(decided.attempts))
        return decided

    async def _arun(self, args: Any, kwargs: Any) -> Decided[Any]:
        attempts: List[Attempt] = []
        for step in self.steps:
            name = _step_name(step)
            try:
                if isinstance(step, tuple):
                    value = await step[0].acall(step[1], *args, **kwargs)
                else:
                    value = step(*args, **kwargs)
                    if inspect.isawaitable(value):
                        value = await value
            except Rejected as exc:
                attempts.append(Attempt(name, "rejected", exc))
                continue
            except Exception as exc:
                attempts.append(Attempt(name, "failed", exc))
                continue
            attempts.append(Attempt(name, "ok", None))
            return Decided(value, name, attempts)
        raise FallbackError(attempts)

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        return (await self.arun(*args, **kwargs)).value


class Retry:
    """Up to ``attempts_max`` attempts, each retry taken from a retry budget and preceded by
    an exponential backoff with full jitter. Get it with ``client.retry(attempts_max)``;
    use it as a decorator on ``def`` or ``async def``.

    ``Rejected`` is never retried (the breaker already said no). ``retry_on(exc)`` narrows
    which exceptions are retried (default: all). ``through(breaker)`` counts attempts on
    the breaker so the fleet retry budget applies while the cluster has figures for it.
    """

    def __init__(
        self,
        native: _Retry,
        breaker: Optional[Breaker] = None,
        retry_on: Optional[Callable[[BaseException], bool]] = None,
    ) -> None:
        self._native = native
        self._breaker = breaker
        if retry_on is not None and not callable(retry_on):
            raise TypeError(f"retry_on: must be callable, got {type(retry_on).__name__}")
        self._retry_on = retry_on

    @property
    def attempts_max(self) -> int:
        return self._native.attempts_max

    def through(self, breaker: Breaker) -> "Retry":
        """The same policy, counting attempts on ``breaker`` (fleet budget)."""
        if not isinstance(breaker, Breaker):
            raise TypeError(f"breaker: must be a switchyard.Breaker, got {type(breaker).__name__}")
        return Retry(self._native, breaker, self._retry_on)

    def when(self, retry_on: Callable[[BaseException], bool]) -> "Retry":
        """The same policy, retrying only exceptions for which ``retry_on(exc)`` is true."""
        return Retry(self._native, self._breaker, retry_on)

    def _next_delay(self, retry: int, exc: Exception) -> Optional[float]:
        """The delay before retry number ``retry`` (0-based), or None to give up."""
        if isinstance(exc, Rejected):
            return None
        if self._retry_on is not None and not self._retry_on(exc):
            return None
        if retry + 1 >= self._native.attempts_max:
            return None
        if not self._native.try_withdraw(self._breaker):
            return None
        return self._native.delay_s(retry)

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._native.deposit(self._breaker)
        retry = 0
        while True:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                delay = self._next_delay(retry, exc)
                if delay is None:
                    raise
            time.sleep(delay)
            retry += 1

    async def acall(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        self._native.deposit(self._breaker)
        retry = 0
        while True:
            try:
                return await func(*args, **kwargs)
            except Exception as exc:
                delay = self._next_delay(retry, exc)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            retry += 1

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def retried_async(*args: Any, **kwargs: Any) -> Any:
                return await self.acall(func, *args, **kwargs)

            return cast(F, retried_async)

        @functools.wraps(func)
        def retried(*args: Any, **kwargs: Any) -> Any:
            return self.call(func, *args, **kwargs)

        return cast(F, retried)


class Bulkhead(_Bulkhead):
    """At most ``max_concurrent`` calls at once; one more raises ``Rejected`` (reason
    ``"bulkhead"``) at once instead of queueing. A decorator for ``def`` and ``async def``,
    and a ``with`` / ``async with`` block."""

    __slots__ = ()

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def limited_async(*args: Any, **kwargs: Any) -> Any:
                slot = self.acquire()
                try:
                    return await func(*args, **kwargs)
                finally:
                    slot.release()

            return cast(F, limited_async)

        @functools.wraps(func)
        def limited(*args: Any, **kwargs: Any) -> Any:
            slot = self.acquire()
            try:
                return func(*args, **kwargs)
            finally:
                slot.release()

        return cast(F, limited)

    def __enter__(self) -> BulkheadSlot:
        slot = self.acquire()
        _push(self, cast(Any, slot))
        return slot

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        slot = cast(Optional[BulkheadSlot], _pop(self)[0])
        if slot is not None:
            slot.release()

    async def __aenter__(self) -> BulkheadSlot:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.__exit__(exc_type, exc, tb)
