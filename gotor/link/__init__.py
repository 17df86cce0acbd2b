"""Channels: TLS links to relays and their handshake (tor-spec §2-§4).

* :mod:`~gotor.link.handshake` - the initiator's link handshake as a sans-IO machine
* :mod:`~gotor.link.channel` - :class:`Channel` (async driver), :class:`ChanTarget`,
  the :class:`CircSink` protocol circuits implement
* :mod:`~gotor.link.pool` - :class:`ChannelPool`, one channel per relay identity
"""

from gotor.link.channel import Channel, ChanTarget, CircSink
from gotor.link.handshake import LINK_VERSIONS, HandshakeResult, InitiatorHandshake
from gotor.link.pool import ChannelPool

__all__ = ["LINK_VERSIONS", "ChanTarget", "Channel", "ChannelPool", "CircSink",
           "HandshakeResult", "InitiatorHandshake"]
