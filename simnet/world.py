"""The simulated world: a SimPy environment, its seed, its random streams and its trace.

One integer seed derives every random stream through *named* sub-streams
(``world.rng("topology")``, ``world.byte_stream("host/relay3")``), so adding a
node or a consumer does not reshuffle the others.  The wall clock of the world
is a virtual epoch plus virtual time, so documents signed in the simulation are
valid "now".

``shuffle_ties=True`` orders events that fall on the same virtual time and
priority by a seeded random key instead of FIFO: code that silently depends on
FIFO order among simultaneous events shows up as a different trace (arti runs
its mock-runtime tests under several schedulers for the same reason).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from heapq import heappush
from itertools import count

import simpy
from simpy.core import SimTime
from simpy.events import NORMAL, Event, EventPriority

from gotor.crypto.primitives import AesCtr
from simnet.trace import TraceRecorder

# 2026-01-01T00:00:00Z: a fixed virtual epoch keeps traces independent of the real date.
DEFAULT_EPOCH = 1767225600.0


def _derive(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"gotor-simnet:{seed}:{name}".encode()).digest()


class _Environment(simpy.Environment):
    """A SimPy environment whose same-time ties are broken by a seeded RNG."""

    def __init__(self, tie_rng: random.Random) -> None:
        super().__init__()
        self._tie_rng = tie_rng
        self._tie_ids = count()

    def schedule(self, event: Event, priority: EventPriority = NORMAL, delay: SimTime = 0) -> None:
        key = (self._tie_rng.getrandbits(40) << 40) | (next(self._tie_ids) & ((1 << 40) - 1))
        heappush(self._queue, (self._now + delay, priority, key, event))


class ByteStreamDrbg:
    """A deterministic byte source: the AES-128-CTR keystream of a derived key."""

    __slots__ = ("_ctr",)

    def __init__(self, key: bytes) -> None:
        self._ctr = AesCtr(key[:16])

    def __call__(self, n: int) -> bytes:
        return self._ctr.update(bytes(n))


class World:
    """Everything that is global to one simulation run."""

    def __init__(self, seed: int, *, shuffle_ties: bool = False,
                 epoch: float = DEFAULT_EPOCH) -> None:
        self.seed = seed
        self.shuffle_ties = shuffle_ties
        self.epoch = epoch
        # Without shuffling, SimPy's own scheduler: no extra Python call per event.
        self.env: simpy.Environment = (
            _Environment(random.Random(_derive(seed, "tie-shuffle"))) if shuffle_ties
            else simpy.Environment())
        self.trace = TraceRecorder(self.env)
        self.errors: list[str] = []

    def now(self) -> float:
        return float(self.env.now)

    def wallclock(self) -> float:
        return self.epoch + self.env.now

    def rng(self, name: str) -> random.Random:
        """A :class:`random.Random` for choices, seeded from (seed, name)."""
        return random.Random(_derive(self.seed, "rng:" + name))

    def byte_stream(self, name: str) -> Callable[[int], bytes]:
        """A deterministic source of key material, seeded from (seed, name)."""
        return ByteStreamDrbg(_derive(self.seed, "bytes:" + name))

    def report_error(self, where: str, exc: BaseException) -> None:
        """A bug surfaced in the simulation (e.g. a task failed with nobody watching)."""
        text = f"{where}: {type(exc).__name__}: {exc}"
        self.errors.append(text)
        self.trace.record(where, "error", error=f"{type(exc).__name__}: {exc}")

    def run(self, until: float | Event | None = None) -> None:
        self.env.run(until=until)

    def finish(self) -> str:
        """Seal the trace (see :meth:`TraceRecorder.seal`) and return its hash."""
        self.trace.seal()
        return self.trace.hexdigest()
