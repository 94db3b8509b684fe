"""The causal dyadic phase-transport pyramid.

Book: Part IV, "The causal dyadic pyramid". The definition and its cost are documented
beside the reference, `phaselib/kernels/pyramid/reference.py`. The level arithmetic
(`default_levels`, `pyramid_mask`, `levels_completed`) lives in the leaf module
`phaselib/_levels.py`, which the kernels import too, and is re-exported here.
"""

from __future__ import annotations

import torch

from ._checks import check_backend, check_float_tensor, check_positive_int
from ._levels import default_levels, levels_completed, pyramid_mask
from .kernels.pyramid.reference import leaky_pyramid_reference, pyramid_reference

__all__ = ["pyramid", "leaky_pyramid", "pyramid_mask", "default_levels", "levels_completed"]


def _check_input(x, levels) -> int:
    check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
    B, T, D = x.shape
    if T < 1 or B < 1:
        raise ValueError(f"x must have B >= 1 and T >= 1, got shape {tuple(x.shape)}")
    if D < 2:
        raise ValueError(f"x must have D >= 2 features (shape [B, T, D]), got shape {tuple(x.shape)}")
    check_positive_int("levels", levels, allow_none=True)
    return default_levels(T) if levels is None else levels


def pyramid(x: torch.Tensor, levels: int | None = None, *,
            backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-scale transport features of a sequence: `[B, T, D] -> ([B, T, L, D+1], [T, L])`.

    Level 0 is the transport between consecutive tokens; level l >= 1 the transport
    between the centroids of the last two completed blocks of size 2**l that end at or
    before t. `levels` counts every level, level 0 included (L == levels); the default
    covers every level with two completed blocks somewhere in T. The mask is True where a
    level has its two blocks; elsewhere the features are zero.

    Guarantees: causal (a feature at t never depends on x after t); O(T D log T) work;
    no Python loop over T. `backend` is "auto" (Triton on CUDA, reference elsewhere),
    "triton" or "reference".
    """
    L = _check_input(x, levels)
    if check_backend(backend, x) == "triton":
        from .kernels.pyramid.triton import pyramid_triton

        return pyramid_triton(x, L)
    return pyramid_reference(x, L)


def leaky_pyramid(x: torch.Tensor, levels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For teaching only: the naive pyramid that compares the previous block with the
    current, unfinished one, and so reads the future. Same shapes as `pyramid`; its mask
    is True from the second block on. Never use it in a model.
    """
    L = _check_input(x, levels)
    return leaky_pyramid_reference(x, L)
