"""Checkers for Part II, "F3 No intrinsic multi-scale structure"."""

from __future__ import annotations

import torch

from ..attention import causal_mask
from ..multiscale import attention_distance_profile
from ..pyramid import pyramid
from ._common import assert_close, attempted, passed

__all__ = ["check_distance_profile", "check_silent_levels"]


def check_distance_profile(fn) -> bool:
    """fn(weights [B, H, T, T], start) -> [H, T]: mean attention mass at each distance."""
    g = torch.Generator().manual_seed(0)
    causal = causal_mask(9)
    for B, H, T, start in ((1, 1, 1, 0), (2, 3, 9, 0), (3, 2, 9, 4)):
        scores = torch.randn(B, H, T, T, generator=g)
        w = torch.softmax(scores.masked_fill(~causal[:T, :T], float("-inf")), -1)
        ok, got = attempted(fn, w, start)
        if not ok:
            return False
        assert_close(f"profile at B={B}, H={H}, T={T}, start={start}", got,
                     attention_distance_profile(w, start))
    # A head that always looks exactly 2 back (or at 0 when it cannot) is a spike at d = 2.
    w = torch.zeros(1, 1, 7, 7)
    for i in range(7):
        w[0, 0, i, max(i - 2, 0)] = 1.0
    got = fn(w, 2)
    want = torch.zeros(1, 7)
    want[0, 2] = 1.0
    assert_close("profile of a head that looks 2 back (queries from 2 on)", got, want)
    return passed("distance_profile")


def check_silent_levels(fn) -> bool:
    """fn(period, levels) -> list of bools: which pyramid levels are exactly zero on a
    sequence that repeats with `period` (once the level has two completed blocks)."""
    g = torch.Generator().manual_seed(1)
    for period, levels in ((1, 3), (2, 4), (3, 5), (4, 6), (6, 6), (16, 6)):
        ok, got = attempted(fn, period, levels)
        if not ok:
            return False
        if not isinstance(got, (list, tuple)) or len(got) != levels:
            raise AssertionError(f"silent_levels({period}, {levels}) must return {levels} bools, "
                                 f"got {got!r}")
        base = torch.randn(1, period, 8, generator=g)
        x = base.repeat(1, 128 // period + 1, 1)[:, :128]
        feats, mask = pyramid(x, levels, backend="reference")
        for level in range(levels):
            live = feats[0, mask[:, level], level]
            silent = bool(live.abs().max() < 1e-5)
            if bool(got[level]) != silent:
                raise AssertionError(
                    f"silent_levels({period}, {levels})[{level}] is {bool(got[level])}, but level "
                    f"{level} (blocks of {2 ** level}) is {'zero' if silent else 'not zero'} on a "
                    f"sequence with period {period}: compare two consecutive aligned blocks")
    return passed("silent_levels")
