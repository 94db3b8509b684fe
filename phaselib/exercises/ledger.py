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


def _interval(values: list[float]) -> tuple[float, float]:
    from ..claims.rule import Effect
    return Effect("x", tuple(values)).interval()


def _rule_verdict(values, threshold, control=None) -> str:
    lo, hi = _interval(values)
    if lo > threshold:
        return "supported"
    if hi < threshold:
        if control is not None and _interval(control)[0] > threshold:
            return "refuted"
        return "inconclusive"
    return "inconclusive"


def check_verdict_rule(fn) -> bool:
    """`fn(values, threshold, control=None) -> verdict`: the per-seed effects `values`
    against a claim that predicts an effect above `threshold`. "supported" when the
    whole 95% t interval of the mean lies above the threshold; "refuted" when it lies
    wholly below and the positive control's interval (per-seed values of the same
    measurement on a planted effect) lies wholly above; "inconclusive" otherwise."""
    cases = [
        (([0.30, 0.32, 0.31], 0.1), "supported"),
        (([0.01, 0.20, 0.02], 0.0), "inconclusive"),        # every sign agrees
        (([0.001, -0.002, 0.0], 0.05), "inconclusive"),     # a null, no control
        (([0.001, -0.002, 0.0], 0.05, [0.01, 0.02, 0.015]), "inconclusive"),
        (([0.001, -0.002, 0.0], 0.05, [0.30, 0.32, 0.31]), "refuted"),
        (([0.104, 0.040, 0.127], 0.0), "inconclusive"),
        (([0.862, 0.815, 0.791], 0.5), "supported"),
    ]
    for args, want in cases:
        assert _rule_verdict(*args) == want, "the checker's own reference disagrees"
        ok, got = attempted(fn, *args)
        if not ok:
            return False
        if got != want:
            raise AssertionError(
                f"values {args[0]}, threshold {args[1]}"
                + (f", control {args[2]}" if len(args) > 2 else "")
                + f": expected {want!r}, got {got!r}. The interval is the mean plus or "
                "minus t(0.975, n-1) times the standard error; a null needs a control "
                "whose interval clears the threshold.")
    return passed("verdict_rule")
