"""Key-derivation functions of the circuit handshakes (tor-spec §5.2).

* KDF-TOR (tor-spec §5.2.1): SHA-1 in counter mode, ``K = H(K0|[00]) | H(K0|[01]) | ...``.
  Used by CREATE_FAST (and TAP, which gotor does not implement).
* KDF-RFC5869 (tor-spec §5.2.2, proposal 216): HKDF-SHA256 with ``salt = t_key``,
  ``info = m_expand`` and ``IKM = secret_input``; the ntor handshake's KDF.
* SHAKE-256 as an extendable-output KDF (proposal 332 ``KDF(s, t)``, rend-spec-v3):
  :class:`ShakeStream` reads it as one continuous keystream.

Key material for relay crypto always starts at Df, whichever handshake produced it:
``Df(20) | Db(20) | Kf(16) | Kb(16) | KH(20)`` (see :mod:`gotor.crypto.relaycrypto`).
"""

from __future__ import annotations

import hashlib

from gotor.crypto.primitives import hkdf_sha256
from gotor.errors import LocalError

# tor-spec §5.2.1: the counter is a single octet, so at most 256 SHA-1 blocks.
KDF_TOR_MAX = 256 * 20

# tor-spec §5.1.4 / proposal 216: the ntor tweak strings used as HKDF salt and info.
NTOR_PROTOID = b"ntor-curve25519-sha256-1"
NTOR_T_KEY = NTOR_PROTOID + b":key_extract"
NTOR_M_EXPAND = NTOR_PROTOID + b":key_expand"


def kdf_tor(k0: bytes, length: int) -> bytes:
    """KDF-TOR: ``length`` bytes of ``SHA1(K0|[i])`` for i = 0, 1, 2, ..."""
    if not 0 <= length <= KDF_TOR_MAX:
        raise LocalError(f"KDF-TOR can produce at most {KDF_TOR_MAX} bytes, not {length}")
    blocks = (length + 19) // 20
    return b"".join(hashlib.sha1(k0 + bytes((i,))).digest() for i in range(blocks))[:length]


def ntor_kdf(secret_input: bytes, length: int) -> bytes:
    """KDF-RFC5869 as ntor uses it: HKDF-SHA256(IKM=secret_input, salt=t_key, info=m_expand).

    HKDF-Extract with salt t_key is exactly ``KEY_SEED = H(secret_input, t_key)`` of
    tor-spec §5.1.4, so this is the expansion of KEY_SEED described in §5.2.2.
    """
    if not 0 <= length <= 255 * 32:
        raise LocalError(f"HKDF-SHA256 can produce at most {255 * 32} bytes, not {length}")
    return hkdf_sha256(secret_input, salt=NTOR_T_KEY, info=NTOR_M_EXPAND, length=length)


class ShakeStream:
    """The output of SHAKE-256(``data``) read sequentially, as a keystream.

    hashlib's SHAKE has no incremental squeeze, so the output is recomputed into a
    buffer that at least doubles each time it runs short: reading n bytes in total
    costs O(n) hashing overall, however small the individual reads.
    """

    __slots__ = ("_buf", "_hash", "_pos")

    def __init__(self, data: bytes) -> None:
        self._hash = hashlib.shake_256(data)
        self._buf = b""
        self._pos = 0

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes of the stream."""
        if n < 0:
            raise LocalError("cannot read a negative number of bytes")
        end = self._pos + n
        if end > len(self._buf):
            self._buf = self._hash.digest(max(end, 2 * len(self._buf), 64))
        out = self._buf[self._pos : end]
        self._pos = end
        return out
