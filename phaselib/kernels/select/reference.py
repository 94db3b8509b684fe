"""The selection among the pyramid's levels, read from each level's rows where they
apply: the plain PyTorch twin of `triton.py`.

Book: Part IV, "GPU kernels", section "Not materialising what is selected". Level l
(blocks of s = 2^l) hands position t the row (t + 1) >> l of its table: `empty[l]` for
the first two, then the transport of each finished pair of blocks
(`phase_lm_levels.CompactCandidates`). The tables of all levels are packed one after
the other in `table` [B, R, C], level l from `offsets[l]`, (T >> l) + 1 rows each, and

    y[b, t] = sum over l of  w[b, t, l] * table[b, offsets[l] + ((t + 1) >> l)].

This twin gathers each level's rows to [B, T, C] and sums: the ground truth the kernel
is checked against, not a fast path (on the CPU, `CompactCandidates.weighted_sum` sums
by tiles instead).
"""

from __future__ import annotations

import torch

from ..._checks import check_float_tensor

__all__ = ["level_offsets", "select_reference", "check_select_args"]


def level_offsets(T: int, L: int) -> list[int]:
    """Where each level's table starts in the packed table, and its end: L + 1 numbers,
    level l holding (T >> l) + 1 rows."""
    if not (isinstance(T, int) and isinstance(L, int)) or T < 1 or L < 1:
        raise ValueError(f"T and L must be positive ints, got T={T!r}, L={L!r}")
    out = [0]
    for level in range(L):
        out.append(out[-1] + (T >> level) + 1)
    return out


def check_select_args(w: torch.Tensor, table: torch.Tensor) -> list[int]:
    """Check w [B, T, L] and table [B, R, C] (R from `level_offsets`); the offsets."""
    check_float_tensor("w", w, ndim=3, shape_doc="of shape [B, T, L]")
    check_float_tensor("table", table, ndim=3, shape_doc="of shape [B, R, C]")
    B, T, L = w.shape
    offsets = level_offsets(T, L)
    if table.shape[0] != B or table.shape[1] != offsets[-1]:
        raise ValueError(f"table must have shape [B, R, C] = [{B}, {offsets[-1]}, C] "
                         f"for w of shape {tuple(w.shape)} (R = sum over the levels "
                         f"of (T >> l) + 1), got {tuple(table.shape)}")
    if w.device != table.device:
        raise ValueError(f"w and table must be on one device, got {w.device} and "
                         f"{table.device}")
    return offsets


def select_reference(w: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """w [B, T, L], table [B, R, C] (packed as the module docstring says) ->
    [B, T, C]."""
    offsets = check_select_args(w, table)
    T, L = w.shape[1], w.shape[2]
    u = torch.arange(1, T + 1, device=w.device)
    out = None
    for level in range(L):
        part = w[..., level, None] * table[:, offsets[level] + (u >> level)]
        out = part if out is None else out + part
    return out
