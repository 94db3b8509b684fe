"""Checkers for Part II, "F7 Preconditioning decays with depth"."""

from __future__ import annotations

import math

import torch

from ..preconditioning import tag_perms, tag_share, tag_task_batch
from ._common import assert_close, attempted, passed

__all__ = ["check_tag_targets", "check_tag_share"]


def check_tag_targets(fn) -> bool:
    """fn(idx [B, T] long, tags [B] long, perms [K, V] long) -> y [B, T] long:
    y[:, 0] = -1 and y[:, t] = perms[tag, idx[:, t-1]] for t >= 1."""
    for K, V, B, T, seed in ((2, 3, 4, 5, 0), (4, 16, 7, 13, 1), (3, 5, 1, 2, 2)):
        perms = tag_perms(K, V, seed=seed)
        (idx, tags), want = tag_task_batch(B, T, perms,
                                           generator=torch.Generator().manual_seed(seed))
        ok, got = attempted(fn, idx, tags, perms)
        if not ok:
            return False
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            raise AssertionError(f"targets for B={B}, T={T}: expected a tensor of shape "
                                 f"{tuple(want.shape)}, got {getattr(got, 'shape', got)}")
        if (got[:, 0] != -1).any():
            raise AssertionError("targets at t = 0 must be -1: nothing precedes the first "
                                 "token")
        bad = (got != want).nonzero()
        if len(bad):
            b, t = bad[0].tolist()
            raise AssertionError(
                f"targets for B={B}, T={T}, K={K}, V={V} are wrong at row {b}, t={t}: got "
                f"{int(got[b, t])}, expected perms[tag={int(tags[b])}, idx[t-1]="
                f"{int(idx[b, t - 1])}] = {int(want[b, t])} (the previous token, not the "
                f"current one)")
    return passed("tag_targets")


def check_tag_share(fn) -> bool:
    """fn(features [N, F] float, labels [N] long) -> float: the share of the total
    variance that the class means explain (between-class over total), in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 6 + [1] * 2 + [2] * 4)  # unequal classes on purpose
    cases = {
        "one feature, hand example": (torch.tensor([[0.0], [2.0], [1.0], [3.0]]),
                                      torch.tensor([0, 0, 1, 1])),
        "unequal class sizes": (torch.randn(12, 3, generator=g) + labels[:, None].double()
                                .float(), labels),
        "features that are the class means": (labels[:, None].float().repeat(1, 2), labels),
    }
    for name, (x, lab) in cases.items():
        ok, got = attempted(fn, x, lab)
        if not ok:
            return False
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise AssertionError(f"tag share on {name}: expected a number, got "
                                 f"{type(got).__name__}") from None
        if not math.isfinite(got):
            raise AssertionError(f"tag share on {name}: got {got}")
        assert_close(f"tag share on {name}", torch.tensor(got, dtype=torch.float64),
                     torch.tensor(tag_share(x, lab), dtype=torch.float64), atol=1e-6)
    return passed("tag_share")
