"""Consensus bandwidth-weights, as authorities compute them (dir-spec §3.8.3, method >= 26).

A faithful transcription of C tor's ``networkstatus_compute_bw_weights_v10``
(``dirvote.c``): the totals G (Guard, not Exit), M (neither), E (Exit, not
Guard) and D (Guard and Exit) start at 1 and T at 4 (consensus method 26); the
case analysis and its fallbacks are those of the spec, with integer division
truncating toward zero as C does; a solution that fails C tor's consistency
check (sums, range, balance within ``margin * T / 3``) yields no weights, and
the consensus then has no ``bandwidth-weights`` line, as with C tor.
"""

from __future__ import annotations

from collections.abc import Iterable

WEIGHT_SCALE = 10000
_MARGIN = 10


def _div(a: int, b: int) -> int:
    """C's int64 division: truncate toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def totals(relays: Iterable[tuple[int, bool, bool]]) -> tuple[int, int, int, int, int]:
    """(G, M, E, D, T) from (bandwidth, is_guard, is_exit) of each listed relay."""
    g = m = e = d = 1
    t = 4
    for bw, guard, exit_ in relays:
        t += bw
        if guard and exit_:
            d += bw
        elif exit_:
            e += bw
        elif guard:
            g += bw
        else:
            m += bw
    return g, m, e, d, t


def _check(w: dict[str, int], s: int, g: int, m: int, e: int, d: int, t: int) -> str | None:
    """C tor's ``networkstatus_check_weights``: None if consistent, else which check failed."""
    def near(a: int, b: int, margin: int) -> bool:
        return abs(a - b) <= margin

    if not near(w["Wed"] + w["Wmd"] + w["Wgd"], s, _MARGIN):
        return "sum-d"
    if not near(w["Wmg"] + w["Wgg"], s, _MARGIN):
        return "sum-g"
    if not near(w["Wme"] + w["Wee"], s, _MARGIN):
        return "sum-e"
    if any(not 0 <= v <= s for v in w.values()):
        return "range"
    guard_side = w["Wgg"] * g + w["Wgd"] * d
    if not near(guard_side, w["Wee"] * e + w["Wed"] * d, _div(_MARGIN * t, 3)):
        return "balance-eg"
    middle = m * s + w["Wmd"] * d + w["Wme"] * e + w["Wmg"] * g
    if not near(guard_side, middle, _div(_MARGIN * t, 3)):
        return "balance-mid"
    return None


def _w(wgg: int, wgd: int, wmg: int, wme: int, wmd: int, wee: int, wed: int) -> dict[str, int]:
    return {"Wgg": wgg, "Wgd": wgd, "Wmg": wmg, "Wme": wme, "Wmd": wmd, "Wee": wee, "Wed": wed}


def _case1(s: int, g: int, m: int, e: int) -> dict[str, int]:
    wee = _div(s * (e + g + m), 3 * e)
    wmg = _div(s * (2 * g - e - m), 3 * g)
    third = _div(s, 3)
    return _w(s - wmg, third, wmg, s - wee, third, wee, third)


def _case2(s: int, g: int, m: int, e: int, d: int, t: int) -> dict[str, int] | None:
    if min(e, g) + d < max(e, g):                       # 2a: all of D to the scarcer class
        return _w(s, 0 if e < g else s, 0, 0, 0, s, s if e < g else 0)
    wed = _div(s * (d - 2 * e + 4 * g - 2 * m), 3 * d)  # 2b1: Wgg = 1, Wmd = Wgd
    w = _w(s, _div(s - wed, 2), 0, _div(s * (g - m), e), _div(s - wed, 2),
           _div(s * (e - g + m), e), wed)
    if _check(w, s, g, m, e, d, t) is None:
        return w
    wed = _div(s * (d - 2 * e + g + m), 3 * d)          # 2b2: Wgg = Wee = 1
    wmd = max(0, _div(s * (d - 2 * m + g + e), 3 * d))  # 2b3: Wmd < 0 when M > T/3
    w = _w(s, s - wed - wmd, 0, 0, wmd, s, wed)
    # C tor accepts this last solution even when only the middle balance is off.
    return w if _check(w, s, g, m, e, d, t) in (None, "balance-mid") else None


def _case3(s: int, g: int, m: int, e: int, d: int, t: int) -> dict[str, int]:
    if 3 * (min(e, g) + d) < t:                         # 3a
        if g < e:
            wme = 0 if e < m else _div(s * (e - m), 2 * e)
            return _w(s, s, 0, wme, 0, s - wme, 0)
        wmg = 0 if g < m else _div(s * (g - m), 2 * g)
        return _w(s - wmg, 0, wmg, 0, 0, s, s)
    if g < e:                                           # 3b, guards scarce
        wgd = _div(s * (d - 2 * g + e + m), 3 * d)
        wee = _div(s * (e + m), 2 * e)
        return _w(s, wgd, 0, s - wee, _div(s - wgd, 2), wee, _div(s - wgd, 2))
    wed = _div(s * (d - 2 * e + g + m), 3 * d)          # 3b, exits scarce
    wgg = _div(s * (g + m), 2 * g)
    return _w(wgg, _div(s - wed, 2), s - wgg, 0, _div(s - wed, 2), s, wed)


def bandwidth_weights(g: int, m: int, e: int, d: int, t: int,
                      scale: int = WEIGHT_SCALE) -> dict[str, int] | None:
    """The ``bandwidth-weights`` line's values, or None when C tor would omit the line."""
    if min(g, m, e, d) <= 0:
        return None
    if 3 * e >= t and 3 * g >= t:
        w: dict[str, int] | None = _case1(scale, g, m, e)
        checked = w is not None and _check(w, scale, g, m, e, d, t) is None
    elif 3 * e < t and 3 * g < t:
        w = _case2(scale, g, m, e, d, t)
        checked = w is not None
    else:
        w = _case3(scale, g, m, e, d, t)
        subcase_b = 3 * (min(e, g) + d) >= t
        checked = not subcase_b or _check(w, scale, g, m, e, d, t) is None
    if w is None or not checked:
        return None
    # Wgm=Wgg, Wmm=scale, Wem=Wee, Weg=Wed; directory weights use the middle ones.
    line = {"Wbd": w["Wmd"], "Wbe": w["Wme"], "Wbg": w["Wmg"], "Wbm": scale, "Wdb": scale,
            "Web": scale, "Wed": w["Wed"], "Wee": w["Wee"], "Weg": w["Wed"], "Wem": w["Wee"],
            "Wgb": scale, "Wgd": w["Wgd"], "Wgg": w["Wgg"], "Wgm": w["Wgg"], "Wmb": scale,
            "Wmd": w["Wmd"], "Wme": w["Wme"], "Wmg": w["Wmg"], "Wmm": scale}
    return dict(sorted(line.items()))
