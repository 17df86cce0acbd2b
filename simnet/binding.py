"""SimRuntime: gotor's runtime interface on SimPy (STYLE.md §10).

Client coroutines suspend only on :class:`SimWaiter`, whose ``__await__``
yields a SimPy event.  A trampoline generator (:func:`_drive`), run as a SimPy
process, passes each yielded event to SimPy and sends the outcome back into the
coroutine.  Outcomes live in the waiter itself and events only ever
``succeed()``: SimPy re-creates failure exceptions from their ``args``, which
would break gotor's typed errors.  Cancellation is ``Process.interrupt``,
surfaced as :class:`gotor.errors.Cancelled` at the await.

Each runtime belongs to one simulated host: its connections leave from that
host, its wall clock carries the host's skew, its randomness is the host's own
named stream, and a host crash cancels its tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import simpy
from simpy.events import Event

from gotor.errors import Cancelled
from gotor.runtime.api import ConnHandler, Task, TlsCredentials, Waiter

if TYPE_CHECKING:
    from simnet.net import Host
    from simnet.world import World

T = TypeVar("T")


class SimWaiter(Waiter[T]):
    __slots__ = ("_ev",)

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__()
        self._ev: Event = env.event()

    def _wake(self) -> None:
        if not self._ev.triggered:
            self._ev.succeed()

    def __await__(self) -> Generator[Any, Any, T]:
        if not self.done():
            try:
                yield self._ev
            except simpy.Interrupt:
                raise Cancelled() from None
        return self.outcome()


def _drive(task: SimTask[Any], coro: Coroutine[Any, Any, Any]) -> Generator[Event, Any, None]:
    """The trampoline: a SimPy process generator that runs one coroutine."""
    task._started = True
    if task.cancel_reason is not None:  # cancelled before it ever ran
        coro.close()
        task._finish(False, Cancelled(task.cancel_reason))
        return
    send: Any = None
    exc: BaseException | None = None
    while True:
        try:
            event = coro.throw(exc) if exc is not None else coro.send(send)
        except StopIteration as stop:
            task._finish(True, stop.value)
            return
        except simpy.Interrupt:
            task._finish(False, Cancelled(task.cancel_reason or "cancelled"))
            return
        except BaseException as err:  # noqa: BLE001 - the task's outcome, re-raised on await
            task._finish(False, err)
            task._rt._check_unobserved(task)
            return
        try:
            send, exc = (yield event), None
        except simpy.Interrupt as interrupt:
            send, exc = None, interrupt


class SimTask(Task[T]):
    __slots__ = ("_key", "_proc", "_rt", "_started")

    def __init__(self, rt: SimRuntime, coro: Coroutine[Any, Any, T], name: str, key: int) -> None:
        super().__init__(name)
        self._rt = rt
        self._started = False
        self._key = key
        self._proc = rt.env.process(_drive(self, coro))

    def _finish(self, ok: bool, value: Any) -> None:
        # Forget the task here rather than through add_done_callback: a done
        # callback counts as an observer, which would hide unobserved failures.
        self._rt._tasks.pop(self._key, None)
        super()._finish(ok, value)

    def _interrupt(self, reason: str) -> None:
        if not self._started or not self._proc.is_alive:
            return  # _drive sees cancel_reason when it starts
        if self._proc is self._rt.env.active_process:
            # A task cancelling itself: deliver at its next suspension, as asyncio does.
            self._rt.call_later(0, self._interrupt_now)
        else:
            self._proc.interrupt(reason)

    def _interrupt_now(self) -> None:
        if self._proc.is_alive and not self.done():
            self._proc.interrupt(self.cancel_reason)

    def _new_waiter(self) -> Waiter[None]:
        return SimWaiter(self._rt.env)


class _SimTimer:
    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[], None] | None) -> None:
        self._fn = fn

    def fire(self, _event: Event) -> None:
        fn, self._fn = self._fn, None
        if fn is not None:
            fn()

    def cancel(self) -> None:
        self._fn = None


class SimRuntime:
    """The runtime of one simulated host (see the module docstring)."""

    def __init__(self, world: World, host: Host, name: str | None = None) -> None:
        self.world = world
        self.env = world.env
        self.host = host
        self.name = name or host.name
        self.rng = world.rng(f"runtime:{self.name}")
        self.random_bytes = world.byte_stream(f"runtime:{self.name}")
        self._tasks: dict[int, SimTask[Any]] = {}
        self._task_ids = 0

    # --- clocks ---------------------------------------------------------
    def now(self) -> float:
        return float(self.env.now)

    def wallclock(self) -> float:
        return self.world.wallclock() + self.host.clock_offset

    # --- suspension -----------------------------------------------------
    def waiter(self) -> SimWaiter[Any]:
        return SimWaiter(self.env)

    def sleep(self, seconds: float) -> SimWaiter[None]:
        w: SimWaiter[None] = SimWaiter(self.env)
        self.call_later(seconds, partial(w.set_if_pending, None))
        return w

    def call_later(self, delay: float, fn: Callable[[], None]) -> _SimTimer:
        timer = _SimTimer(fn)
        self.env.timeout(max(0.0, delay)).callbacks.append(timer.fire)
        return timer

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> SimTask[T]:
        self._task_ids += 1
        task = SimTask(self, coro, name, self._task_ids)
        self._tasks[self._task_ids] = task
        return task

    def cancel_all(self, reason: str) -> None:
        """Cancel every live task of this runtime (its host crashed)."""
        for task in list(self._tasks.values()):
            task.cancel(reason)

    def _check_unobserved(self, task: SimTask[Any]) -> None:
        def check() -> None:
            exc = task._failed_unobserved()
            if exc is not None:
                self.world.report_error(f"{self.name}/{task.name}", exc)

        self.call_later(0, check)

    # --- network ----------------------------------------------------------
    async def connect(self, host: str, port: int, *, tls: bool = False) -> Any:
        stream = await self.host.connect(host, port)
        if tls:
            from simnet.tls import tls_client

            return await tls_client(self, stream)
        return stream

    async def listen(self, host: str, port: int, handler: ConnHandler, *,
                     tls: TlsCredentials | None = None) -> Any:
        if tls is not None:
            from simnet.tls import tls_server_handler

            handler = tls_server_handler(self, tls, handler)
        return await self.host.listen(host, port, handler, self)

    # --- observation ------------------------------------------------------
    def trace(self, event: str, **fields: Any) -> None:
        self.world.trace.record(self.name, event, **fields)
