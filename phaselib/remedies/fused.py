"""Fused attention: `F.scaled_dot_product_attention`, and the reference it must equal.

Book: Part III, "The remedies, measured". A fused kernel (FlashAttention and its kind)
changes how exact attention is computed, tile by tile with an online softmax, never
what it computes: its output is the same as the [T, T] matrix written out, and it
forms no [T, T] weights. `fused_attention` is the one in `phaselib.attention` (here
re-exported); this module adds the grouped-query form and the twin the tests use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attention import fused_attention
from ._common import check_qkv, exact_attention, expand_kv, resolve_scale

__all__ = ["fused_attention", "fused_causal", "fused_reference"]


def fused_causal(q, k, v, *, scale: float | None = None) -> torch.Tensor:
    """Causal attention through PyTorch's fused kernel: q [B, H, T, dh], k, v
    [B, Hkv, T, dh] (Hkv dividing H) -> [B, H, T, dv]. Exact: equals
    `fused_reference`."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    s = resolve_scale(scale, dh)
    return F.scaled_dot_product_attention(q, expand_kv(k, H), expand_kv(v, H),
                                          is_causal=True, scale=s)


def fused_reference(q, k, v, *, scale: float | None = None) -> torch.Tensor:
    """The twin: `phaselib.attention.attention`, softmax of the masked [T, T] scores."""
    return exact_attention(q, k, v, scale=scale)
