"""Synchronisation primitives for client code, built once on the runtime's two traps.

Every primitive here uses only :meth:`Runtime.waiter` (and, for deadlines,
:meth:`Runtime.spawn` / :meth:`Runtime.call_later`), so it behaves identically
under asyncio and under SimPy.  Waiters are used purely as wake-up signals:
state (items, ownership) stays in the primitive, so a task cancelled after it
was woken loses nothing — it passes the wake-up on to the next waiter.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar

from gotor.errors import Cancelled, ClosedError, LocalError, Timeout
from gotor.runtime.api import Runtime, Task, Waiter

T = TypeVar("T")


def _wake_one(waiters: deque[Waiter[Any]]) -> None:
    while waiters:
        w = waiters.popleft()
        if not w.done():
            w.set(None)
            return


async def _park(rt: Runtime, waiters: deque[Waiter[Any]]) -> None:
    """Wait until woken through ``waiters``; on cancellation hand any wake-up on."""
    w = rt.waiter()
    waiters.append(w)
    try:
        await w
    except Cancelled:
        if w.resolved_ok():
            _wake_one(waiters)
        else:
            try:
                waiters.remove(w)
            except ValueError:
                pass
        raise


class Event:
    """A flag that tasks can wait for; once set it stays set until ``clear()``."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._set = False
        self._waiters: deque[Waiter[Any]] = deque()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, deque()
        for w in waiters:
            if not w.done():
                w.set(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        while not self._set:
            await _park(self._rt, self._waiters)


class Queue(Generic[T]):
    """A FIFO with an optional bound (``maxsize`` 0 = unbounded) that can be closed.

    ``close(exc)`` makes further ``put`` fail with ClosedError; ``get`` still
    returns what was queued, then raises ``exc`` (default ClosedError) — so a
    consumer learns *why* the stream of items ended.
    """

    def __init__(self, rt: Runtime, maxsize: int = 0) -> None:
        self._rt = rt
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._getters: deque[Waiter[Any]] = deque()
        self._putters: deque[Waiter[Any]] = deque()
        self._closed: BaseException | None = None

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return self.maxsize > 0 and len(self._items) >= self.maxsize

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def put_nowait(self, item: T) -> None:
        if self._closed is not None:
            raise ClosedError("queue is closed")
        if self.full():
            raise LocalError("queue is full")
        self._items.append(item)
        _wake_one(self._getters)

    async def put(self, item: T) -> None:
        while self.full() and self._closed is None:
            await _park(self._rt, self._putters)
        self.put_nowait(item)

    def get_nowait(self) -> T:
        """The next item; LocalError if none is queued (or the close reason once drained)."""
        if self._items:
            item = self._items.popleft()
            _wake_one(self._putters)
            return item
        if self._closed is not None:
            raise self._closed
        raise LocalError("queue is empty")

    async def get(self) -> T:
        while not self._items and self._closed is None:
            await _park(self._rt, self._getters)
        return self.get_nowait()

    def close(self, exc: BaseException | None = None) -> None:
        if self._closed is not None:
            return
        self._closed = exc if exc is not None else ClosedError("queue is closed")
        for waiters in (self._getters, self._putters):
            while waiters:
                _wake_one(waiters)


class Lock:
    """A mutual-exclusion lock, handed over in FIFO order; ``async with lock:``."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._locked = False
        self._waiters: deque[Waiter[Any]] = deque()

    def locked(self) -> bool:
        return self._locked

    async def acquire(self) -> None:
        while self._locked:
            await _park(self._rt, self._waiters)
        self._locked = True

    def release(self) -> None:
        if not self._locked:
            raise LocalError("release of an unlocked lock")
        self._locked = False
        _wake_one(self._waiters)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


async def timeout(rt: Runtime, seconds: float, coro: Coroutine[Any, Any, T],
                  *, what: str = "operation",
                  discard: Callable[[T], object] | None = None) -> T:
    """Run ``coro`` with a deadline; raise :class:`~gotor.errors.Timeout` if it passes.

    The coroutine runs as a child task that is cancelled at the deadline (its
    ``finally`` blocks run); if the caller is cancelled, so is the child.  A child
    may still finish with a value its caller never receives (it ended in the same
    instant the caller was cancelled): ``discard`` gets that value, so that an open
    connection or stream is closed instead of dropped.
    """
    task = rt.spawn(coro, name=f"timeout:{what}")
    expired = False
    delivered = False

    def expire() -> None:
        nonlocal expired
        if not task.done():
            expired = True
            task.cancel("timeout")

    handle = rt.call_later(seconds, expire)
    try:
        value = await task
        delivered = True
        return value
    except Cancelled:
        if expired and task.done() and task.cancelled():
            raise Timeout(f"{what} timed out after {seconds:g} s") from None
        raise
    finally:
        handle.cancel()
        if not delivered:
            if not task.done():
                task.cancel("caller cancelled")
            if discard is not None:
                task.add_done_callback(lambda t: _discard_value(t, discard))


def _discard_value(task: Task[T], discard: Callable[[T], object]) -> None:
    if task.exception() is None:
        discard(task.result())


async def wait_finished(rt: Runtime, tasks: Iterable[Task[Any]]) -> None:
    """Wait until every task has ended, however it ends (shutdown after ``cancel``).

    Unlike ``await task`` this never raises the task's error or cancellation, and a
    caller cancelled while waiting leaves the tasks alone.
    """
    for task in tasks:
        if not task.done():
            waiter: Waiter[None] = rt.waiter()

            def wake(_task: Task[Any], w: Waiter[None] = waiter) -> None:
                w.set_if_pending(None)

            task.add_done_callback(wake)
            await waiter
