"""Checkers for Part IV, "Decision slots" and "Selection, the open problem"."""

from __future__ import annotations

import torch

from ..selection import select_weights, sparsemax
from ..slots import slot_scan_reference
from ._common import assert_close, attempted, passed

__all__ = ["check_slot_recurrence", "check_retention", "check_sparsemax", "check_straight_through"]


def check_slot_recurrence(fn) -> bool:
    """fn(g [B, T, K], w [B, T, K, C], s0 [K, C]) -> s [B, T, K, C], the gated slot update."""
    gen = torch.Generator().manual_seed(0)
    for B, T, K, C in ((1, 1, 1, 2), (2, 7, 3, 5), (1, 33, 2, 4)):
        g = torch.rand(B, T, K, generator=gen)
        if T > 5:
            g[:, ::3] = 0.0          # closed gates must hold exactly
            g[:, 1::4] = 1.0         # open gates must overwrite exactly
        w = torch.randn(B, T, K, C, generator=gen)
        s0 = torch.randn(K, C, generator=gen)
        ok, got = attempted(fn, g, w, s0)
        if not ok:
            return False
        gg = g.unsqueeze(-1)
        want = slot_scan_reference((1 - gg).expand_as(w), gg * w, s0)
        assert_close(f"slots for B, T, K, C = {(B, T, K, C)}", got, want)
    return passed("slot_recurrence")


def check_retention(fn) -> bool:
    """fn(g [..., T]) -> [..., T]: the fraction of what was written at position 0 left at t."""
    gen = torch.Generator().manual_seed(1)
    cases = {"constant gate 0.1": torch.full((1, 20), 0.1), "closed gates": torch.zeros(2, 9),
             "random gates": torch.rand(3, 4, 17, generator=gen), "one position": torch.rand(5, 1, generator=gen)}
    for name, g in cases.items():
        ok, got = attempted(fn, g)
        if not ok:
            return False
        want = torch.cat([torch.ones_like(g[..., :1]), (1 - g[..., 1:]).cumprod(-1)], -1)
        assert_close(f"retention for {name}", got, want)
    return passed("retention")


def check_sparsemax(fn) -> bool:
    """fn(z [..., L]) -> sparsemax(z) along the last dimension."""
    gen = torch.Generator().manual_seed(2)
    cases = {"random": torch.randn(16, 7, generator=gen) * 2, "ties": torch.zeros(3, 4),
             "one candidate": torch.randn(5, 1, generator=gen),
             "a clear winner": torch.tensor([[5.0, 0.0, -1.0, 0.5]]), "3-d": torch.randn(2, 3, 6, generator=gen)}
    for name, z in cases.items():
        ok, got = attempted(fn, z)
        if not ok:
            return False
        assert_close(f"sparsemax on {name}", got, sparsemax(z), atol=1e-5)
    return passed("sparsemax")


def check_straight_through(fn) -> bool:
    """fn(scores [..., L]) -> one-hot argmax forward, softmax(scores) gradient backward."""
    gen = torch.Generator().manual_seed(3)
    for shape in ((4, 5), (2, 3, 7)):
        z = torch.randn(*shape, generator=gen)
        up = torch.randn(*shape, generator=gen)
        z1 = z.clone().requires_grad_()
        ok, got = attempted(fn, z1)
        if not ok:
            return False
        want = select_weights(z, "hard_st")
        assert_close(f"forward on shape {shape}", got, want.detach())
        no_grad = AssertionError("no gradient reached the scores: the forward must keep the "
                                 "softmax in the graph (hard - soft.detach() + soft)")
        if not got.requires_grad:
            raise no_grad
        (got * up).sum().backward()
        if z1.grad is None:
            raise no_grad
        z2 = z.clone().requires_grad_()
        (torch.softmax(z2, -1) * up).sum().backward()
        assert_close(f"gradient on shape {shape}", z1.grad, z2.grad)
    return passed("straight_through")
