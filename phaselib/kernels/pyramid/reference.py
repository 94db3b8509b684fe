"""Plain PyTorch reference for the causal dyadic pyramid (the ground truth).

Book: Part IV, "The causal dyadic pyramid". Level l works on aligned blocks of size
s = 2**l (level 0: single tokens). Block j covers positions [j*s, (j+1)*s) and is
*completed* at position (j+1)*s - 1. At position t, n = (t+1) >> l blocks are complete;
when n >= 2 the feature is the transport between the centroids of blocks n-2 and n-1,
otherwise it is masked to zero. Nothing at t ever reads a position after t.

Centroids come from a dyadic reduction, each level from the one below:
c_l[j] = (c_{l-1}[2j] + c_{l-1}[2j+1]) / 2, so all levels cost O(T D) together and the
transports O(T D) per level: O(T D log T) in all.
"""

from __future__ import annotations

import torch

from ..._levels import pyramid_mask
from ..transport.reference import transport_reference


def block_centroids(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[B, T, D] -> list over levels of [B, T >> l, D]: means of the complete aligned blocks."""
    cents = [x]
    for _ in range(1, levels):
        c = cents[-1]
        n = c.shape[1] // 2
        cents.append(0.5 * (c[:, 0:2 * n:2] + c[:, 1:2 * n:2]))
    return cents


def gather_level(pairs: torch.Tensor, T: int, level: int) -> torch.Tensor:
    """Give pair k = (block k, block k+1) of one level to every position where it is the latest.

    pairs: [B, n-1, F] -> [B, T, F], zero where fewer than two blocks are complete.
    """
    t = torch.arange(T, device=pairs.device)
    idx = ((t + 1) >> level) - 2
    out = pairs[:, idx.clamp(min=0)]
    return torch.where((idx >= 0)[None, :, None], out, torch.zeros_like(out))


def pyramid_reference(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, D] -> features [B, T, L, D+1] and mask [T, L]; causal, O(T D log T)."""
    B, T, D = x.shape
    feats = []
    for level, c in enumerate(block_centroids(x, levels)):
        if c.shape[1] >= 2:
            pairs = transport_reference(c[:, :-1], c[:, 1:])
            feats.append(gather_level(pairs, T, level))
        else:
            feats.append(x.new_zeros(B, T, D + 1))
    return torch.stack(feats, dim=2), pyramid_mask(T, levels, x.device)


def leaky_pyramid_reference(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """THE WRONG WAY, kept for teaching: compares the previous block with the *current* one.

    At position t the current block j = t >> l also holds positions t+1 .. (j+1)*s - 1,
    so its centroid, and the feature, read the future. Level 0 is still causal (a block of
    one token is complete at once); every level above leaks.
    """
    B, T, D = x.shape
    t = torch.arange(T, device=x.device)
    feats, masks = [], []
    for level in range(levels):
        s = 1 << level
        nblocks = -(-T // s)
        padded = x.new_zeros(B, nblocks * s, D)
        padded[:, :T] = x
        counts = torch.full((nblocks,), float(s), device=x.device, dtype=x.dtype)
        counts[-1] = T - (nblocks - 1) * s
        cents = padded.view(B, nblocks, s, D).sum(2) / counts[None, :, None]
        j = t >> level
        valid = j >= 1
        if nblocks >= 2:
            pairs = transport_reference(cents[:, :-1], cents[:, 1:])
            f = pairs[:, (j - 1).clamp(min=0)]
            feats.append(torch.where(valid[None, :, None], f, torch.zeros_like(f)))
        else:
            feats.append(x.new_zeros(B, T, D + 1))
        masks.append(valid)
    return torch.stack(feats, dim=2), torch.stack(masks, dim=1)
