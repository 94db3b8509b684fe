"""One token at a time: the pyramid as a recurrence with O(L D) state (the reference twin).

Book: Part IV, "Streaming". Each level keeps a ring of its last two completed centroids
and a pending half-block for the level above. A new token completes a level-0 block; a
completed block of level l with an odd index completes a block of level l+1 (the mean of
the pending half and itself), and so on up: on average less than two levels change per
token, at most L. The feature of level l changes only when level l completes a block, so
it is cached. The arithmetic is the same as in `reference.py`, so the outputs agree with
the batch pyramid to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..transport.reference import transport_reference


@dataclass
class PyramidState:
    """What the stream remembers: O(L D) numbers per sequence, whatever the length."""

    t: int                  # tokens seen so far
    ring: torch.Tensor      # [B, L, 2, D] last two completed centroids; slot = block index % 2
    pending: torch.Tensor   # [B, L, D] completed block of level l waiting for its right sibling
    features: torch.Tensor  # [B, L, D+1] the current output of every level (zeros until valid)

    @classmethod
    def zeros(cls, batch: int, levels: int, dim: int, *, device=None, dtype=torch.float32):
        return cls(0, torch.zeros(batch, levels, 2, dim, device=device, dtype=dtype),
                   torch.zeros(batch, levels, dim, device=device, dtype=dtype),
                   torch.zeros(batch, levels, dim + 1, device=device, dtype=dtype))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.ring, self.pending, self.features))


def pyramid_step_reference(x_t: torch.Tensor, state: PyramidState) -> tuple[torch.Tensor, PyramidState]:
    """x_t: [B, D] -> ([B, L, D+1] features at this position, the new state). Mutates state."""
    L = state.ring.shape[1]
    t = state.t
    block = x_t
    for level in range(L):
        j = t >> level                       # index of the block this token completes
        state.ring[:, level, j % 2] = block
        if j >= 1:
            state.features[:, level] = transport_reference(state.ring[:, level, (j - 1) % 2], block)
        if level + 1 >= L:
            break
        if j % 2 == 0:                       # left half of a level-(l+1) block: wait
            state.pending[:, level + 1] = block
            break
        block = 0.5 * (state.pending[:, level + 1] + block)  # completes a level-(l+1) block
    state.t = t + 1
    return state.features.clone(), state
