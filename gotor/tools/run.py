"""``gotor run -f TORRC``: run gotor as a Tor client, started the way C tor is started.

    gotor run -f TORRC

Reads the torrc subset of :mod:`gotor.torrc` (``DirAuthority``, ``SocksPort``,
``DataDirectory``, ``TestingTorNetwork``, ``Log``; other options are ignored
with a warning), bootstraps a :class:`~gotor.client.TorClient` on the
production :class:`~gotor.runtime.aio.AsyncioRuntime`, logs its progress in C
tor's words (``Bootstrapped 100% (done): Done``) and serves SOCKS until
SIGINT or SIGTERM (the SOCKS port opens before the bootstrap, as C tor's: early
requests wait for it), then closes every circuit and exits 0.  As C tor does, a
bootstrap that fails (no authority reachable yet) is retried, with a growing
delay, until it succeeds or the process is told to stop.  A torrc that cannot
be used is one line on stderr and exit status 1; no traceback ever reaches
the terminal (errors of our own code are logged as one line, with the
traceback only in ``debug`` logs).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from gotor.client import TorClient
from gotor.config import ClientConfig
from gotor.dir import BootstrapEvent
from gotor.errors import BootstrapError, Cancelled, GotorError
from gotor.runtime.aio import AsyncioRuntime
from gotor.torrc import SEVERITIES, LogTarget, Torrc, read_torrc

__all__ = ["register", "run", "serve"]

log = logging.getLogger("gotor")

#: C tor's "notice" sits between INFO and WARNING.
NOTICE = 25
_LEVELS = dict(zip(SEVERITIES, (logging.DEBUG, logging.INFO, NOTICE, logging.WARNING,
                                logging.ERROR), strict=True))
_NAMES = {level: name for name, level in _LEVELS.items()}
#: Waits between failed bootstrap attempts (the last repeats).
RETRY_DELAYS = (5.0, 10.0, 20.0, 40.0, 60.0)


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the Tor client with a torrc (SOCKS proxy)",
                       description="Run gotor as a Tor client configured by a torrc: "
                       "bootstrap, then serve SOCKS until SIGINT/SIGTERM.")
    p.add_argument("-f", "--torrc", dest="torrc", type=Path, required=True, metavar="TORRC",
                   help="the configuration file (the subset of C tor's torrc that gotor reads: "
                   "DirAuthority, SocksPort, DataDirectory, TestingTorNetwork, Log)")
    p.set_defaults(run=run)


class _TorFormatter(logging.Formatter):
    """C tor's log lines: ``Nov 22 05:34:03.120 [notice] message``."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__()
        self._tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime(record.created))
        level = _NAMES.get(record.levelno, record.levelname.lower())
        text = f"{stamp}.{int(record.msecs):03d} [{level}] {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            if self._tracebacks:
                text += "\n" + self.formatException(record.exc_info)
            else:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        return text


class _Band(logging.Filter):
    def __init__(self, high: int) -> None:
        super().__init__()
        self._high = high

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno <= self._high


def _handler(target: LogTarget) -> logging.Handler:
    handler: logging.Handler
    if target.target == "file" and target.path is not None:
        target.path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(target.path)
    else:
        stream: TextIO = sys.stdout if target.target == "stdout" else sys.stderr
        handler = logging.StreamHandler(stream)
    handler.setLevel(_LEVELS[target.low])
    handler.addFilter(_Band(_LEVELS[target.high]))
    handler.setFormatter(_TorFormatter(tracebacks=target.low == "debug"))
    return handler


def setup_logging(conf: Torrc) -> list[logging.Handler]:
    """Send every logger's records to the torrc's Log targets (C tor's format)."""
    logging.addLevelName(NOTICE, "NOTICE")
    root = logging.getLogger()
    handlers = [_handler(t) for t in conf.logs]
    for h in handlers:
        root.addHandler(h)
    root.setLevel(min(_LEVELS[t.low] for t in conf.logs))
    return handlers


def _progress(event: BootstrapEvent) -> None:
    if event.warning is not None:
        log.warning("Problem bootstrapping: %s", event.warning)
    else:
        log.log(NOTICE, "Bootstrapped %d%% (%s): %s", event.percent, event.tag, event.summary)


async def _client_loop(config: ClientConfig, stop: asyncio.Event,
                       serving: asyncio.Event) -> None:
    """One client: its SOCKS port opens at once, as C tor's does, and stays open while
    a bootstrap that fails (no authority reachable yet) is tried again and again."""
    client = TorClient(AsyncioRuntime(), config, on_progress=_progress)
    try:
        await client.open_socks()
        if client.socks_address is not None:
            host, port = client.socks_address
            log.log(NOTICE, "Opened Socks listener connection (ready) on %s:%d", host, port)
        for attempt in itertools.count():
            try:
                await client.start()
                break
            except BootstrapError as exc:
                log.warning("Bootstrap failed: %s", exc)
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            log.log(NOTICE, "Trying to bootstrap again in %.0f seconds.", delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except TimeoutError:
                pass
        serving.set()
        await stop.wait()
        log.log(NOTICE, "Closing %d circuits and the SOCKS listener.",
                len(client.circmgr.circuits()))
    finally:
        await client.aclose()


async def serve(config: ClientConfig) -> int:
    """Run a client until SIGINT/SIGTERM; the exit status."""
    loop = asyncio.get_running_loop()
    stop, serving = asyncio.Event(), asyncio.Event()
    main = asyncio.ensure_future(_client_loop(config, stop, serving))

    def interrupt(name: str) -> None:
        if not stop.is_set():
            log.log(NOTICE, "Catching signal %s, exiting cleanly.", name)
        stop.set()
        if not serving.is_set() and not main.done():
            main.cancel()  # still bootstrapping: nothing to finish, stop at once

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig.name)
    try:
        await main
    except (asyncio.CancelledError, Cancelled):
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def run(args: argparse.Namespace) -> int:
    conf = read_torrc(args.torrc)
    config = conf.client_config()  # a torrc that cannot work fails before anything starts
    handlers = setup_logging(conf)
    try:
        log.log(NOTICE, "gotor starting with the configuration in %s.", args.torrc)
        for warning in conf.warnings:
            log.warning("%s", warning)
        status = asyncio.run(serve(config))
        log.log(NOTICE, "gotor exited.")
        return status
    except GotorError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:  # the data directory (or another file) cannot be used: not a bug
        log.error("cannot use %s: %s", exc.filename or "a file", exc.strerror or exc)
        return 1
    except Exception as exc:  # a bug of ours: one log line, not a traceback
        log.error("gotor stopped on an internal error: %r", exc, exc_info=exc)
        return 1
    finally:
        for h in handlers:
            logging.getLogger().removeHandler(h)
            h.close()
