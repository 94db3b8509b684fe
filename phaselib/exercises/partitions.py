"""Checkers for Part II, "F4 Geometric, not semantic partitions"."""

from __future__ import annotations

import numpy as np

from ..partitions import aligned_starts, cut_mask
from ._common import attempted, passed

__all__ = ["check_cut_mask", "check_aligned_starts"]


def check_cut_mask(fn) -> bool:
    """fn(spans [N, 2], size) -> [N] bool: True where blocks of `size` cut the span."""
    spans = np.array([[0, 3], [2, 5], [3, 4], [4, 8], [7, 9], [8, 20], [15, 16], [0, 1]])
    for size in (1, 2, 4, 8, 32):
        ok, got = attempted(fn, spans, size)
        if not ok:
            return False
        want = cut_mask(spans, size)
        got = np.asarray(got, dtype=bool)
        if got.shape != want.shape or not (got == want).all():
            bad = int(np.flatnonzero(got != want)[0]) if got.shape == want.shape else None
            where = f" first at span {spans[bad].tolist()}" if bad is not None else ""
            raise AssertionError(f"size {size}: expected {want.tolist()}, got {got.tolist()}{where}. "
                                 "A span [s, e) is cut when s // size != (e - 1) // size.")
    return passed("cut_mask")


def check_aligned_starts(fn) -> bool:
    """fn(n, size, unit_starts) -> block starts: each multiple of size moved to the next unit start."""
    cases = [(20, 5, np.array([0, 3, 9, 11, 18])), (10, 4, np.array([0, 4, 8])),
             (12, 3, np.array([0, 7])), (9, 2, np.array([1, 2, 5]))]
    for n, size, units in cases:
        ok, got = attempted(fn, n, size, units)
        if not ok:
            return False
        want = aligned_starts(n, size, units)
        got = np.asarray(got)
        if got.shape != want.shape or not (got == want).all():
            raise AssertionError(f"n={n}, size={size}, units={units.tolist()}: expected {want.tolist()}, "
                                 f"got {got.tolist()} (start with 0, drop duplicates and anything >= n)")
    return passed("aligned_starts")
