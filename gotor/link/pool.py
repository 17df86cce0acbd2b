"""The channel pool: one open channel per relay, shared by every circuit through it.

tor-spec §5.3 step 3 ("if not already connected to the first router ... open a new
connection") and §5.1.2 (an Ed25519/RSA pair must match what a channel proved): the pool
keys channels by RSA identity.  Concurrent requests for one relay share one handshake;
a closed channel leaves the pool at once, so the next request opens a fresh one; a
failed handshake is reported to every waiter and not cached.
"""

from __future__ import annotations

from gotor.errors import Cancelled, ChannelError
from gotor.link.channel import Channel, ChanTarget
from gotor.runtime.api import Runtime, Task
from gotor.runtime.sync import wait_finished


class ChannelPool:
    """Channels by relay RSA identity (see the module docstring)."""

    def __init__(self, rt: Runtime, *, connect_timeout: float = 30.0) -> None:
        self._rt = rt
        self._timeout = connect_timeout
        self._open: dict[bytes, Channel] = {}
        self._pending: dict[bytes, Task[Channel]] = {}

    async def get(self, target: ChanTarget) -> Channel:
        """An open channel to ``target``'s relay: an existing one, or a new handshake."""
        chan = self._open.get(target.rsa_id)
        if chan is None or chan.closed:
            task = self._pending.get(target.rsa_id)
            if task is None:
                task = self._start(target)
            try:
                chan = await task
            except Cancelled:
                if task.cancelled():  # the pool was closed under us, we were not cancelled
                    raise ChannelError(f"channel to {target.name}: {task.cancel_reason}") from None
                raise
        _check_identity(chan, target)
        return chan

    def _start(self, target: ChanTarget) -> Task[Channel]:
        rsa_id = target.rsa_id
        task = self._rt.spawn(Channel.connect(self._rt, target, timeout_s=self._timeout),
                              name=f"chan-connect {target.name[:8]}")
        self._pending[rsa_id] = task

        def finished(t: Task[Channel]) -> None:
            if self._pending.get(rsa_id) is t:
                del self._pending[rsa_id]
            if t.exception() is None:  # also marks a failure as seen: waiters report it
                self._add(t.result())

        task.add_done_callback(finished)
        return task

    def _add(self, chan: Channel) -> None:
        rsa_id = chan.peer_rsa_id
        self._open[rsa_id] = chan

        def forget(c: Channel) -> None:
            if self._open.get(rsa_id) is c:
                del self._open[rsa_id]

        chan.on_close(forget)

    def channels(self) -> list[Channel]:
        """The open channels, in the order they were opened."""
        return [c for c in self._open.values() if not c.closed]

    def close_all(self, reason: str = "pool closed") -> None:
        for chan in list(self._open.values()):
            chan.close(reason)
        for task in list(self._pending.values()):
            task.cancel(reason)

    async def aclose(self, reason: str = "pool closed") -> None:
        """:meth:`close_all`, then wait until no task of any channel is left."""
        chans, pending = list(self._open.values()), list(self._pending.values())
        self.close_all(reason)
        await wait_finished(self._rt, pending)
        for chan in chans:
            await chan.wait_closed()


def _check_identity(chan: Channel, target: ChanTarget) -> None:
    # A channel proved one Ed25519 identity; a request naming another one for the same
    # RSA identity must fail rather than open a second channel (tor-spec §5.1.2).
    if target.ed_id is not None and chan.peer_ed_id != target.ed_id:
        raise ChannelError(
            f"relay identity mismatch: {target.name} proved Ed25519 identity "
            f"{chan.peer_ed_id.hex()}, expected {target.ed_id.hex()}"
        )
