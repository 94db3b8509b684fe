"""Helpers shared by the checkers: run the learner's function, compare, report."""

from __future__ import annotations

import torch


def attempted(fn, *args):
    """(True, fn(*args)), or (False, None) with a note when fn raises NotImplementedError."""
    try:
        return True, fn(*args)
    except NotImplementedError:
        print(f"{getattr(fn, '__name__', 'fn')}: not attempted yet (it raises NotImplementedError).")
        return False, None


def assert_close(name: str, got, want: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Raise an AssertionError that says what differs (type, shape, NaN, values)."""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name}: expected a torch.Tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        raise AssertionError(f"{name}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    if not torch.isfinite(got).all():
        raise AssertionError(f"{name}: the result has NaN or inf entries")
    if not torch.allclose(got.to(want.dtype), want, atol=atol, rtol=rtol):
        err = (got.to(want.dtype) - want).abs().max().item()
        raise AssertionError(f"{name}: values differ from the reference (max abs error {err:.3g})")


def passed(name: str) -> bool:
    print(f"{name}: all checks passed.")
    return True
