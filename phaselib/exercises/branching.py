"""Checkers for Part II, "F8 MLPs are continuous decoders"."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..branching import select_targets, transition_width
from ._common import assert_close, attempted, passed

__all__ = ["check_select_targets", "check_transition_width"]


def check_select_targets(fn) -> bool:
    """fn(x [N, 3] = (a, b, s)) -> y [N, 1]: a where s > 0, else b (s = 0 takes b)."""
    cases = [torch.tensor([[0.3, -0.7, 0.2], [0.3, -0.7, -0.2], [0.5, 0.9, 0.0]]),
             torch.rand(17, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1]
    for x in cases:
        ok, got = attempted(fn, x.clone())
        if not ok:
            return False
        assert_close("select", got, select_targets(x), atol=0, rtol=0)
    return passed("select_targets")


def check_transition_width(fn) -> bool:
    """fn(s [G], p [G]) -> float: s where p last rises through 0.9 minus where through 0.1
    (linear interpolation), inf when the rise does not happen."""
    s = np.linspace(-1.0, 1.0, 4001)
    cases = [(1 / (1 + np.exp(-20 * s)), "a logistic of slope 20"),
             (np.clip(0.5 + s, 0, 1), "a ramp of slope 1"),
             ((s > 0.3).astype(float), "a step at s = 0.3"),
             (np.where(s < -0.5, 0.95, 1 / (1 + np.exp(-8 * s))),
              "a logistic that starts high: count only the last rise"),
             (0.4 + 0.1 * s, "a line that never leaves (0.1, 0.9)")]
    for p, what in cases:
        ok, got = attempted(fn, s, p)
        if not ok:
            return False
        want = transition_width(s, p)
        if math.isinf(want):
            if got is None or not math.isinf(float(got)):
                raise AssertionError(f"{what}: expected inf (no rise from 0.1 to 0.9), "
                                     f"got {got!r}")
            continue
        if got is None or not math.isclose(float(got), want, rel_tol=1e-6, abs_tol=1e-9):
            raise AssertionError(f"{what}: expected {want:.6g}, got {got!r}. Find the last "
                                 "grid point with p <= 0.1, interpolate the crossing after it, "
                                 "then the first crossing of 0.9 after that.")
    return passed("transition_width")
