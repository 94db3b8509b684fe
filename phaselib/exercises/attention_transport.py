"""Checkers for Part I, "Attention from scratch", and Part IV, "Transport between two vectors"."""

from __future__ import annotations

import torch

from ..attention import attention, causal_mask
from ..transport import transport
from ._common import assert_close, attempted, passed

__all__ = ["check_causal_mask", "check_attention", "check_angle", "check_transport"]


def check_causal_mask(fn) -> bool:
    """fn(T) -> [T, T] bool, True where query i may attend to key j."""
    for T in (1, 2, 5, 17):
        ok, got = attempted(fn, T)
        if not ok:
            return False
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool:
            raise AssertionError(f"causal_mask({T}) must return a bool tensor, got "
                                 f"{getattr(got, 'dtype', type(got).__name__)}")
        if got.shape != (T, T):
            raise AssertionError(f"causal_mask({T}) must have shape {(T, T)}, got {tuple(got.shape)}")
        if not torch.equal(got, causal_mask(T)):
            bad = (got != causal_mask(T)).nonzero()[0].tolist()
            raise AssertionError(f"causal_mask({T}) is wrong at (query, key) = {tuple(bad)}: "
                                 "a query may see itself and every earlier key, nothing later")
    return passed("causal_mask")


def check_attention(fn) -> bool:
    """fn(q, k, v) -> (out, weights) for causal attention, q k v [B, H, T, dh]."""
    g = torch.Generator().manual_seed(0)
    for B, H, T, dh in ((1, 1, 1, 4), (2, 3, 7, 5), (1, 2, 16, 8)):
        q, k, v = (torch.randn(B, H, T, dh, generator=g) for _ in range(3))
        ok, got = attempted(fn, q, k, v)
        if not ok:
            return False
        if not (isinstance(got, tuple) and len(got) == 2):
            raise AssertionError("attention must return a tuple (out, weights)")
        want_out, want_w = attention(q, k, v, causal=True)
        assert_close(f"weights at T={T}", got[1], want_w)
        assert_close(f"out at T={T}", got[0], want_out)
    return passed("attention")


def check_angle(fn) -> bool:
    """fn(a, b) -> [...] the angle between a and b in [0, pi], stable at 0 and pi."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(64, 5, generator=g)
    b = torch.randn(64, 5, generator=g)
    cases = {"random pairs": (a, b), "equal vectors": (a, a.clone()),
             "opposite vectors": (a, -a), "nearly equal": (a, a + 1e-4 * b)}
    for name, (x, y) in cases.items():
        ok, got = attempted(fn, x, y)
        if not ok:
            return False
        want = transport(x, y)[..., :-1].norm(dim=-1)
        if name == "nearly equal":
            # arccos loses these angles (about 1e-4) to rounding; atan2 keeps them.
            want = transport(x.double(), y.double())[..., :-1].norm(dim=-1).float()
        assert_close(f"angle on {name}", got, want, atol=2e-5, rtol=1e-3)
    return passed("angle")


def check_transport(fn) -> bool:
    """fn(a, b) -> [..., D+1]: the log map of b's direction at a's, then log(|b|/|a|)."""
    g = torch.Generator().manual_seed(2)
    for shape in ((3, 2), (10, 7), (4, 5, 16)):
        a, b = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
        ok, got = attempted(fn, a, b)
        if not ok:
            return False
        assert_close(f"transport on shape {shape}", got, transport(a, b), atol=1e-4)
        assert_close(f"transport(a, a) on shape {shape}", fn(a, a), torch.zeros(*shape[:-1], shape[-1] + 1), atol=1e-4)
    return passed("transport")
