"""Checkers for Part V, "The claims ledger"."""

from __future__ import annotations

from collections import Counter

from ..claims import Claim
from ._common import attempted, passed


DECIDED = ("supported", "partly", "refuted")


def _claim(i: int, seed: str, verdict: str) -> Claim:
    judged = verdict in ("supported", "partly", "refuted", "inconclusive")
    rules = {"gap": {"effect": "a gap", "unit": "", "threshold": 0.0, "direction": 1}}
    return Claim(id=f"x-{i}", seed=seed, quote="q", chapter="book/x", verdict=verdict,
                 why="w", change="c" if judged else None, rules=rules if judged else None)


def _want(claims: dict[str, Claim]) -> dict[str, float]:
    tested = Counter(c.seed for c in claims.values() if c.verdict in DECIDED)
    held = Counter(c.seed for c in claims.values() if c.verdict in ("supported", "partly"))
    return {s: held[s] / tested[s] for s in sorted(tested)}


def check_held_share(fn) -> bool:
    """`fn(claims) -> {seed: share}`: for each seed with at least one tested claim, the
    share of its decided claims (supported, partly or refuted) that hold at least in
    part ("supported" or "partly"). Inconclusive, consistency checks and untested claims
    count in neither part; seeds with no decided claim are left out."""
    cases = [
        {"a": _claim(0, "000", "supported"), "b": _claim(1, "000", "refuted")},
        {"a": _claim(0, "001", "partly"), "b": _claim(1, "001", "not tested here"),
         "c": _claim(2, "002", "not tested here"), "d": _claim(3, "003", "refuted"),
         "e": _claim(4, "003", "refuted"), "f": _claim(5, "003", "supported"),
         "g": _claim(6, "003", "inconclusive"), "h": _claim(7, "001", "consistency check"),
         "i": _claim(8, "004", "inconclusive")},
    ]
    for claims in cases:
        ok, got = attempted(fn, claims)
        if not ok:
            return False
        want = _want(claims)
        if not isinstance(got, dict):
            raise AssertionError(f"expected a dict seed -> share, got {type(got).__name__}")
        if set(got) != set(want):
            raise AssertionError(f"expected the seeds {sorted(want)} (seeds with a decided "
                                 f"claim only), got {sorted(got)}")
        for s, w in want.items():
            if abs(float(got[s]) - w) > 1e-9:
                raise AssertionError(f"seed {s}: expected a share of {w:.3f}, got {got[s]}; "
                                     "count only supported, partly and refuted (not "
                                     "inconclusive, checks or untested)")
    return passed("held_share")
