"""Checkers for the chapters' exercises (in the manner of ARENA and Triton-Puzzles).

Each `check_<name>(fn)` runs the learner's `fn` against the package's reference on
seeded inputs, including awkward ones, and either returns True or raises an
AssertionError that says what is wrong. A function that still raises
NotImplementedError is reported as "not attempted yet" (False), so a notebook with an
unsolved exercise still runs to the end.
"""

from __future__ import annotations

import torch

from .attention import attention, causal_mask
from .transport import transport

__all__ = ["check_causal_mask", "check_attention", "check_angle", "check_transport"]


def _attempted(fn, *args):
    try:
        return True, fn(*args)
    except NotImplementedError:
        print(f"{getattr(fn, '__name__', 'fn')}: not attempted yet (it raises NotImplementedError).")
        return False, None


def _close(name: str, got, want: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name}: expected a torch.Tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        raise AssertionError(f"{name}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    if not torch.isfinite(got).all():
        raise AssertionError(f"{name}: the result has NaN or inf entries")
    if not torch.allclose(got.to(want.dtype), want, atol=atol, rtol=rtol):
        err = (got.to(want.dtype) - want).abs().max().item()
        raise AssertionError(f"{name}: values differ from the reference (max abs error {err:.3g})")


def _passed(name: str) -> bool:
    print(f"{name}: all checks passed.")
    return True


def check_causal_mask(fn) -> bool:
    """fn(T) -> [T, T] bool, True where query i may attend to key j."""
    for T in (1, 2, 5, 17):
        ok, got = _attempted(fn, T)
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
    return _passed("causal_mask")


def check_attention(fn) -> bool:
    """fn(q, k, v) -> (out, weights) for causal attention, q k v [B, H, T, dh]."""
    g = torch.Generator().manual_seed(0)
    for B, H, T, dh in ((1, 1, 1, 4), (2, 3, 7, 5), (1, 2, 16, 8)):
        q, k, v = (torch.randn(B, H, T, dh, generator=g) for _ in range(3))
        ok, got = _attempted(fn, q, k, v)
        if not ok:
            return False
        if not (isinstance(got, tuple) and len(got) == 2):
            raise AssertionError("attention must return a tuple (out, weights)")
        want_out, want_w = attention(q, k, v, causal=True)
        _close(f"weights at T={T}", got[1], want_w)
        _close(f"out at T={T}", got[0], want_out)
    return _passed("attention")


def check_angle(fn) -> bool:
    """fn(a, b) -> [...] the angle between a and b in [0, pi], stable at 0 and pi."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(64, 5, generator=g)
    b = torch.randn(64, 5, generator=g)
    cases = {"random pairs": (a, b), "equal vectors": (a, a.clone()),
             "opposite vectors": (a, -a), "nearly equal": (a, a + 1e-4 * b)}
    for name, (x, y) in cases.items():
        ok, got = _attempted(fn, x, y)
        if not ok:
            return False
        want = transport(x, y)[..., :-1].norm(dim=-1)
        if name == "nearly equal":
            # arccos loses these angles (about 1e-4) to rounding; atan2 keeps them.
            want = transport(x.double(), y.double())[..., :-1].norm(dim=-1).float()
        _close(f"angle on {name}", got, want, atol=2e-5, rtol=1e-3)
    return _passed("angle")


def check_transport(fn) -> bool:
    """fn(a, b) -> [..., D+1]: the log map of b's direction at a's, then log(|b|/|a|)."""
    g = torch.Generator().manual_seed(2)
    for shape in ((3, 2), (10, 7), (4, 5, 16)):
        a, b = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
        ok, got = _attempted(fn, a, b)
        if not ok:
            return False
        _close(f"transport on shape {shape}", got, transport(a, b), atol=1e-4)
        _close(f"transport(a, a) on shape {shape}", fn(a, a), torch.zeros(*shape[:-1], shape[-1] + 1), atol=1e-4)
    return _passed("transport")
