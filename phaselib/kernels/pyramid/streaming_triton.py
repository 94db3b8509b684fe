"""Triton kernel for one streaming step of the pyramid, for a batch of sequences.

Book: Part IV, "GPU kernels". The twin is `streaming.py` beside this file, and the state
is its `PyramidState`. All sequences of the batch are at the same position t, so the
levels a token touches are known on the host: level 0 always, and level l+1 while the
block just completed at level l has an odd index, i.e. 1 + (trailing one bits of t)
levels, capped at L. One launch does them all, BLOCK_B sequences per program, the running
centroid kept in registers from one level to the next: O(L D) work per token and no
dependence on how many tokens came before.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..._checks import triton_interpreting
from ..transport.reference import ANTIPODAL_TOL, EPS
from ..transport.triton import _transport_rows
from .streaming import PyramidState


@triton.jit
def _pyramid_step_kernel(X, RING, PEND, FEAT, Bsz, t, top, L, D,
                         EPS: tl.constexpr, TOL: tl.constexpr,
                         BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr):
    """Levels 0..top for sequences of this program: ring, feature and pending updates."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = tl.arange(0, BLOCK_D)
    mask_d = cols < D
    m = (rows < Bsz)[:, None] & mask_d[None, :]
    r64 = rows.to(tl.int64)
    block = tl.load(X + r64[:, None] * D + cols[None, :], mask=m, other=0.0).to(tl.float32)
    for level in range(top + 1):
        j = t >> level                                  # the block this token completes
        slot = j % 2
        ring_l = RING + (r64 * L + level)[:, None] * (2 * D) + cols[None, :]
        tl.store(ring_l + slot * D, block, mask=m)
        if j >= 1:
            prev = tl.load(ring_l + (1 - slot) * D, mask=m, other=0.0).to(tl.float32)
            log_map, rho = _transport_rows(prev, block, cols, mask_d, EPS, TOL)
            feat = FEAT + (r64 * L + level) * (D + 1)
            tl.store(feat[:, None] + cols[None, :], log_map, mask=m)
            tl.store(feat + D, rho, mask=rows < Bsz)
        pend = PEND + (r64 * L + level + 1)[:, None] * D + cols[None, :]
        if level < top:                                 # odd block: completes one a level up
            block = 0.5 * (tl.load(pend, mask=m, other=0.0).to(tl.float32) + block)
        elif level + 1 < L:                             # even block: wait for its sibling
            tl.store(pend, block, mask=m)


def levels_touched(t: int, levels: int) -> int:
    """How many levels token t (0-based) completes a block at: 1 + trailing ones of t, <= L."""
    return min(((t ^ (t + 1)).bit_length() - 1) + 1, levels)


def pyramid_step_triton(x_t: torch.Tensor, state: PyramidState) -> tuple[torch.Tensor, PyramidState]:
    """x_t: [B, D] -> ([B, L, D+1] features at this position, the new state). Mutates state.

    Same contract and same arithmetic as `pyramid_step_reference`.
    """
    B, L, _, D = state.ring.shape
    for name, tensor in (("ring", state.ring), ("pending", state.pending), ("features", state.features)):
        if not tensor.is_contiguous():
            raise ValueError(f"state.{name} must be contiguous for the Triton step")
    x_t = x_t.contiguous()
    BLOCK_D = triton.next_power_of_2(D)
    budget = 1 << 14 if triton_interpreting() else 1 << 10   # larger tiles spill registers on sm_90
    BLOCK_B = max(1, min(triton.next_power_of_2(B), budget // BLOCK_D))
    top = levels_touched(state.t, L) - 1
    _pyramid_step_kernel[(triton.cdiv(B, BLOCK_B),)](
        x_t, state.ring, state.pending, state.features, B, state.t, top, L, D,
        EPS=EPS, TOL=ANTIPODAL_TOL, BLOCK_B=BLOCK_B, BLOCK_D=BLOCK_D)
    state.t += 1
    return state.features.clone(), state
