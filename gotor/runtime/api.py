"""The runtime interface: everything the client needs from the world.

gotor's client code is ``async def`` code that never touches a clock, a socket,
a thread or OS randomness directly (DESIGN.md, "The one rule").  It receives a
:class:`Runtime` and suspends only on the runtime's own awaitables, so that the
same code runs on asyncio over real TCP (:mod:`gotor.runtime.aio`) and on SimPy
over a simulated network (``simnet.binding``).

Two primitives carry all suspension, following trio's traps:

* :class:`Waiter` — a one-shot slot that some other code ``set()``s or
  ``fail()``s, and that one task awaits;
* ``spawn()`` — start a coroutine as a :class:`Task`.

Everything else (events, queues, locks, timeouts) is built from these in
:mod:`gotor.runtime.sync`, once, for both bindings.  The semantics shared by
both bindings (outcome bookkeeping, callbacks, cancellation mapping) live in the
base classes here; a binding only supplies how a task is woken.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from gotor.errors import Cancelled, LocalError

T = TypeVar("T")

_PENDING, _OK, _ERR = 0, 1, 2


class Waiter(ABC, Generic[T]):
    """A one-shot result slot: ``set(value)`` or ``fail(exc)`` once; one task awaits it.

    Awaiting a waiter that is already resolved returns at once.  If the awaiting
    task is cancelled, the await raises :class:`~gotor.errors.Cancelled` whatever
    the waiter's state; code that hands items through waiters (queues) checks
    :meth:`resolved_ok` in its cancellation path so that nothing is lost.
    """

    __slots__ = ("_state", "_value")

    def __init__(self) -> None:
        self._state = _PENDING
        self._value: Any = None

    def set(self, value: T) -> None:
        if self._state != _PENDING:
            raise LocalError("waiter already resolved")
        self._state, self._value = _OK, value
        self._wake()

    def fail(self, exc: BaseException) -> None:
        if self._state != _PENDING:
            raise LocalError("waiter already resolved")
        self._state, self._value = _ERR, exc
        self._wake()

    def set_if_pending(self, value: T) -> None:
        """``set(value)`` unless already resolved (for timers racing with cancellation)."""
        if self._state == _PENDING:
            self.set(value)

    def done(self) -> bool:
        return self._state != _PENDING

    def resolved_ok(self) -> bool:
        return self._state == _OK

    def outcome(self) -> T:
        """The value, or raise the failure (only once resolved)."""
        if self._state == _OK:
            return self._value  # type: ignore[no-any-return]
        if self._state == _ERR:
            raise self._value
        raise LocalError("waiter not resolved yet")

    @abstractmethod
    def _wake(self) -> None:
        """Binding hook: make a task suspended in ``__await__`` runnable."""

    @abstractmethod
    def __await__(self) -> Generator[Any, Any, T]:
        """Binding hook: suspend until resolved, then return :meth:`outcome`."""


class Task(ABC, Generic[T]):
    """A running coroutine.  ``await task`` gives its result or raises its error.

    ``cancel()`` raises :class:`~gotor.errors.Cancelled` inside the coroutine at
    its current (or next) await; a finished task ignores it.
    """

    __slots__ = ("_callbacks", "_cancel_reason", "_observed", "_state", "_value", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._state = _PENDING
        self._value: Any = None
        self._callbacks: list[Callable[[Task[T]], None]] = []
        self._observed = False
        self._cancel_reason: str | None = None

    # --- binding side -------------------------------------------------
    def _finish(self, ok: bool, value: Any) -> None:
        self._state, self._value = (_OK if ok else _ERR), value
        callbacks, self._callbacks = self._callbacks, []
        self._observed = self._observed or bool(callbacks)
        for cb in callbacks:
            cb(self)

    def _failed_unobserved(self) -> BaseException | None:
        """The error of a task that failed (not by cancellation) with nobody watching.

        Bindings check this a moment after the task ends and report it, as asyncio
        reports "exception never retrieved": such a failure is a bug to surface.
        """
        if self._state == _ERR and not self._observed and not isinstance(self._value, Cancelled):
            return self._value  # type: ignore[no-any-return]
        return None

    @abstractmethod
    def _interrupt(self, reason: str) -> None:
        """Binding hook: deliver cancellation into the running coroutine."""

    @abstractmethod
    def _new_waiter(self) -> Waiter[None]:
        """Binding hook: a waiter of this task's binding."""

    # --- user side ----------------------------------------------------
    def cancel(self, reason: str = "cancelled") -> None:
        if self._state != _PENDING or self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        self._interrupt(reason)

    @property
    def cancel_reason(self) -> str | None:
        """Why the task was asked to stop, or None if it was not."""
        return self._cancel_reason

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _ERR and isinstance(self._value, Cancelled)

    def exception(self) -> BaseException | None:
        if self._state == _PENDING:
            raise LocalError(f"task {self.name} has not finished")
        self._observed = True
        return self._value if self._state == _ERR else None

    def result(self) -> T:
        if self._state == _PENDING:
            raise LocalError(f"task {self.name} has not finished")
        self._observed = True
        if self._state == _ERR:
            raise self._value
        return self._value  # type: ignore[no-any-return]

    def add_done_callback(self, fn: Callable[[Task[T]], None]) -> None:
        if self._state != _PENDING:
            fn(self)
        else:
            self._callbacks.append(fn)

    def __await__(self) -> Generator[Any, Any, T]:
        if self._state == _PENDING:
            waiter = self._new_waiter()
            self.add_done_callback(lambda _t: waiter.set(None))
            yield from waiter.__await__()
        return self.result()

    def __repr__(self) -> str:
        state = {_PENDING: "running", _OK: "done", _ERR: "failed"}[self._state]
        return f"<Task {self.name} {state}>"


class Handle(Protocol):
    """A scheduled callback that can still be called off."""

    def cancel(self) -> None: ...


class Rng(Protocol):
    """The subset of :class:`random.Random` the client uses for choices (paths, jitter).

    Key material never comes from here: use :meth:`Runtime.random_bytes`.
    """

    def random(self) -> float: ...
    def uniform(self, a: float, b: float) -> float: ...
    def randrange(self, start: int, stop: int | None = ..., step: int = ...) -> int: ...
    def randint(self, a: int, b: int) -> int: ...
    def choice(self, seq: Sequence[T]) -> T: ...
    def sample(self, population: Sequence[T], k: int) -> list[T]: ...
    def shuffle(self, x: list[Any]) -> None: ...
    def getrandbits(self, k: int) -> int: ...


class ByteStream(Protocol):
    """A reliable, ordered, full-duplex byte stream (TCP, or TLS over it).

    ``read`` returns b"" at end of stream; ``write`` queues and never blocks,
    ``drain`` waits until the queue is below the high-water mark (backpressure).
    Failures raise :class:`~gotor.errors.ConnectionReset` /
    :class:`~gotor.errors.ClosedError` in both bindings.
    """

    @property
    def peer(self) -> tuple[str, int]: ...
    @property
    def local(self) -> tuple[str, int]: ...
    async def read(self, max_bytes: int = 65536) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def write_eof(self) -> None: ...
    async def aclose(self) -> None: ...
    def abort(self) -> None: ...


class TlsStream(ByteStream, Protocol):
    def peer_cert_der(self) -> bytes | None:
        """The DER certificate the peer presented (not validated against any CA)."""
        ...


@dataclass(frozen=True)
class TlsCredentials:
    """What a TLS server presents: a PEM certificate chain and its PEM private key."""

    cert_chain_pem: bytes
    key_pem: bytes


class Listener(Protocol):
    @property
    def address(self) -> tuple[str, int]: ...
    async def aclose(self) -> None: ...


ConnHandler = Callable[[ByteStream], Awaitable[None]]


class Runtime(Protocol):
    """What the client may use of the world.  See the module docstring."""

    @property
    def rng(self) -> Rng:
        """Choices (paths, jitter): seeded in simnet.  Never for key material."""
        ...

    def now(self) -> float:
        """Monotonic seconds (virtual in simnet): for timeouts and intervals."""
        ...

    def wallclock(self) -> float:
        """POSIX seconds (a virtual epoch in simnet): for document and cert validity."""
        ...

    def random_bytes(self, n: int) -> bytes:
        """Key material: the OS in production, a seeded stream in simnet."""
        ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...
    def waiter(self) -> Waiter[Any]: ...
    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> Task[T]: ...
    def call_later(self, delay: float, fn: Callable[[], None]) -> Handle: ...

    async def connect(self, host: str, port: int, *, tls: bool = False) -> ByteStream:
        """Open TCP (and, with ``tls=True``, a TLS session whose stream is a
        :class:`TlsStream`).  Raises ConnectionRefused / ConnectionReset / TlsError."""
        ...

    async def listen(self, host: str, port: int, handler: ConnHandler, *,
                     tls: TlsCredentials | None = None) -> Listener:
        """Accept connections, running ``handler(stream)`` as a task for each."""
        ...

    def trace(self, event: str, **fields: Any) -> None:
        """Record an observable event (simnet hashes these; asyncio logs at debug level)."""
        ...

