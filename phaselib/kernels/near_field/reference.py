"""Plain PyTorch reference for the near field (the ground truth): masked full attention.

Book: Part IV, "The phase-transport language model". Query i attends to the keys
j with i - window < j <= i (`phaselib.attention.causal_mask(T, window)`), with a learned
bias per head and distance, rel_bias[h, i - j]. This twin builds the [H, T, T] bias and
runs full attention under it: O(T^2) time and memory, only the result is local. The
model uses `banded.near_field_banded`, which computes the same thing in O(T window).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...attention import causal_mask


def distance_bias(rel_bias: torch.Tensor, mask: torch.Tensor, d: torch.Tensor,
                  dtype: torch.dtype) -> torch.Tensor:
    """rel_bias [H, w] at distances d [..] (clamped to 0..w-1), -inf where mask is False."""
    bias = rel_bias[:, d.clamp(0, rel_bias.shape[1] - 1)].to(dtype)
    return bias.masked_fill(~mask, float("-inf"))


def near_field_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         rel_bias: torch.Tensor, window: int) -> torch.Tensor:
    """q, k, v [B, H, T, dh], rel_bias [H, window] -> [B, H, T, dh]; O(T^2)."""
    T = q.shape[2]
    pos = torch.arange(T, device=q.device)
    d = pos[:, None] - pos[None, :]
    bias = distance_bias(rel_bias, causal_mask(T, window, device=q.device), d, q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None])
