"""The scenario file format: load a TOML scenario and validate it into frozen specs.

A scenario (``scenarios/README.md`` documents every key) is a TOML file with
the tables ``[topology]``, ``[client]``, ``[traffic]``, ``[invariants]``,
``[run]`` and an array ``[[faults]]``, plus optional top-level ``name`` and
``description``.  Every table maps onto one frozen dataclass below; a field's
converter (its ``metadata["conv"]``) checks the type and range of one value.
Anything wrong (unknown key, wrong type, out of range, missing file, TOML
syntax) is a :class:`~gotor.errors.LocalError` whose text is one line naming
the file and the key, so the command line never shows a traceback.

Host names in fault targets depend on the topology and are checked when the
network is built (:mod:`simnet.scenario`); everything else is checked here.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from gotor.errors import LocalError

T = TypeVar("T")
Conv = Callable[[Any, str], Any]

#: Fault kinds and the keys each accepts besides at/after/kind/target/count.
FAULT_KEYS: dict[str, frozenset[str]] = {
    "crash": frozenset({"duration"}),
    "restart": frozenset(),
    "partition": frozenset({"other", "duration"}),
    "latency": frozenset({"extra", "duration"}),
    "bandwidth": frozenset({"up", "down", "duration"}),
    "loss": frozenset({"rate", "duration"}),
    "clock_skew": frozenset({"offset"}),
}
#: Keys a kind cannot do without (bandwidth needs up or down: checked separately).
FAULT_REQUIRED: dict[str, tuple[str, ...]] = {
    "latency": ("extra",), "loss": ("rate",), "clock_skew": ("offset",),
}
#: Target pools: a fault naming one picks ``count`` hosts from it with a seeded choice.
POOLS = ("relay", "exit", "nonexit", "authority", "web")
#: Kinds that may not touch the client host: the runner does not restart the client.
NOT_ON_CLIENT = frozenset({"crash", "restart"})
ISOLATION_MODES = ("none", "agent", "fetch")
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2,
          "GB": 1000**3, "GiB": 1024**3}
MAX_SIZE = 1 << 30


class ScenarioError(LocalError):
    """A scenario file is unusable; the text is one line naming the file and the key."""


# --- converters: (value, where) -> checked value -------------------------------------------
def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _fail(where: str, expected: str, value: Any) -> ScenarioError:
    return ScenarioError(f"{where}: expected {expected}, got {_type_name(value)} {value!r}"[:200])


def integer(lo: int | None = None, hi: int | None = None) -> Conv:
    def conv(value: Any, where: str) -> int:
        if type(value) is not int:
            raise _fail(where, "an integer", value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ScenarioError(f"{where}: {value} is out of range ({_span(lo, hi)})")
        return value
    return conv


def number(lo: float | None = None, hi: float | None = None, *, above: bool = False) -> Conv:
    """A finite float or int; ``above`` makes ``lo`` exclusive."""
    def conv(value: Any, where: str) -> float:
        if type(value) not in (int, float):
            raise _fail(where, "a number", value)
        v = float(value)
        if not math.isfinite(v):   # TOML has inf and nan; no setting means them
            raise _fail(where, "a finite number", value)
        bad_lo = lo is not None and (v <= lo if above else v < lo)
        if bad_lo or (hi is not None and v > hi):
            raise ScenarioError(f"{where}: {value} is out of range "
                                f"({_span(lo, hi, above=above)})")
        return v
    return conv


def _span(lo: float | None, hi: float | None, *, above: bool = False) -> str:
    if hi is None:
        return f"must be {'>' if above else '>='} {lo}"
    if lo is None:
        return f"must be <= {hi}"
    return f"must be between {lo} and {hi}"


def key_bits(value: Any, where: str) -> int:
    if value not in (1024, 2048, 3072, 4096) or type(value) is not int:
        raise ScenarioError(f"{where}: expected 1024, 2048, 3072 or 4096, got {value!r}")
    return int(value)


def boolean(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise _fail(where, "true or false", value)
    return value


def text(value: Any, where: str) -> str:
    if type(value) is not str:
        raise _fail(where, "a string", value)
    return value


def choice(*options: str) -> Conv:
    def conv(value: Any, where: str) -> str:
        if value not in options:
            raise ScenarioError(f"{where}: expected one of {', '.join(options)}, got {value!r}")
        return str(value)
    return conv


def span(lo: float = 0.0) -> Conv:
    """``[min, max]`` (or one number meaning ``[n, n]``) with lo <= min <= max."""
    num = number(lo)

    def conv(value: Any, where: str) -> tuple[float, float]:
        if type(value) in (int, float):
            v = num(value, where)
            return (v, v)
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(where, "a number or [min, max]", value)
        a, b = num(value[0], where), num(value[1], where)
        if a > b:
            raise ScenarioError(f"{where}: min {value[0]} is larger than max {value[1]}")
        return (a, b)
    return conv


def size(value: Any, where: str) -> int:
    """A byte count: an integer, or a string such as ``"64 KiB"`` / ``"1 MB"``."""
    if type(value) is int:
        n = value
    elif type(value) is str and (m := _SIZE.match(value)):
        n = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise _fail(where, 'a size (bytes, or a string like "64 KiB")', value)
    if not 0 <= n <= MAX_SIZE:
        raise ScenarioError(f"{where}: size {value!r} is out of range (0 to 1 GiB)")
    return n


def array(item: Conv, *, nonempty: bool = True) -> Conv:
    def conv(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, list) or (nonempty and not value):
            raise _fail(where, "a non-empty array" if nonempty else "an array", value)
        return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))
    return conv


def names(value: Any, where: str) -> tuple[str, ...]:
    """One host name or pool, or an array of them."""
    if type(value) is str:
        return (value,)
    if not isinstance(value, list):
        raise _fail(where, "a host name, a pool, or an array of them", value)
    items: tuple[str, ...] = array(text)(value, where)
    return items


def _f(default: Any, conv: Conv) -> Any:
    return field(default=default, metadata={"conv": conv})


def _req(conv: Conv) -> Any:
    return field(metadata={"conv": conv})


# --- the tables ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopologySpec:
    authorities: int = _f(3, integer(1, 9))
    relays: int = _f(30, integer(3, 2000))
    exits: int | None = _f(None, integer(1))           # default relays // 4
    web_servers: int = _f(1, integer(1, 100))
    legacy_fraction: float = _f(0.3, number(0, 1))
    family_fraction: float = _f(0.15, number(0, 1))
    shared16_fraction: float = _f(0.1, number(0, 1))
    consensus_interval: int = _f(3600, integer(300, 86400))
    relay_latency: tuple[float, float] | None = _f(None, span(0.0))
    relay_bandwidth: tuple[float, float] | None = _f(None, span(1e4))
    tls: bool = _f(True, boolean)
    authority_id_bits: int = _f(3072, key_bits)   # tests: 1024 (faster key generation)

    def check(self, where: str) -> None:
        if self.exits is not None and self.exits > self.relays:
            raise ScenarioError(f"{where}: exits ({self.exits}) exceeds relays ({self.relays})")


@dataclass(frozen=True)
class ClientSpec:
    socks_port: int = _f(9050, integer(1, 65535))
    latency: float = _f(0.02, number(0))
    bandwidth: float = _f(100e6, number(1e4))
    testing_network: bool = _f(False, boolean)


@dataclass(frozen=True)
class TrafficSpec:
    agents: int = _f(1, integer(1, 1000))
    fetches: int = _f(10, integer(0, 100000))        # per agent
    concurrency: int = _f(1, integer(1, 100))        # per agent
    sizes: tuple[int, ...] = _f((65536,), array(size))
    start: tuple[float, float] = _f((0.0, 0.0), span())
    interval: tuple[float, float] = _f((0.0, 0.0), span())
    uploads: float = _f(0.0, number(0, 1))
    targets: tuple[str, ...] | None = _f(None, array(text))
    port: int = _f(80, integer(1, 65535))
    isolation: str = _f("none", choice(*ISOLATION_MODES))
    retries: int = _f(0, integer(0, 100))
    retry_delay: float = _f(1.0, number(0))
    timeout: float = _f(120.0, number(0, above=True))

    @property
    def total_fetches(self) -> int:
        return self.agents * self.fetches


@dataclass(frozen=True)
class FaultSpec:
    at: float = _req(number(0))
    kind: str = _req(choice(*FAULT_KEYS))
    target: tuple[str, ...] = _req(names)
    after: str = _f("start", choice("start", "bootstrap"))
    count: int = _f(1, integer(1))
    duration: float | None = _f(None, number(0))
    other: tuple[str, ...] | None = _f(None, names)
    extra: float | None = _f(None, number(0))
    up: float | None = _f(None, number(0, above=True))
    down: float | None = _f(None, number(0, above=True))
    rate: float | None = _f(None, number(0, 0.99))
    offset: float | None = _f(None, number())

    def check(self, where: str) -> None:
        allowed = FAULT_KEYS[self.kind] | {"at", "after", "kind", "target", "count"}
        for f in fields(self):
            if f.name not in allowed and getattr(self, f.name) is not None:
                raise ScenarioError(f"{where}: key {f.name!r} does not apply to a "
                                    f"{self.kind} fault")
        for key in FAULT_REQUIRED.get(self.kind, ()):
            if getattr(self, key) is None:
                raise ScenarioError(f"{where}: a {self.kind} fault needs {key!r}")
        if self.kind == "bandwidth" and self.up is None and self.down is None:
            raise ScenarioError(f"{where}: a bandwidth fault needs 'up' and/or 'down'")
        if self.kind in NOT_ON_CLIENT and "client" in self.target:
            raise ScenarioError(f"{where}: the client cannot {self.kind} "
                                "(the runner does not restart it)")


@dataclass(frozen=True)
class InvariantSpec:
    all_fetches_complete: bool = _f(True, boolean)
    no_corruption: bool = _f(True, boolean)
    no_task_errors: bool = _f(True, boolean)
    max_bootstrap_time: float | None = _f(None, number(0, above=True))
    max_fetch_latency: float | None = _f(None, number(0, above=True))
    max_failed_attempts: int | None = _f(None, integer(0))


@dataclass(frozen=True)
class RunSpec:
    max_virtual_time: float = _f(3600.0, number(0, above=True))


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; ``text`` and ``sha256`` are the file's, for trace headers."""

    name: str
    description: str
    path: str
    text: str
    sha256: str
    topology: TopologySpec
    client: ClientSpec
    traffic: TrafficSpec
    faults: tuple[FaultSpec, ...]
    invariants: InvariantSpec
    run: RunSpec
    #: Indices (into the file's [[faults]]) kept by :meth:`keep_faults`; None = all.
    fault_subset: tuple[int, ...] | None = None

    def keep_faults(self, indices: Iterable[int]) -> Scenario:
        """The same scenario with only the file's faults at ``indices`` (for shrinking)."""
        chosen = tuple(sorted(set(indices)))
        everything = self.all_faults
        bad = [i for i in chosen if not 0 <= i < len(everything)]
        if bad:
            raise ScenarioError(f"{self.path}: no fault number {bad[0]} "
                                f"(the file has {len(everything)})")
        return replace(self, faults=tuple(everything[i] for i in chosen), fault_subset=chosen)

    @property
    def all_faults(self) -> tuple[FaultSpec, ...]:
        """Every fault the file declares, whatever subset is selected."""
        if self.fault_subset is None:
            return self.faults
        return parse_scenario(self.text, self.path).faults


_TABLES: dict[str, type] = {"topology": TopologySpec, "client": ClientSpec,
                            "traffic": TrafficSpec, "invariants": InvariantSpec,
                            "run": RunSpec}
_TOP_LEVEL = frozenset({"name", "description", "faults", *_TABLES})


def build(cls: type[T], table: Any, where: str) -> T:
    """``cls`` from a TOML table: unknown keys, missing keys and bad values are errors."""
    if not isinstance(table, dict):
        raise _fail(where, "a table", table)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in known:
            raise ScenarioError(f"{where}: unknown key {key!r} (expected one of "
                                f"{', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in table:
            values[name] = f.metadata["conv"](table[name], f"{where}.{name}")
        elif f.default is MISSING:
            raise ScenarioError(f"{where}: missing key {name!r}")
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        check(where)
    return obj


def parse_scenario(text_: str, path: str) -> Scenario:
    """Validate scenario ``text_`` (``path`` names it in errors and results)."""
    try:
        doc = tomllib.loads(text_)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from None
    for key in doc:
        if key not in _TOP_LEVEL:
            raise ScenarioError(f"{path}: unknown key {key!r} (expected one of "
                                f"{', '.join(sorted(_TOP_LEVEL))})")
    tables: dict[str, Any] = {key: build(cls, doc.get(key, {}), f"{path}: [{key}]")
              for key, cls in _TABLES.items()}
    raw_faults = doc.get("faults", [])
    if not isinstance(raw_faults, list):
        raise _fail(f"{path}: faults", "an array of tables ([[faults]])", raw_faults)
    faults = tuple(build(FaultSpec, f, f"{path}: [[faults]] #{i + 1}")
                   for i, f in enumerate(raw_faults))
    stem = Path(path).stem
    return Scenario(
        name=text(doc.get("name", stem), f"{path}: name"),
        description=text(doc.get("description", ""), f"{path}: description"),
        path=path, text=text_, sha256=hashlib.sha256(text_.encode()).hexdigest(),
        faults=faults, **tables)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; ScenarioError (one line) on any problem."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not a TOML file (not UTF-8 text)") from None
    return parse_scenario(content, str(path))

