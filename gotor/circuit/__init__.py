"""Circuits: CREATE2/CREATE_FAST, EXTEND2, relay crypto, circuit flow control (tor-spec §5-§7).

* :mod:`~gotor.circuit.params` - :class:`HopSpec`, :class:`CircParams`
* :mod:`~gotor.circuit.handshake` - the client handshakes (ntor, ntor-v3, CREATE_FAST)
* :mod:`~gotor.circuit.sendme` - circuit windows and authenticated SENDMEs
* :mod:`~gotor.circuit.machine` - :class:`CircuitMachine`, the sans-IO circuit
* :mod:`~gotor.circuit.circuit` - :class:`Circuit` (async driver), :func:`build_circuit`
"""

from gotor.circuit.circuit import Circuit, build_circuit
from gotor.circuit.machine import CircState, CircuitMachine
from gotor.circuit.params import CircParams, HopSpec

__all__ = ["CircParams", "CircState", "Circuit", "CircuitMachine", "HopSpec", "build_circuit"]
