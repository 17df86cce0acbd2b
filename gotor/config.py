"""The client's configuration: where it keeps state, whom it trusts, and its timing knobs.

:class:`ClientConfig` is what :class:`~gotor.client.TorClient` takes.  The
directory part (trusted authorities, bootstrap sources) is a
:class:`~gotor.dir.config.DirConfig`; the knobs of the circuit manager and of
stream attempts are :class:`CircuitConfig` and :class:`StreamConfig`, whose
defaults are C tor's (the torrc option or the constant each mirrors is named
next to it).

``testing_network=True`` is the counterpart of C tor's ``TestingTorNetwork``
for a private or simulated network: it swaps in :meth:`CircuitConfig.testing`
and :meth:`StreamConfig.testing` (shorter handshake, build and stream timeouts,
so that an unresponsive relay is given up on quickly) unless explicit
configurations are given.  The one path rule it relaxes is C tor's as well:
relays in one /16 may share a path (EnforceDistinctSubnets 0), since a private
network's relays usually all listen on one address.  No protocol rule changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gotor.dir.config import DirConfig
from gotor.errors import LocalError

__all__ = ["CircuitConfig", "ClientConfig", "StreamConfig"]


@dataclass(frozen=True)
class CircuitConfig:
    """Knobs of the circuit manager (:mod:`gotor.circmgr`); times in seconds."""

    #: MaxCircuitDirtiness: a circuit takes new streams for this long after its first.
    max_dirtiness: float = 600.0
    #: None: the consensus ``cbtinitialtimeout`` (60 s by default); else this value.
    build_timeout: float | None = None
    #: C tor's MAX_CIRCUIT_FAILURES: failed builds one request sits through before it fails.
    build_attempts: int = 5
    #: TLS + link handshake with a relay.
    channel_timeout: float = 30.0
    #: MIN_CIRCUITS_HANDLING_STREAM: clean circuits kept ready per predicted port.
    preemptive_circuits: int = 2
    #: Ports predicted from the start (C tor's predicted_ports_init adds 80).
    predicted_ports: tuple[int, ...] = (80,)
    #: How long a port that a stream used stays predicted (C tor: one hour).
    prediction_lifetime: float = 3600.0
    #: MAX_UNUSED_OPEN_CIRCUITS: never more clean circuits than this.
    max_clean: int = 14
    #: An unused (clean) circuit is closed after this long (C tor's circuit_idle_timeout,
    #: which follows the prediction time).
    clean_lifetime: float = 3600.0
    #: IDLE_ONE_HOP_CIRC_TIMEOUT: a directory circuit without streams closes after this.
    dir_idle: float = 60.0
    #: How often the manager expires circuits and launches preemptive ones (C tor: 1 s).
    tick: float = 1.0
    #: EnforceDistinctSubnets: no two relays of one /16 in a path.  Off on a private
    #: network, where every relay may share one address (C tor's TestingTorNetwork).
    distinct_subnets: bool = True

    def __post_init__(self) -> None:
        positive = (self.max_dirtiness, self.channel_timeout, self.prediction_lifetime,
                    self.clean_lifetime, self.dir_idle, self.tick)
        if min(positive) <= 0 or (self.build_timeout is not None and self.build_timeout <= 0):
            raise LocalError("circuit timings must be positive")
        if self.build_attempts < 1 or self.preemptive_circuits < 0 or self.max_clean < 0:
            raise LocalError("build_attempts >= 1, preemptive_circuits and max_clean >= 0")
        if any(not 0 < p < 65536 for p in self.predicted_ports):
            raise LocalError("predicted ports must be between 1 and 65535")

    @classmethod
    def testing(cls) -> CircuitConfig:
        """A private or simulated network (TestingTorNetwork): short timeouts, and relays
        on one subnet may share a path."""
        return cls(build_timeout=15.0, channel_timeout=10.0, distinct_subnets=False)


@dataclass(frozen=True)
class StreamConfig:
    """How :meth:`~gotor.client.TorClient.connect` and ``resolve`` retry; seconds."""

    #: SocksTimeout: the whole request (circuits, attempts) must finish within this.
    connect_timeout: float = 120.0
    #: C tor's compute_retry_timeout: wait this long for CONNECTED on attempt 1, 2, ...
    #: (the last value repeats); the circuit is then retired and the stream retried.
    begin_timeouts: tuple[float, ...] = (10.0, 10.0, 15.0)
    #: Attempts per request, all reasons together (our bound: C tor has only SocksTimeout).
    attempts: int = 5
    #: MAX_RESOLVE_FAILURES: attempts ended by RESOLVEFAILED, MISC or NOROUTE.
    resolve_failures: int = 3

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or not self.begin_timeouts or min(self.begin_timeouts) <= 0:
            raise LocalError("stream timeouts must be positive")
        if self.attempts < 1 or self.resolve_failures < 1:
            raise LocalError("attempts and resolve_failures must be at least 1")

    def begin_timeout(self, attempt: int) -> float:
        """The CONNECTED deadline of the 0-based ``attempt``."""
        return self.begin_timeouts[min(attempt, len(self.begin_timeouts) - 1)]

    @classmethod
    def testing(cls) -> StreamConfig:
        return cls(connect_timeout=60.0, begin_timeouts=(5.0, 5.0, 8.0))


@dataclass(frozen=True)
class ClientConfig:
    """Everything a :class:`~gotor.client.TorClient` needs (see the module docstring).

    ``data_dir`` holds the directory cache and the guard state (created if
    missing); ``socks`` is where the SOCKS listener binds (port 0: any free
    port; None: no listener).
    """

    data_dir: Path
    dir: DirConfig
    socks: tuple[str, int] | None = None
    testing_network: bool = False
    circuits: CircuitConfig | None = None
    streams: StreamConfig | None = None
    #: A SOCKS client that has not finished its handshake within this is dropped.
    socks_handshake_timeout: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.socks is not None and not 0 <= self.socks[1] < 65536:
            raise LocalError(f"SOCKS port {self.socks[1]} out of range")
        if self.socks_handshake_timeout <= 0:
            raise LocalError("socks_handshake_timeout must be positive")

    @property
    def circuit_config(self) -> CircuitConfig:
        if self.circuits is not None:
            return self.circuits
        return CircuitConfig.testing() if self.testing_network else CircuitConfig()

    @property
    def stream_config(self) -> StreamConfig:
        if self.streams is not None:
            return self.streams
        return StreamConfig.testing() if self.testing_network else StreamConfig()
