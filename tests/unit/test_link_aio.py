"""The same client stack under the asyncio binding: real TLS on loopback (127.0.0.1).

A minimal responder, written against the runtime interface on gotor's pure layer,
answers the link handshake, CREATE_FAST and a BEGIN_DIR; the client's CERTS check runs
on the certificate Python's ssl module hands over, as it would against a real relay.
"""

from __future__ import annotations

import asyncio

import pytest
from stack_helpers import ScriptedPath, fake_relay, responder_flight

from gotor.cells.chan import ChanCmd
from gotor.cells.codec import ChannelCodec
from gotor.cells.relaymsg import BeginDir, Connected, Data, End, EndReason
from gotor.circuit import CircParams, Circuit
from gotor.errors import ChannelError
from gotor.link.channel import ChanTarget
from gotor.link.pool import ChannelPool
from gotor.runtime.aio import AsyncioRuntime
from gotor.runtime.api import ByteStream, Runtime
from simnet.tls import cert_der, make_credentials
from simnet.world import World

CREDS = make_credentials(World(5), "aio-relay")
RELAY = fake_relay("aio-relay", cert_der(CREDS))
REPLY = b"HTTP/1.0 200 OK\r\n\r\nhello over asyncio"


async def _responder(rt: Runtime, stream: ByteStream) -> None:
    buf, pre, codec = bytearray(), ChannelCodec(), ChannelCodec(5)
    while pre.decode(buf) is None:
        buf += await stream.read()
    stream.write(responder_flight(RELAY, now=rt.wallclock()))
    path = ScriptedPath([RELAY])
    while True:
        while (cell := codec.decode(buf)) is not None:
            if cell.cmd == ChanCmd.CREATE_FAST:
                stream.write(codec.encode(path.answer_create(cell)))
            elif cell.cmd == ChanCmd.RELAY:
                _hop, rc, msg = path.forward(cell)
                replies = {BeginDir: (Connected(),), Data: (Data(REPLY), End(EndReason.DONE))}
                for reply in replies.get(type(msg), ()):
                    stream.write(codec.encode(path.backward(0, reply, rc.stream_id)))
        data = await stream.read()
        if not data:
            return
        buf += data


async def _main(wrong_identity: bool) -> bytes:
    rt = AsyncioRuntime()
    listener = await rt.listen("127.0.0.1", 0, lambda s: _responder(rt, s), tls=CREDS)
    port = listener.address[1]
    try:
        rsa_id = fake_relay("someone else").rsa_id if wrong_identity else RELAY.rsa_id
        pool = ChannelPool(rt)
        circ = await Circuit.create_fast(rt, pool, ChanTarget("127.0.0.1", port, rsa_id),
                                         CircParams())
        stream = await circ.open_dir_stream()
        stream.write(b"GET / HTTP/1.0\r\n\r\n")
        parts = []
        while data := await stream.read():
            parts.append(data)
        pool.close_all()
        return b"".join(parts)
    finally:
        await listener.aclose()


def test_directory_stream_over_real_tls() -> None:
    assert asyncio.run(asyncio.wait_for(_main(False), 30)) == REPLY


def test_identity_mismatch_over_real_tls() -> None:
    with pytest.raises(ChannelError, match="relay identity mismatch"):
        asyncio.run(asyncio.wait_for(_main(True), 30))
