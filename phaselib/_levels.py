"""Level arithmetic of the causal dyadic pyramid, in one place (a leaf: imports only torch).

Level l works on aligned blocks of 2**l tokens; block j is complete at position
(j+1)*2**l - 1. `phaselib.pyramid` re-exports these; the kernels import them from here,
so that the pyramid module can import the kernels without a cycle.
"""

from __future__ import annotations

import torch

__all__ = ["default_levels", "pyramid_mask", "levels_completed"]


def default_levels(T: int) -> int:
    """Every level with two completed blocks somewhere in T (at least 1): max(1, floor(log2 T))."""
    return max(1, int(T).bit_length() - 1)


def pyramid_mask(T: int, levels: int, device=None) -> torch.Tensor:
    """[T, L] bool: True where level l has two completed blocks at position t."""
    t = torch.arange(T, device=device)[:, None]
    lvl = torch.arange(levels, device=device)[None, :]
    return ((t + 1) >> lvl) >= 2


def levels_completed(t: int, levels: int) -> int:
    """How many levels token t (0-based) completes a block at: 1 + trailing one bits of t,
    at most `levels`. Level l completes a block when t + 1 is a multiple of 2**l."""
    if t < 0 or levels < 1:
        raise ValueError(f"need t >= 0 and levels >= 1, got t={t}, levels={levels}")
    trailing_ones = ((t + 1) & -(t + 1)).bit_length() - 1
    return min(1 + trailing_ones, levels)
