"""Pure cell codecs: channel framing, channel messages, relay cells and relay messages.

No state, no crypto, no I/O (tor-spec §3-§7, rend-spec-v3 §3-§4).  Modules:

* :mod:`~gotor.cells.chan` - ChanCmd, ChanCell, circuit-ID width rules
* :mod:`~gotor.cells.codec` - ChannelCodec: bytes <-> ChanCell
* :mod:`~gotor.cells.chanmsg` - channel message bodies, ``decode_chan_msg``
* :mod:`~gotor.cells.relay` - RelayCmd, the relay header: ``encode/decode_relay_payload``
* :mod:`~gotor.cells.relaymsg` - stream/circuit relay messages, ``decode_relay_msg``
* :mod:`~gotor.cells.hsmsg` - onion-service relay messages, the INTRODUCE plaintext
* :mod:`~gotor.cells.linkspec`, :mod:`~gotor.cells.ext` - link specifiers, extension fields
* :mod:`~gotor.cells.common` - the Message base class and small helpers

Decoders raise only :class:`gotor.errors.ProtocolError` on malformed input;
encoders raise :class:`gotor.errors.LocalError` for values they cannot encode.
"""
