"""Checkers for Part II, "F2 Quadratic pairwise cost"."""

from __future__ import annotations

import torch

from ..attention import causal_mask
from ..kvcache import kv_cache_bytes
from ._common import attempted, passed

__all__ = ["check_kv_cache_bytes", "check_sliding_window_mask"]


def check_kv_cache_bytes(fn) -> bool:
    """fn(n_layers, n_kv_heads, head_dim, seq_len, batch, bytes_per_elem) -> bytes (a number)."""
    cases = [(96, 96, 128, 32768, 1, 2), (32, 8, 128, 8192, 4, 2), (80, 8, 128, 4096, 1, 1),
             (1, 1, 1, 1, 1, 2)]
    for args in cases:
        ok, got = attempted(fn, *args)
        if not ok:
            return False
        want = kv_cache_bytes(*args)
        if got is None or abs(float(got) - want) > 0.5:
            raise AssertionError(f"kv_cache_bytes{args}: expected {want:,} bytes, got {got!r}. "
                                 "Remember the 2 (keys and values) and that only KV heads count.")
    return passed("kv_cache_bytes")


def check_sliding_window_mask(fn) -> bool:
    """fn(T, window) -> [T, T] bool, True where query i may see key j (i - window < j <= i)."""
    for T, w in ((1, 1), (6, 1), (7, 3), (9, 9), (5, 12)):
        ok, got = attempted(fn, T, w)
        if not ok:
            return False
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool or got.shape != (T, T):
            raise AssertionError(f"sliding_window_mask({T}, {w}) must be a bool tensor of shape "
                                 f"{(T, T)}, got {getattr(got, 'dtype', type(got).__name__)} "
                                 f"{tuple(getattr(got, 'shape', ()))}")
        want = causal_mask(T, w)
        if not torch.equal(got, want):
            i, j = (got != want).nonzero()[0].tolist()
            raise AssertionError(f"sliding_window_mask({T}, {w}) is wrong at query {i}, key {j}: "
                                 f"expected {bool(want[i, j])}; a query sees itself and the "
                                 f"{w - 1} keys before it, never a later one")
    return passed("sliding_window_mask")
