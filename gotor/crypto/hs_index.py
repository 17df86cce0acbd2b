"""Onion-service time periods and HSDir hash-ring positions (rend-spec-v3 §2.2, §2.3.1).

When and where a descriptor lives:

* §2.2.1 [TIME-PERIODS]: time is cut into periods of ``hsdir-interval``
  minutes (consensus parameter, default 1440), counted from the epoch shifted
  by a *rotation offset* of 12 voting periods (12 h on the real network), so
  that periods start in step with the shared-random schedule.
* §2.2.3 [WHERE-HSDESC]: a descriptor of blinded key ``A'`` is stored at
  ``hs_index`` positions on a ring where each HSDir sits at its ``hsdir_index``.
* §2.3.1: without a consensus shared random value, everyone uses the
  "disaster" SRV instead.

All times are POSIX seconds passed in by the caller.  C tor's arithmetic is
kept exactly: the period *number* uses whole minutes (the rotation offset is
truncated to minutes, hs_get_time_period_num), while period *start times* add
the offset in seconds (hs_get_start_time_of_next_time_period).
"""

from __future__ import annotations

from gotor.crypto.hs_keys import DEFAULT_PERIOD_LENGTH_MINUTES, int_8, require_len
from gotor.crypto.primitives import sha3_256
from gotor.errors import LocalError

#: 12 voting periods of one hour (dir-spec: SHARED_RANDOM_N_ROUNDS = 12).
SRV_ROUNDS_PER_PHASE = 12
DEFAULT_VOTING_INTERVAL_SECONDS = 3600
DEFAULT_ROTATION_OFFSET_SECONDS = SRV_ROUNDS_PER_PHASE * DEFAULT_VOTING_INTERVAL_SECONDS


def rotation_offset_seconds(voting_interval_seconds: int) -> int:
    """The rotation offset: one SRV phase, 12 voting intervals (§2.2.1)."""
    return SRV_ROUNDS_PER_PHASE * voting_interval_seconds


def period_length_for_testing_network(voting_interval_seconds: int) -> int:
    """Period length in minutes under TestingTorNetwork.

    C tor (get_time_period_length) then ignores ``hsdir-interval`` and uses one
    SRV protocol run, 2 phases of 12 voting intervals, so periods visibly
    rotate: 240 s (4 minutes) for a 10-second voting interval.
    """
    return 2 * SRV_ROUNDS_PER_PHASE * voting_interval_seconds // 60


def _check_period(length_minutes: int, offset_seconds: int) -> None:
    if length_minutes <= 0:
        raise LocalError(f"time period length must be positive, got {length_minutes}")
    if offset_seconds < 0:
        raise LocalError(f"rotation offset must not be negative, got {offset_seconds}")


def time_period_number(
    now: float,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
    rotation_offset: int = DEFAULT_ROTATION_OFFSET_SECONDS,
) -> int:
    """The number of the time period containing ``now`` (POSIX seconds).

    ``rotation_offset`` is in seconds (see :func:`rotation_offset_seconds`).
    """
    _check_period(period_length_minutes, rotation_offset)
    minutes = int(now) // 60 - rotation_offset // 60
    if minutes < 0:
        raise LocalError(f"time {now} lies before the first time period")
    return minutes // period_length_minutes


def time_period_start(
    period_num: int,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
    rotation_offset: int = DEFAULT_ROTATION_OFFSET_SECONDS,
) -> int:
    """POSIX time at which period ``period_num`` begins (it ends where the next begins)."""
    _check_period(period_length_minutes, rotation_offset)
    if period_num < 0:
        raise LocalError(f"time period number must not be negative, got {period_num}")
    return period_num * period_length_minutes * 60 + rotation_offset


def time_period_bounds(
    period_num: int,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
    rotation_offset: int = DEFAULT_ROTATION_OFFSET_SECONDS,
) -> tuple[int, int]:
    """``(start, end)`` POSIX seconds of a period; ``end`` is the next period's start."""
    start = time_period_start(period_num, period_length_minutes, rotation_offset)
    return start, start + period_length_minutes * 60


def next_time_period_start(
    now: float,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
    rotation_offset: int = DEFAULT_ROTATION_OFFSET_SECONDS,
) -> int:
    """POSIX time at which the period after the one containing ``now`` begins."""
    current = time_period_number(now, period_length_minutes, rotation_offset)
    return time_period_start(current + 1, period_length_minutes, rotation_offset)


def hs_index(
    replica: int,
    blinded_public_key: bytes,
    period_num: int,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
) -> bytes:
    """hs_service_index(replicanum) = H("store-at-idx" | A' | INT_8(replicanum) |
    INT_8(period_length) | INT_8(period_num)) (§2.2.3; replicas count from 1)."""
    require_len(blinded_public_key, 32, "blinded public key")
    return sha3_256(
        b"store-at-idx"
        + blinded_public_key
        + int_8(replica)
        + int_8(period_length_minutes)
        + int_8(period_num)
    )


def hsdir_index(
    ed25519_identity: bytes,
    shared_random_value: bytes,
    period_num: int,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
) -> bytes:
    """hs_relay_index(node) = H("node-idx" | node_identity | shared_random_value |
    INT_8(period_num) | INT_8(period_length)) (§2.2.3; note the order differs
    from :func:`hs_index`)."""
    require_len(ed25519_identity, 32, "relay Ed25519 identity")
    require_len(shared_random_value, 32, "shared random value")
    return sha3_256(
        b"node-idx"
        + ed25519_identity
        + shared_random_value
        + int_8(period_num)
        + int_8(period_length_minutes)
    )


def disaster_srv(
    period_num: int, period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES
) -> bytes:
    """SRV = H("shared-random-disaster" | INT_8(period_length) | INT_8(period_num)) (§2.3.1)."""
    return sha3_256(b"shared-random-disaster" + int_8(period_length_minutes) + int_8(period_num))
