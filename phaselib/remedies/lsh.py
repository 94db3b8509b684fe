"""Routing by content with exact keys: LSH buckets, as in Reformer.

Book: Part III, "The remedies, measured". Reformer (Kitaev et al., 2020) hashes every
query and key with angular locality-sensitive hashing, h(x) = argmax [xR ; -xR] for a
random rotation R [dh, n_buckets / 2], and lets a query attend only to the keys in
its own bucket: exact keys, softmax, but a query sees only the keys whose direction is
near its own. Reformer shares queries and keys (k = q / |q|), so that a query and
its own key always fall in one bucket; `phaselib.remedies.mixers` does so. Here a query
attends causally to the exact keys j <= t in its bucket, and always to itself (so no
row is empty, whatever the keys); where Reformer forbids attending to oneself unless
nothing else is there, this keeps it, since the query's own key is in its bucket.

Contrast `cluster.centroid_attention`, which replaces far keys by centroids
(compression); here no key is changed, the restriction is only which ones a query
sees. Simplified: one hash round (Reformer uses several and merges them), no sorting
into chunks of equal size: the [T, T] bucket mask is built densely, so this costs
O(T^2 d) like exact attention; the point is the restriction, not the speed.
n_buckets = 1 is exact causal attention.
"""

from __future__ import annotations

import torch

from .._checks import check_positive_int
from ._common import check_qkv, expand_kv, resolve_scale

__all__ = ["lsh_rotation", "lsh_buckets", "lsh_mask", "lsh_attention", "lsh_reference"]


def lsh_rotation(dh: int, n_buckets: int, *, seed: int = 0,
                 dtype=torch.float32) -> torch.Tensor:
    """A random rotation R [dh, n_buckets // 2], Gaussian entries from
    torch.Generator().manual_seed(seed) (the global seed is untouched). n_buckets must
    be 1 (R has no columns: one bucket) or even."""
    check_positive_int("dh", dh)
    check_positive_int("n_buckets", n_buckets)
    if n_buckets > 1 and n_buckets % 2:
        raise ValueError(f"n_buckets must be 1 or even (argmax over [xR, -xR]), "
                         f"got {n_buckets}")
    g = torch.Generator().manual_seed(seed)
    return torch.randn(dh, n_buckets // 2, generator=g).to(dtype)


def lsh_buckets(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """x [..., dh] -> bucket ids [...] (long) in [0, 2 r): argmax [xR ; -xR] for R
    [dh, r]; all 0 when r = 0. Depends on x's direction only."""
    if rotation.dim() != 2 or rotation.shape[0] != x.shape[-1]:
        raise ValueError(f"rotation must have shape [dh, n_buckets // 2] with "
                         f"dh = {x.shape[-1]}, got {tuple(rotation.shape)}")
    if rotation.shape[1] == 0:
        return torch.zeros(x.shape[:-1], dtype=torch.long, device=x.device)
    xr = x @ rotation.to(x)
    return torch.cat([xr, -xr], dim=-1).argmax(-1)


def lsh_mask(q, k, rotation: torch.Tensor) -> torch.Tensor:
    """[B, H, T, T] bool: query t may see key j iff j <= t and they share a bucket,
    or j = t. q, k [B, H, T, dh]."""
    hq, hk = lsh_buckets(q, rotation), lsh_buckets(k, rotation)     # [B, H, T]
    T = q.shape[2]
    i = torch.arange(T, device=q.device)
    causal = i[None, :] <= i[:, None]
    same = hq[..., :, None] == hk[..., None, :]
    return (same & causal) | torch.eye(T, dtype=torch.bool, device=q.device)


def _check(q, k, v, rotation):
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    if not isinstance(rotation, torch.Tensor):
        raise TypeError(f"rotation must be a tensor [dh, n_buckets // 2] "
                        f"(see lsh_rotation), got {type(rotation).__name__}")
    return B, H, Hkv, T, dh


def lsh_attention(q, k, v, rotation: torch.Tensor, *,
                  scale: float | None = None) -> torch.Tensor:
    """Causal softmax attention inside LSH buckets: q [B, H, T, dh], k, v
    [B, Hkv, T, dh], rotation [dh, n_buckets // 2] (`lsh_rotation`) -> [B, H, T, dv].

    Queries and keys are hashed with the same rotation; pass k = q / |q| for
    Reformer's shared QK. Equals `lsh_reference`; exact causal attention when the
    rotation has no columns (one bucket). Dense mask: O(T^2 d)."""
    B, H, Hkv, T, dh = _check(q, k, v, rotation)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    scores = (q @ k.transpose(-1, -2)) * s                     # [B, H, T, T]
    scores = scores.masked_fill(~lsh_mask(q, k, rotation), float("-inf"))
    return torch.softmax(scores, -1) @ v


def lsh_reference(q, k, v, rotation: torch.Tensor, *,
                  scale: float | None = None) -> torch.Tensor:
    """The twin: for each batch, head and query t, the literal list of keys j <= t in
    t's bucket (and t itself), and one softmax over them."""
    B, H, Hkv, T, dh = _check(q, k, v, rotation)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    hq, hk = lsh_buckets(q, rotation), lsh_buckets(k, rotation)
    out = q.new_zeros(B, H, T, v.shape[-1])
    for b in range(B):
        for h in range(H):
            for t in range(T):
                keys = [j for j in range(t + 1) if hk[b, h, j] == hq[b, h, t] or j == t]
                w = torch.softmax((k[b, h, keys] @ q[b, h, t]) * s, -1)
                out[b, h, t] = w @ v[b, h, keys]
    return out
