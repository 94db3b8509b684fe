"""Checkers for Part IV, "The causal dyadic pyramid" and "Streaming".

`find_leaks` is the perturbation test of the pyramid chapter, written once here so the
checkers can run it on a learner's function: change x[:, s] and look for any output at
a position t < s that moved.
"""

from __future__ import annotations

import torch

from ..kernels.pyramid.reference import block_centroids
from ._common import assert_close, attempted, passed

__all__ = ["find_leaks", "check_feature_age", "check_last_block_mean", "check_levels_completed",
           "check_streaming_block_mean"]


def find_leaks(feature_fn, x: torch.Tensor, positions=None, scale: float = 3.0,
               tol: float = 0.0) -> list[tuple[int, int]]:
    """(s, t) pairs with t < s where changing x[:, s] moved feature_fn(x)[:, t].

    feature_fn maps [B, T, D] to a tensor whose second axis is time [B, T, ...]. An empty
    list means no leak was seen at the positions tried (every s by default).
    """
    T = x.shape[1]
    base = feature_fn(x)
    g = torch.Generator().manual_seed(T)
    leaks = []
    for s in range(T) if positions is None else positions:
        y = x.clone()
        y[:, s] += scale * torch.randn(y[:, s].shape, generator=g, dtype=x.dtype)
        moved = (feature_fn(y)[:, :s] - base[:, :s]).abs().flatten(2).amax(dim=(0, 2)) > tol
        leaks += [(s, t) for t in moved.nonzero().flatten().tolist()]
    return leaks


def _feature_age(t: int, level: int) -> int:
    s = 1 << level
    n = (t + 1) >> level
    return -1 if n < 2 else t - (n * s - 1)


def check_feature_age(fn) -> bool:
    """fn(t, level) -> how many positions ago the feature of `level` at t was made (when its
    latest pair completed): 0 on the position that completes it; -1 where it is masked."""
    for level in range(6):
        for t in range(200):
            ok, got = attempted(fn, t, level)
            if not ok:
                return False
            want = _feature_age(t, level)
            if got != want:
                s = 1 << level
                raise AssertionError(
                    f"feature_age(t={t}, level={level}) should be {want}, got {got}. With s = {s}, "
                    f"{(t + 1) >> level} blocks are complete at t (block j is complete at (j+1)*s - 1)"
                    + ("; fewer than two complete blocks means masked: -1" if want < 0 else ""))
    return passed("feature_age")


def _last_block_mean(x: torch.Tensor, level: int) -> torch.Tensor:
    """[B, T, D] -> [B, T, D]: mean of the latest completed block of size 2**level (0 if none)."""
    B, T, D = x.shape
    c = block_centroids(x, level + 1)[level]
    idx = ((torch.arange(T) + 1) >> level) - 1
    out = c[:, idx.clamp(min=0)] if c.shape[1] else x.new_zeros(B, T, D)
    return torch.where((idx >= 0)[None, :, None], out, torch.zeros_like(out))


def check_last_block_mean(fn) -> bool:
    """fn(x [B, T, D], level) -> [B, T, D]: mean of the latest *completed* block, 0 before the first.

    Runs the perturbation test first (a leak is the mistake this exercise is about), then
    compares with the reference.
    """
    g = torch.Generator().manual_seed(3)
    for T, level in ((8, 1), (13, 2), (33, 3), (5, 0), (3, 2)):
        x = torch.randn(2, T, 4, generator=g)
        ok, got = attempted(fn, x, level)
        if not ok:
            return False
        leaks = find_leaks(lambda z: fn(z, level), x)
        if leaks:
            s, t = leaks[0]
            raise AssertionError(f"last_block_mean(level={level}) reads the future: changing x[:, {s}] "
                                 f"moved the output at t={t} < {s} ({len(leaks)} leaking (s, t) pairs "
                                 "in all). Use only blocks that are complete at t.")
        assert_close(f"last_block_mean at T={T}, level={level}", got, _last_block_mean(x, level))
    return passed("last_block_mean")


def _levels_completed(t: int, levels: int) -> int:
    from ..pyramid import levels_completed

    return levels_completed(t, levels)


def check_levels_completed(fn) -> bool:
    """fn(t, levels) -> how many levels complete a block at step t (token index t >= 0)."""
    for levels in (1, 2, 5, 16):
        for t in range(300):
            ok, got = attempted(fn, t, levels)
            if not ok:
                return False
            want = _levels_completed(t, levels)
            if got != want:
                raise AssertionError(f"levels_completed(t={t}, levels={levels}) should be {want}, got {got} "
                                     f"(t in binary: {t:b}; level l completes a block when t+1 is a "
                                     "multiple of 2**l)")
    return passed("levels_completed")


def check_streaming_block_mean(make_stream) -> bool:
    """make_stream(dim, level) -> object with .step(x_t [B, D]) -> [B, D], the streaming
    `last_block_mean`: equal to the batch version at every step, with a state that does
    not grow (it may keep at most 2**level + 1 vectors per sequence).
    """
    g = torch.Generator().manual_seed(4)
    for T, level in ((9, 0), (16, 1), (37, 2), (70, 3)):
        x = torch.randn(2, T, 3, generator=g)
        ok, stream = attempted(make_stream, 3, level)
        if not ok:
            return False
        want = _last_block_mean(x, level)
        for t in range(T):
            ok, got = attempted(stream.step, x[:, t])
            if not ok:
                return False
            assert_close(f"step t={t} at level={level}", got, want[:, t])
        held = sum(v.numel() for v in vars(stream).values() if isinstance(v, torch.Tensor))
        held += sum(v.numel() for vs in vars(stream).values() if isinstance(vs, (list, tuple))
                    for v in vs if isinstance(v, torch.Tensor))
        if held > 2 * 3 * ((1 << level) + 1):
            raise AssertionError(f"the stream holds {held} numbers after {T} steps at level {level}: "
                                 "its state should not grow with the number of tokens")
    return passed("streaming_block_mean")
