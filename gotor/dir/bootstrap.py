"""The directory client: bootstrap, then keep the directory fresh (dir-spec §5).

:class:`DirClient` turns directory sources into :class:`~gotor.netdir.NetDir`
objects:

1. **Cache** (:mod:`gotor.dir.cache`): at start, the cached certificates,
   consensus and microdescriptors are parsed and verified again, as if they
   came from the network.  A live cached consensus is used as it is; a
   stale but *reasonably live* one (within 24 hours of its window, C tor's
   rule, dir-spec §5.1) is used while a fresh one is fetched — and kept if
   no source gives a better one.
2. **Consensus** from a source: the sources are tried one after another in
   a random order until one gives a consensus that verifies; any failure (an
   unreachable source, a bad status, a truncated body, a timeout, a bad
   signature, a consensus too old or not newer than ours) moves on to the
   next source.  Only when every source failed is a
   :class:`~gotor.errors.BootstrapError` raised, listing every reason.
3. **Certificates**: when the consensus is signed by authorities whose
   certificate we lack, they are fetched (``/tor/keys/fp/``) from the same
   source and verified before the consensus is (quorum: more than half of
   the *configured* authorities, never the document's own list).
4. **Microdescriptors**: the missing digests are split into batches
   (:func:`~gotor.dir.requests.microdesc_batches`) and fetched by several
   workers in parallel, each batch starting at a different source and
   failing over to the others; partial answers are kept and the rest asked
   elsewhere.  Bootstrap succeeds when the directory has enough paths
   (:meth:`~gotor.netdir.NetDir.has_enough_paths`), even if a few
   microdescriptors could not be had.
5. **Refresh** (:meth:`DirClient.run_refresh`): sleeps until the dir-spec
   §5.1 fetch time (:func:`~gotor.dir.schedule.consensus_fetch_time`), then
   fetches a newer consensus (from caches in the current consensus first,
   then the configured sources) and the new microdescriptors, and publishes
   the new NetDir; on failure it retries with dir-spec §5.5 backoff.

Progress is reported through ``on_progress`` as :class:`BootstrapEvent`
objects with C tor's bootstrap percentages and tags (``requesting_status``
20, ``loading_status`` 25, ``loading_keys`` 40, ``requesting_descriptors``
45, ``loading_descriptors`` 50-74, ``enough_dirinfo`` 75); failures that
lead to a fail-over come as events with a ``warning``.  New directories are
published through ``on_netdir`` and :meth:`DirClient.wait_for_update`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gotor.dir.cache import DirCache
from gotor.dir.config import DirConfig
from gotor.dir.fetch import (
    DirSource,
    OpenDirStream,
    fetch_certs,
    fetch_consensus,
    fetch_microdescs,
)
from gotor.dir.requests import microdesc_batches
from gotor.dir.schedule import Backoff, consensus_fetch_time
from gotor.errors import BootstrapError, GotorError, LocalError, NoPathError, VerificationError
from gotor.netdir import REASONABLY_LIVE_TIME, NetDir, Relay
from gotor.netdoc.authcert import AuthCert, parse_authcerts
from gotor.netdoc.checked import Tolerance
from gotor.netdoc.consensus import UnverifiedConsensus, parse_consensus
from gotor.netdoc.microdesc import Microdesc, parse_microdescs
from gotor.path import choose_dir_cache
from gotor.runtime.api import Runtime, Task
from gotor.runtime.sync import Event

__all__ = ["BootstrapEvent", "DirClient", "DirConfig"]  # DirConfig re-exported

#: Accept a consensus (and judge its signatures' certificates) up to 24 h outside its
#: window: C tor's "reasonably live" (networkstatus_consensus_reasonably_live).
_LIVE_TOLERANCE = Tolerance(REASONABLY_LIVE_TIME, REASONABLY_LIVE_TIME)
#: How often a refreshing client asks again for microdescriptors it still lacks.
MICRODESC_RETRY = 60


@dataclass(frozen=True)
class BootstrapEvent:
    """A bootstrap step (C tor's percentages and tags), or a warning about a failure."""

    percent: int
    tag: str
    summary: str
    warning: str | None = None


@dataclass
class _MdFetch:
    """Shared state of one round of microdescriptor workers."""

    batches: deque[list[bytes]]
    sources: Sequence[DirSource]
    found: dict[bytes, Microdesc] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


class DirClient:
    """Bootstraps and refreshes the directory (see the module docstring)."""

    def __init__(
        self,
        rt: Runtime,
        config: DirConfig,
        open_dir_stream: OpenDirStream,
        *,
        cache: DirCache | None = None,
        on_progress: Callable[[BootstrapEvent], None] | None = None,
        on_netdir: Callable[[NetDir], None] | None = None,
    ) -> None:
        self._rt = rt
        self.config = config
        self._open = open_dir_stream
        self._cache = cache
        self._on_progress = on_progress
        self._on_netdir = on_netdir
        self._certs: dict[tuple[bytes, bytes], AuthCert] = {}
        self._spare_mds: dict[bytes, Microdesc] = {}  # cached mds not yet matched
        self._percent = 0
        self._bootstrapping = False
        self._changed = Event(rt)
        self.netdir: NetDir | None = None

    # --- public API -------------------------------------------------------------
    async def bootstrap(self) -> NetDir:
        """A NetDir with enough paths to build circuits, or BootstrapError."""
        self._bootstrapping = True
        try:
            return await self._bootstrap()
        finally:
            self._bootstrapping = False

    def start_refresh(self) -> Task[None]:
        """Run :meth:`run_refresh` as a task (cancel it to stop)."""
        return self._rt.spawn(self.run_refresh(), name="dir-refresh")

    async def run_refresh(self) -> None:
        """Forever: wait for the next fetch time, fetch, publish (needs a bootstrapped client).

        The consensus is refetched at the dir-spec §5.1 time; microdescriptors
        still missing are asked for again every :data:`MICRODESC_RETRY` seconds.
        Failures back off as dir-spec §5.5 says.
        """
        if self.netdir is None:
            raise LocalError("run_refresh needs a bootstrapped DirClient")
        backoff = Backoff(self._rt.rng, cap=self.config.retry_cap)
        while True:
            current, now = self.netdir, self._now()
            when = consensus_fetch_time(current.lifetime, now, self._rt.rng)
            if current.missing_microdescs:
                when = min(when, now + MICRODESC_RETRY)
            await self._rt.sleep(max(0.0, when - now))
            try:
                await self._refresh_once(current)
                backoff.reset()
            except BootstrapError as exc:
                delay = backoff.next()
                self._warn(f"directory refresh failed, retrying in {delay} s: {exc}")
                await self._rt.sleep(delay)

    async def wait_for_update(self, current: NetDir | None) -> NetDir:
        """Wait until a NetDir other than ``current`` is published, and return it."""
        while self.netdir is current or self.netdir is None:
            await self._changed.wait()
        return self.netdir

    # --- bootstrap ----------------------------------------------------------------
    def _now(self) -> int:
        return int(self._rt.wallclock())

    async def _bootstrap(self) -> NetDir:
        self._emit(0, "starting", "Starting")
        netdir = self._load_cache(self._now())
        if netdir is None or not netdir.lifetime.is_live(self._now()):
            try:
                netdir = await self._fetch_consensus(self._bootstrap_sources(), current=netdir)
            except BootstrapError as exc:
                if netdir is None or not netdir.lifetime.is_reasonably_live(self._now()):
                    raise
                self._warn(f"using the cached, stale consensus: {exc}")
        netdir = await self._fetch_microdescs(netdir, self._bootstrap_sources())
        if not netdir.has_enough_paths():
            pct = int(100 * netdir.frac_paths())
            raise BootstrapError(
                f"not enough directory information: {pct}% of paths, "
                f"{len(netdir.missing_microdescs)} microdescriptors missing"
            )
        self._publish(netdir)
        self._emit(75, "enough_dirinfo", "Loaded enough directory info to build circuits")
        return netdir

    async def _refresh_once(self, current: NetDir) -> None:
        """A newer consensus once the current one is no longer fresh; missing microdescs."""
        sources = self._refresh_sources(current)
        netdir = current
        if self._now() >= current.lifetime.fresh_until:
            netdir = await self._fetch_consensus(sources, current=current)
        netdir = await self._fetch_microdescs(netdir, sources)
        enough = netdir.has_enough_paths()
        if netdir is not current and (enough or not current.has_enough_paths()):
            self._publish(netdir)
        if not enough:
            raise BootstrapError(
                f"the new consensus lacks {len(netdir.missing_microdescs)} microdescriptors"
            )
        if netdir.missing_microdescs and netdir is current:
            raise BootstrapError(f"{len(netdir.missing_microdescs)} microdescriptors unavailable")

    def _bootstrap_sources(self) -> list[DirSource]:
        sources = sorted(self.config.sources, key=lambda s: (s.rsa_id, s.ipv4))
        self._rt.rng.shuffle(sources)
        return sources

    def _refresh_sources(self, netdir: NetDir) -> list[DirSource]:
        """A few caches from the consensus (dir-spec §5.1), then the configured sources."""
        caches: list[DirSource] = []
        chosen: list[Relay] = []
        for _ in range(self.config.refresh_caches):
            try:
                relay = choose_dir_cache(netdir, self._rt.rng, avoid=chosen)
            except NoPathError:
                break
            chosen.append(relay)
            caches.append(DirSource.from_relay(relay))
        return caches + self._bootstrap_sources()

    # --- the cache --------------------------------------------------------------------
    def _load_cache(self, now: int) -> NetDir | None:
        cache = self._cache
        if cache is None:
            return None
        try:
            self._add_certs(self._verified_certs(self._cache_read(cache.load_certs), now))
        except GotorError as exc:
            self._warn(f"ignoring the damaged certificate cache: {exc}")
        try:
            mds = parse_microdescs(self._cache_read(cache.load_microdescs))
        except GotorError as exc:
            self._warn(f"ignoring the damaged microdescriptor cache: {exc}")
            mds = []
        self._spare_mds = {md.digest: md for md in mds}
        text = self._cache_read(cache.load_consensus)
        if not text:
            return None
        try:
            consensus = parse_consensus(text).verify(
                self._certs.values(), self.config.authorities, now=now, tolerance=_LIVE_TOLERANCE
            )
            return NetDir(consensus, mds)
        except GotorError as exc:  # LocalError too: an ns-flavour file
            self._warn(f"ignoring the cached consensus: {exc}")
            return None

    # The cache only saves fetches: a file that cannot be read or written (permissions,
    # a full disk) is a warning, never a failed bootstrap or a dead refresh task.
    def _cache_read(self, load: Callable[[], bytes | None]) -> bytes:
        try:
            return load() or b""
        except OSError as exc:
            self._warn(f"cannot read the directory cache: {exc}")
            return b""

    def _cache_write(self, store: Callable[[bytes], None], data: bytes) -> None:
        try:
            store(data)
        except OSError as exc:
            self._warn(f"cannot write the directory cache: {exc}")

    def _verified_certs(self, text: bytes, now: int) -> list[AuthCert]:
        out = []
        for unverified in parse_authcerts(text):
            try:
                cert = unverified.verify(now=now)
            except VerificationError:
                continue  # expired or forged: simply not usable
            if cert.fingerprint in self.config.authorities:
                out.append(cert)
        return out

    def _add_certs(self, certs: Iterable[AuthCert]) -> bool:
        added = False
        for cert in certs:
            key = (cert.fingerprint, cert.signing_key_digest)
            if key not in self._certs:
                self._certs[key] = cert
                added = True
        return added

    def _store_certs(self) -> None:
        if self._cache is not None:
            ordered = sorted(self._certs.items())
            self._cache_write(self._cache.store_certs,
                              b"".join(_ends_nl(c.text) for _, c in ordered))

    def _store_microdescs(self, netdir: NetDir) -> None:
        if self._cache is not None:
            self._cache_write(self._cache.store_microdescs,
                              b"".join(_ends_nl(md.text) for md in netdir.microdescs))

    # --- the consensus ------------------------------------------------------------------
    async def _fetch_consensus(self, sources: Sequence[DirSource], *,
                               current: NetDir | None) -> NetDir:
        reasons = []
        for source in sources:
            try:
                return await self._consensus_from(source, current)
            except GotorError as exc:
                reasons.append(f"{source}: {exc}")
                self._warn(f"consensus from {source} failed: {exc}")
        raise BootstrapError(
            "no directory source gave a usable consensus: " + "; ".join(reasons)
        )

    async def _consensus_from(self, source: DirSource, current: NetDir | None) -> NetDir:
        self._emit(20, "requesting_status", f"Asking {source} for a networkstatus consensus")
        deadline = self.config.request_timeout
        unverified, text = await fetch_consensus(self._rt, self._open, source, deadline=deadline)
        self._emit(25, "loading_status", "Loading networkstatus consensus")
        now, window = self._now(), unverified.validity
        if not window.contains(now, _LIVE_TOLERANCE):
            raise VerificationError(f"consensus valid {window} is not reasonably live")
        if current is not None and window.not_before <= current.lifetime.valid_after:
            raise VerificationError("consensus is not newer than the one we have")
        await self._get_missing_certs(source, unverified, now)
        consensus = unverified.verify(
            self._certs.values(), self.config.authorities, now=now, tolerance=_LIVE_TOLERANCE
        )
        known = [*self._spare_mds.values(), *(current.microdescs if current else ())]
        netdir = NetDir(consensus, known)
        if self._cache is not None:
            self._cache_write(self._cache.store_consensus, text)
        return netdir

    async def _get_missing_certs(
        self, source: DirSource, unverified: UnverifiedConsensus, now: int
    ) -> None:
        report = unverified.check_signatures(
            self._certs.values(), self.config.authorities, now=now, tolerance=_LIVE_TOLERANCE
        )
        if report.quorum or not report.missing_keys:
            return
        identities = sorted({ident for ident, _ in report.missing_keys})
        self._emit(40, "loading_keys", f"Loading {len(identities)} authority key certs")
        certs = await fetch_certs(self._rt, self._open, source, identities, now=now,
                                  deadline=self.config.request_timeout)
        if self._add_certs(c for c in certs if c.fingerprint in self.config.authorities):
            self._store_certs()

    # --- microdescriptors ---------------------------------------------------------------
    async def _fetch_microdescs(self, netdir: NetDir, sources: Sequence[DirSource]) -> NetDir:
        batches = microdesc_batches(netdir.missing_microdescs)
        if not batches:
            self._store_microdescs(netdir)
            return netdir
        n = len(netdir.missing_microdescs)
        self._emit(45, "requesting_descriptors", f"Asking for {n} microdescriptors")
        state = _MdFetch(deque(batches), list(sources))
        workers = [
            self._rt.spawn(self._md_worker(state, netdir, k), name=f"microdescs-{k}")
            for k in range(min(self.config.parallel_fetches, len(batches)))
        ]
        try:
            for task in workers:
                await task
        finally:
            for task in workers:
                task.cancel("microdescriptor fetch abandoned")
        for failure in state.failures:
            self._warn(failure)
        if not state.found:
            return netdir
        updated = netdir.with_microdescs(state.found.values())
        self._store_microdescs(updated)
        return updated

    async def _md_worker(self, state: _MdFetch, netdir: NetDir, k: int) -> None:
        while state.batches:
            batch = state.batches.popleft()
            await self._md_batch(state, batch, start=k)
            self._progress_mds(netdir, state)

    async def _md_batch(self, state: _MdFetch, batch: list[bytes], *, start: int) -> None:
        """Fetch one batch, failing over across every source (parts may come from several)."""
        remaining = set(batch)
        n = len(state.sources)
        for i in range(n):
            source = state.sources[(start + i) % n]
            try:
                mds = await fetch_microdescs(self._rt, self._open, source, sorted(remaining),
                                             deadline=self.config.request_timeout)
            except GotorError as exc:
                self._warn(f"microdescriptors from {source} failed: {exc}")
                continue
            for md in mds:
                state.found[md.digest] = md
                remaining.discard(md.digest)
            if not remaining:
                return
        state.failures.append(f"{len(remaining)} microdescriptors unavailable from every source")

    def _progress_mds(self, netdir: NetDir, state: _MdFetch) -> None:
        """C tor's count_loading_descriptors_progress: 50 + fraction of needed paths x 24."""
        if not self._bootstrapping:
            return
        # No NetDir per batch (each would join every relay again): the fraction and the
        # count, as the NetDir with these microdescriptors would give them.
        needed = netdir.params.min_paths_for_circs_pct / 100
        fraction = min(1.0, netdir.frac_paths(state.found) / needed)
        routers = netdir.consensus.routers
        have = len(netdir.relays) + sum(1 for rs in routers if rs.md_digest in state.found)
        self._emit(50 + int(fraction * 24), "loading_descriptors",
                   f"Loading relay descriptors ({have}/{len(routers)})")

    # --- publishing and progress ----------------------------------------------------------
    def _publish(self, netdir: NetDir) -> None:
        self.netdir = netdir
        changed, self._changed = self._changed, Event(self._rt)
        changed.set()
        self._rt.trace("netdir", valid_after=netdir.lifetime.valid_after,
                       relays=len(netdir.relays), missing=len(netdir.missing_microdescs))
        if self._on_netdir is not None:
            self._on_netdir(netdir)

    def _emit(self, percent: int, tag: str, summary: str) -> None:
        if not self._bootstrapping or percent < self._percent:
            return
        self._percent = percent
        self._rt.trace("bootstrap", percent=percent, tag=tag)
        if self._on_progress is not None:
            self._on_progress(BootstrapEvent(percent, tag, summary))

    def _warn(self, text: str) -> None:
        self._rt.trace("dir-warning", text=text)
        if self._on_progress is not None and self._bootstrapping:
            self._on_progress(BootstrapEvent(self._percent, "warning", text, warning=text))


def _ends_nl(text: bytes) -> bytes:
    return text if text.endswith(b"\n") else text + b"\n"
