"""The directory client (dir-spec §4-§6): requests, HTTP, schedule, cache, bootstrap.

* :mod:`~gotor.dir.http` — HTTP/1.0 request bytes and a sans-IO response parser;
* :mod:`~gotor.dir.requests` — request paths, microdescriptor batching, size limits;
* :mod:`~gotor.dir.schedule` — refetch time, liveness, retry backoff (pure);
* :mod:`~gotor.dir.cache` — the data-directory files, written atomically;
* :mod:`~gotor.dir.fetch` — one request to one :class:`~gotor.dir.fetch.DirSource`;
* :mod:`~gotor.dir.config` — :class:`~gotor.dir.config.DirConfig`, C tor's DirAuthority lines;
* :mod:`~gotor.dir.bootstrap` — :class:`~gotor.dir.bootstrap.DirClient`: bootstrap,
  fail-over, verification, refresh, publication of :class:`~gotor.netdir.NetDir`.
"""

from gotor.dir.bootstrap import BootstrapEvent, DirClient
from gotor.dir.cache import DirCache
from gotor.dir.config import DirConfig, parse_dir_authority
from gotor.dir.fetch import DirResponseError, DirSource, OpenDirStream, SourceKind

__all__ = [
    "BootstrapEvent",
    "DirCache",
    "DirClient",
    "DirConfig",
    "DirResponseError",
    "DirSource",
    "OpenDirStream",
    "SourceKind",
    "parse_dir_authority",
]
