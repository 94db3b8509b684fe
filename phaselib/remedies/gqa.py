"""Multi-query and grouped-query attention, with the KV cache they shrink.

Book: Part III, "The remedies, measured". H query heads share Hkv key/value heads
(Hkv dividing H; query head h reads key/value head h // (H // Hkv)). Hkv = H is
ordinary multi-head attention, Hkv = 1 is multi-query attention (Shazeer, 2019),
anything between is grouped-query attention (Ainslie et al., 2023). The work per
token is unchanged; what shrinks is the cache a decoder keeps, by H / Hkv
(`cache_bytes_per_token`, from `phaselib.kvcache`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_positive_int
from ..attention import attention
from ..kvcache import kv_cache_bytes
from ._common import attend_rows, check_qkv, check_step, resolve_scale

__all__ = ["gqa_attention", "mqa_attention", "gqa_reference", "KVCache",
           "init_gqa_state", "prefill_gqa_state", "gqa_step", "cache_bytes_per_token"]


def gqa_attention(q, k, v, *, scale: float | None = None) -> torch.Tensor:
    """Causal grouped-query attention: q [B, H, T, dh], k, v [B, Hkv, T, dh] ->
    [B, H, T, dv].

    The fused kernel with `enable_gqa=True`: each group of H / Hkv query heads reads
    its key/value head in place, so no expanded [B, H, T, d] copy of k and v is made
    (PyTorch's CPU flash kernel does so, tested; where it falls back to the math
    kernel, e.g. for dv != dh, the groups are repeated internally). Work as multi-head
    attention; the saving is in memory and in the cache, see `gqa_step`. Equals
    `gqa_reference`."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    s = resolve_scale(scale, dh)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=s,
                                          enable_gqa=Hkv < H)


def mqa_attention(q, k, v, *, scale: float | None = None) -> torch.Tensor:
    """Multi-query attention: `gqa_attention` with one kv head, k, v [B, 1, T, dh]."""
    if k.dim() != 4 or k.shape[1] != 1:
        raise ValueError(f"mqa_attention needs k of shape [B, 1, T, dh], "
                         f"got {tuple(k.shape)}")
    return gqa_attention(q, k, v, scale=scale)


def gqa_reference(q, k, v, *, scale: float | None = None) -> torch.Tensor:
    """The twin: a literal loop over query heads, head h attending with k[:, h // g]."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    s = resolve_scale(scale, dh)
    g = H // Hkv
    outs = [attention(q[:, h:h + 1], k[:, h // g:h // g + 1], v[:, h // g:h // g + 1],
                      causal=True, scale=s)[0] for h in range(H)]
    return torch.cat(outs, dim=1)


@dataclass
class KVCache:
    """The keys and values of the past: k [B, Hkv, capacity, dh],
    v [B, Hkv, capacity, dv]; the first `length` positions are filled. `gqa_step`
    writes into these buffers (a state is not reusable after a step), growing them by
    doubling when full."""

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    def nbytes(self) -> int:
        """Bytes of the filled part: 2 x Hkv x length x d x element size (x B)."""
        B, Hkv, _, dh = self.k.shape
        per = (dh + self.v.shape[-1]) * self.k.element_size()
        return int(B * Hkv * self.length * per)


def init_gqa_state(B: int, n_kv_heads: int, dh: int, dv: int | None = None, *,
                   capacity: int = 256, dtype=torch.float32, device=None) -> KVCache:
    """An empty cache with room for `capacity` tokens (it grows when needed)."""
    for name, val in (("B", B), ("n_kv_heads", n_kv_heads), ("dh", dh),
                      ("capacity", capacity)):
        check_positive_int(name, val)
    dv = dh if dv is None else dv
    return KVCache(torch.zeros(B, n_kv_heads, capacity, dh, dtype=dtype, device=device),
                   torch.zeros(B, n_kv_heads, capacity, dv, dtype=dtype, device=device))


def prefill_gqa_state(k, v, *, capacity: int | None = None) -> KVCache:
    """The cache after the prompt k, v [B, Hkv, T, d], room for `capacity` tokens."""
    T = k.shape[2]
    capacity = T if capacity is None else max(capacity, T)
    pad = (0, 0, 0, capacity - T)
    return KVCache(F.pad(k, pad), F.pad(v, pad), T)


def gqa_step(q_t, k_t, v_t, state: KVCache, *, scale: float | None = None):
    """One token: q_t [B, H, dh], k_t, v_t [B, Hkv, d] -> (out_t [B, H, dv], state).

    Appends k_t, v_t to the cache and attends over all of it, each key/value head read
    once by its group of query heads: O(length d) work per token, O(length Hkv d) cache.
    Equals `gqa_attention` at every position."""
    check_step(q_t, k_t, v_t, state.k.shape[1])
    n = state.length
    k, v = state.k, state.v
    if n == k.shape[2]:                                     # full: double the buffers
        pad = (0, 0, 0, max(1, n))
        k, v = F.pad(k, pad), F.pad(v, pad)
    k[:, :, n], v[:, :, n] = k_t, v_t
    s = resolve_scale(scale, q_t.shape[-1])
    out = attend_rows(q_t, [(k[:, :, :n + 1], v[:, :, :n + 1], None)], scale=s)
    return out, dataclasses.replace(state, k=k, v=v, length=n + 1)


def cache_bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int,
                          bytes_per_elem: int | float = 2) -> int:
    """Bytes one more token adds: 2 x layers x Hkv x head_dim x element size."""
    return kv_cache_bytes(n_layers, n_kv_heads, head_dim, 1, 1, bytes_per_elem)
