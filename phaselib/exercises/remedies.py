"""Checkers for Part III, "The remedies, measured"."""

from __future__ import annotations

import torch

from ..remedies.sinks import sink_mask
from ._common import assert_close, attempted, passed


def check_expand_kv_heads(fn) -> bool:
    """`fn(kv [B, Hkv, T, dh], H) -> [B, H, T, dh]`: grouped-query attention's sharing.
    Query head h reads key/value head h // (H / Hkv): heads 0..g-1 share kv head 0, and
    so on (not the tiled order 0, 1, 0, 1, ...)."""
    g = torch.Generator().manual_seed(0)
    for B, Hkv, H, T, dh in ((1, 1, 4, 3, 2), (2, 2, 6, 5, 3), (1, 3, 3, 4, 2)):
        kv = torch.randn(B, Hkv, T, dh, generator=g)
        ok, got = attempted(fn, kv, H)
        if not ok:
            return False
        want = kv.repeat_interleave(H // Hkv, dim=1)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and \
                not torch.allclose(got, want) and \
                torch.allclose(got, kv.repeat(1, H // Hkv, 1, 1)):
            raise AssertionError("the kv heads are tiled (0, 1, 0, 1, ...): query head h "
                                 "must read kv head h // (H // Hkv), as repeat_interleave "
                                 "gives")
        assert_close(f"expand_kv_heads(Hkv={Hkv}, H={H})", got, want)
    return passed("expand_kv_heads")


def check_sink_window_mask(fn) -> bool:
    """`fn(T, window, n_sink) -> [T, T] bool`: query i sees key j when j <= i and either
    j is among the last `window` positions (i - j < window) or one of the first `n_sink`
    (j < n_sink): the cache of StreamingLLM."""
    for T, window, n_sink in ((6, 2, 1), (9, 3, 2), (5, 8, 0), (7, 1, 3)):
        ok, got = attempted(fn, T, window, n_sink)
        if not ok:
            return False
        want = sink_mask(T, window, n_sink)
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool or \
                got.shape != (T, T):
            raise AssertionError(f"expected a bool tensor of shape [{T}, {T}], got "
                                 f"{getattr(got, 'dtype', type(got).__name__)} "
                                 f"{tuple(getattr(got, 'shape', ()))}")
        if (got & ~torch.ones(T, T, dtype=torch.bool).tril()).any():
            raise AssertionError("the mask lets a query see a later key: keep j <= i")
        if not torch.equal(got, want):
            i, j = (got != want).nonzero()[0].tolist()
            raise AssertionError(f"T={T}, window={window}, n_sink={n_sink}: query {i}, "
                                 f"key {j} should be {bool(want[i, j])}")
    return passed("sink_window_mask")
