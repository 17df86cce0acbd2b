"""Streams over circuits: BEGIN/BEGIN_DIR/RESOLVE, DATA, END, stream SENDMEs (tor-spec §6-§7).

* :mod:`~gotor.stream.machine` - :class:`StreamMachine` and :class:`HalfClosedStream`, sans-IO
* :mod:`~gotor.stream.stream` - :class:`Stream` (a ByteStream), :class:`Resolver`
* :mod:`~gotor.stream.reasons` - END reasons as error messages

Circuits create streams (``Circuit.open_stream``, ``open_dir_stream``, ``resolve``);
this package does not import gotor.circuit: a stream reaches its circuit through the
:class:`StreamPort` protocol.
"""

from gotor.stream.machine import HalfClosedStream, StreamKind, StreamMachine, StreamState
from gotor.stream.reasons import end_reason_text
from gotor.stream.stream import Resolver, Stream, StreamPort, StreamSink

__all__ = ["HalfClosedStream", "Resolver", "Stream", "StreamKind", "StreamMachine",
           "StreamPort", "StreamSink", "StreamState", "end_reason_text"]
