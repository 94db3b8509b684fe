"""Triton kernel for one streaming step of the pyramid, for a batch of sequences.

Book: Part IV, "GPU kernels". The twin is `streaming.py` beside this file, and the state
is its `PyramidState`. All sequences of the batch are at the same position t, so the
levels a token touches are known on the host: level 0 always, and level l+1 while the
block just completed at level l has an odd index, i.e. `levels_completed(t, L)` levels
(1 + trailing one bits of t, capped at L). One launch does them all, BLOCK_B sequences
per program: at each level the new centroid is written into the ring tile by tile over
D, then the transport from the ring's other slot reads it back (the same
`_transport_fwd_rows` as the batch kernel). O(L D) work per token and no dependence on
how many tokens came before.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..._levels import levels_completed
from .._launch import launch_device
from .._tiles import tile_sizes
from ..transport.reference import ANTIPODAL_TOL, EPS
from ..transport.triton import _transport_fwd_rows
from .streaming import PyramidState

__all__ = ["pyramid_step_triton", "levels_completed"]

# The step's tile on a GPU: at most 8 rows per program, in 2 warps. ptxas reports (fp32,
# Triton 3.6 and 3.7): 16 rows of 64 in 4 warps spilled 72 bytes on sm_80 and sm_75
# (seen on an H200's Triton 3.6 first), 8 rows of 64 in 4 warps 16 bytes on sm_90; 8
# rows of 64 or of 128 in 2 warps spill on none of sm_90, sm_80, sm_75.
STEP_BUDGET = 1 << 10
STEP_MAX_ROWS = 8
STEP_NUM_WARPS = 2


# t and top change at every token: not specialised (Triton would otherwise key the
# compiled kernel on t == 1 and t % 16 == 0, and work that out at every launch).
@triton.jit(do_not_specialize=["t", "top"])
def _pyramid_step_kernel(X, RING, PEND, FEAT, Bsz, t, top, L, D,
                         EPS: tl.constexpr, TOL: tl.constexpr,
                         BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr):
    """Levels 0..top for the sequences of this program: ring, feature and pending updates.

    RING [B, L, 2, D], PEND [B, L, D], FEAT [B, L, D+1]: a sequence's rows are L*2*D,
    L*D and L*(D+1) elements apart."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = rows < Bsz
    r64 = rows.to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    s_ring = L * 2 * D
    s_pend = L * D
    for level in range(top + 1):
        j = t >> level                                  # the block this token completes
        slot = j % 2
        now = RING + level * 2 * D + slot * D           # where this level's new centroid goes
        lm1 = tl.maximum(level - 1, 0)                  # the level below (level >= 1 only)
        below = RING + lm1 * 2 * D + ((t >> lm1) % 2) * D
        for d0 in range(0, D, BLOCK_D):
            c = d0 + cols
            m = mask_b[:, None] & (c < D)[None, :]
            if level == 0:
                blk = tl.load(X + r64[:, None] * D + c[None, :], mask=m, other=0.0).to(tl.float32)
            else:                                       # odd block below: the mean of the pair
                left = tl.load(PEND + r64[:, None] * s_pend + level * D + c[None, :], mask=m,
                               other=0.0).to(tl.float32)
                right = tl.load(below + r64[:, None] * s_ring + c[None, :], mask=m,
                                other=0.0).to(tl.float32)
                blk = 0.5 * (left + right)
            tl.store(now + r64[:, None] * s_ring + c[None, :], blk.to(RING.dtype.element_ty),
                     mask=m)
        tl.debug_barrier()                              # the stores are read back below
        if j >= 1:
            _transport_fwd_rows(RING + level * 2 * D + (1 - slot) * D, now, FEAT + level * (D + 1),
                                r64, mask_b, s_ring, s_ring, L * (D + 1), D,
                                EPS, TOL, BLOCK_B, BLOCK_D)
        if level == top and level + 1 < L:             # even block: wait for its sibling
            for d0 in range(0, D, BLOCK_D):
                c = d0 + cols
                m = mask_b[:, None] & (c < D)[None, :]
                blk = tl.load(now + r64[:, None] * s_ring + c[None, :], mask=m, other=0.0)
                tl.store(PEND + r64[:, None] * s_pend + (level + 1) * D + c[None, :], blk, mask=m)


def pyramid_step_triton(x_t: torch.Tensor, state: PyramidState) -> tuple[torch.Tensor, PyramidState]:
    """x_t: [B, D] -> ([B, L, D+1] features at this position, the new state). Mutates state.

    Same contract and same arithmetic as `pyramid_step_reference`.
    """
    B, L, _, D = state.ring.shape
    for name, tensor in (("ring", state.ring), ("pending", state.pending),
                         ("features", state.features)):
        if not tensor.is_contiguous():
            raise ValueError(f"state.{name} must be contiguous for the Triton step")
    x_t = x_t.contiguous()
    BLOCK_B, BLOCK_D = tile_sizes(B, D, budget=STEP_BUDGET, max_rows=STEP_MAX_ROWS)
    top = levels_completed(state.t, L) - 1
    with launch_device(state.ring):
        _pyramid_step_kernel[(triton.cdiv(B, BLOCK_B),)](
            x_t, state.ring, state.pending, state.features, B, state.t, top, L, D,
            EPS=EPS, TOL=ANTIPODAL_TOL, BLOCK_B=BLOCK_B, BLOCK_D=BLOCK_D,
            num_warps=STEP_NUM_WARPS)
    state.t += 1
    return state.features.clone(), state
