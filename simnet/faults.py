"""Fault primitives as data, and a schedule that applies them at virtual times.

Each fault is a small frozen dataclass naming hosts, not holding them, so a
scenario can declare its fault schedule up front and a chaos campaign can
shrink a failing schedule by dropping entries (DESIGN.md, ``chaos/``).  Bad
values are refused when a fault is made (LocalError), not when it fires in the
middle of a run.  ``apply(net)`` performs the fault through the primitives of
:mod:`simnet.net` (which trace what they do); a fault with a ``duration``
reverts itself after it.

* :class:`Crash` / :class:`Restart` — a host dies (connections reset, listeners
  vanish, tasks cancelled) and comes back with fresh state;
* :class:`PartitionFault` — traffic between two sets of hosts is black-holed;
* :class:`LatencySpike`, :class:`BandwidthCap`, :class:`Loss` — temporary
  degradations of a host's access link (they stack);
* :class:`ClockSkew` — a host's wall clock jumps (its monotonic clock does not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from gotor.errors import LocalError
from simnet.net import Impairment, Network


class Fault(Protocol):
    def apply(self, net: Network) -> None: ...


def _check_duration(duration: float | None) -> None:
    if duration is not None and duration < 0:
        raise LocalError("a fault's duration must not be negative")


def _later(net: Network, duration: float | None, revert: Callable[[], object]) -> None:
    if duration is not None:
        net.call_later(duration, revert)


@dataclass(frozen=True)
class Crash:
    host: str
    duration: float | None = None   # restart after this long (None: stay down)

    def __post_init__(self) -> None:
        _check_duration(self.duration)

    def apply(self, net: Network) -> None:
        host = net.host(self.host)
        host.crash()
        _later(net, self.duration, lambda: Restart(self.host).apply(net))


@dataclass(frozen=True)
class Restart:
    host: str

    def apply(self, net: Network) -> None:
        host = net.host(self.host)
        if not host.alive:
            host.restart()


@dataclass(frozen=True)
class PartitionFault:
    side_a: tuple[str, ...]
    side_b: tuple[str, ...] | None = None   # None: every other host
    duration: float | None = None

    def __post_init__(self) -> None:
        _check_duration(self.duration)

    def apply(self, net: Network) -> None:
        part = net.partition(self.side_a, self.side_b)
        _later(net, self.duration, part.heal)


def _impair(net: Network, host_name: str, imp: Impairment, duration: float | None) -> None:
    host = net.host(host_name)
    host.impair(imp)
    _later(net, duration, lambda: host.unimpair(imp))


@dataclass(frozen=True)
class LatencySpike:
    host: str
    extra: float
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.extra < 0:
            raise LocalError("a latency spike must not be negative")
        _check_duration(self.duration)

    def apply(self, net: Network) -> None:
        _impair(net, self.host, Impairment(extra_latency=self.extra), self.duration)


@dataclass(frozen=True)
class BandwidthCap:
    host: str
    up_bps: float | None = None
    down_bps: float | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if any(v is not None and v <= 0 for v in (self.up_bps, self.down_bps)):
            raise LocalError("a bandwidth cap must be positive")
        _check_duration(self.duration)

    def apply(self, net: Network) -> None:
        _impair(net, self.host, Impairment(up_bps=self.up_bps, down_bps=self.down_bps),
                self.duration)


@dataclass(frozen=True)
class Loss:
    host: str
    rate: float
    duration: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rate < 1:
            raise LocalError("a loss rate must be in [0, 1)")
        _check_duration(self.duration)

    def apply(self, net: Network) -> None:
        _impair(net, self.host, Impairment(loss=self.rate), self.duration)


@dataclass(frozen=True)
class ClockSkew:
    host: str
    offset: float

    def apply(self, net: Network) -> None:
        net.host(self.host).set_clock_offset(self.offset)


class FaultSchedule:
    """Apply faults at virtual times: ``FaultSchedule(net).add(2.0, Crash("relay3", 5.0))``."""

    def __init__(self, net: Network) -> None:
        self._net = net
        self.entries: list[tuple[float, Fault]] = []

    def add(self, at: float, fault: Fault) -> FaultSchedule:
        now = self._net.env.now
        if at < now:
            raise LocalError(f"fault at {at} s is in the past (now {now} s)")
        self.entries.append((at, fault))
        self._net.call_later(at - now, lambda: self._apply(fault))
        return self

    def extend(self, entries: Iterable[tuple[float, Fault]]) -> FaultSchedule:
        for at, fault in entries:
            self.add(at, fault)
        return self

    def _apply(self, fault: Fault) -> None:
        self._net.world.trace.record("faults", "fault", kind=type(fault).__name__,
                                     **{k: v for k, v in vars(fault).items() if v is not None})
        fault.apply(self._net)
