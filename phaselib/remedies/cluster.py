"""k-means centroids of finished blocks: exact keys in the current block, and every
finished block compressed by k-means into `n_clusters` summaries, each counted by its
size (mixer "centroids"; "cluster" is its old name, kept for stored results).

Book: Part III, "The remedies, measured". What this is: compression, a monopole
summary of each group of keys in the manner of MuSe (multipole summaries); a query
never sees the far keys themselves, only centroids. What it is not: Routing
Transformer (Roy et al., 2021) and Reformer (Kitaev et al., 2020) cluster or hash by
content too, but keep the exact keys and only restrict *which* keys a query sees (its
own cluster or bucket); that is `lsh.lsh_attention` (mixer "lsh"). The functions keep
their old names; `centroid_attention` and `centroid_reference` are the same functions
under honest names.

Causal here: a block is clustered once it is complete (k-means on its keys alone, a
fixed number of iterations from keys spread evenly over the block), and its summaries
never change afterwards, so a decoder compresses each block as it completes. A cluster
of m keys with mean key mu and mean value nu enters the softmax as exp(q . mu + log m)
with value nu (the monopole; MuSe adds a dipole correction, not done here).
n_clusters = block is exact attention. Cost O(T (block + n_clusters T / block) d).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_positive_int
from ._common import (attend_rows, block_view, check_qkv, check_step, expand_kv,
                      local_plus_summaries, resolve_scale, tensor_bytes)

__all__ = ["kmeans_keys", "cluster_attention", "cluster_reference",
           "centroid_attention", "centroid_reference", "ClusterState",
           "init_cluster_state", "prefill_cluster_state", "cluster_step"]


def kmeans_keys(kb: torch.Tensor, vb: torch.Tensor, n_clusters: int, iters: int = 3):
    """k-means on keys kb [..., b, dh]; the values vb [..., b, dv] follow their keys.

    Starts from the keys at positions (i * b) // n_clusters, runs `iters` rounds of
    (assign each key to its nearest centroid, move each centroid to its members' mean;
    an empty cluster keeps its centroid). Returns (centroid keys [..., c, dh], mean
    values [..., c, dv], log sizes [..., c], -inf for an empty cluster), all from the
    final assignment. Deterministic."""
    check_positive_int("n_clusters", n_clusters)
    b = kb.shape[-2]
    c = min(n_clusters, b)
    idx = (torch.arange(c, device=kb.device) * b) // c
    mu = kb[..., idx, :]
    for it in range(iters + 1):
        d = (kb.unsqueeze(-2) - mu.unsqueeze(-3)).pow(2).sum(-1)        # [..., b, c]
        onehot = F.one_hot(d.argmin(-1), c).to(kb.dtype)                 # [..., b, c]
        size = onehot.sum(-2)                                            # [..., c]
        denom = size.clamp(min=1).unsqueeze(-1)
        new_mu = (onehot.transpose(-1, -2) @ kb) / denom
        mu = torch.where(size.unsqueeze(-1) > 0, new_mu, mu)
    nu = (onehot.transpose(-1, -2) @ vb) / denom
    return mu, nu, size.log()


def _summaries(k, v, block, n_clusters, iters):
    kc, n = block_view(k, block)
    vc, _ = block_view(v, block)
    return kmeans_keys(kc, vc, n_clusters, iters)               # [B, Hkv, n, c, ...]


def cluster_attention(q, k, v, block: int, n_clusters: int, *, iters: int = 3,
                      scale: float | None = None) -> torch.Tensor:
    """Causal attention to k-means centroids of finished blocks: q [B, H, T, dh],
    k, v [B, Hkv, T, dh] -> [B, H, T, dv].

    Equals `cluster_reference`; exact when n_clusters >= block."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    check_positive_int("block", block)
    s = resolve_scale(scale, dh)
    b = min(block, T)
    mu, nu, logw = _summaries(k, v, b, n_clusters, iters)               # on Hkv heads
    g = H // Hkv
    mu, nu, logw = (x.repeat_interleave(g, dim=1) for x in (mu, nu, logw))
    return local_plus_summaries(q, expand_kv(k, H), expand_kv(v, H), b, mu, nu, logw,
                                scale=s)


def cluster_reference(q, k, v, block: int, n_clusters: int, *, iters: int = 3,
                      scale: float | None = None) -> torch.Tensor:
    """The twin: for each query t, a literal list of its keys (own block up to t, then
    the clusters of each earlier block, `kmeans_keys` block by block) and one
    softmax."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    blocks = [slice(m * block, (m + 1) * block) for m in range(T // block)]
    summ = [kmeans_keys(k[:, :, b], v[:, :, b], n_clusters, iters) for b in blocks]
    outs = []
    for t in range(T):
        start = (t // block) * block
        keys, vals = [k[:, :, start:t + 1]], [v[:, :, start:t + 1]]
        logw = [torch.zeros(B, H, t + 1 - start).to(q)]
        for mu, nu, lw in summ[:t // block]:
            keys.append(mu)
            vals.append(nu)
            logw.append(lw)
        sc = (q[:, :, t:t + 1] @ torch.cat(keys, 2).transpose(-1, -2)) * s
        w = torch.softmax(sc + torch.cat(logw, 2).unsqueeze(2), dim=-1)
        outs.append(w @ torch.cat(vals, 2))
    return torch.cat(outs, dim=2)


centroid_attention = cluster_attention
centroid_reference = cluster_reference


@dataclass
class ClusterState:
    """blk_k/v [B, Hkv, block, d]: the current block; mu, nu [B, Hkv, capacity, d] and
    logw [B, Hkv, capacity]: the summaries, n_sum of them; t: tokens seen.
    `cluster_step` writes into these buffers."""

    blk_k: torch.Tensor
    blk_v: torch.Tensor
    mu: torch.Tensor
    nu: torch.Tensor
    logw: torch.Tensor
    n_clusters: int
    iters: int = 3
    n_sum: int = 0
    t: int = 0

    def nbytes(self) -> int:
        """Bytes held: the current block plus (key, value, size) per summary."""
        B, Hkv = self.mu.shape[:2]
        per = self.mu.shape[-1] + self.nu.shape[-1] + 1
        return (tensor_bytes(self.blk_k, self.blk_v)
                + B * Hkv * self.n_sum * per * self.mu.element_size())


def init_cluster_state(B: int, n_kv_heads: int, dh: int, block: int, n_clusters: int,
                       dv: int | None = None, *, iters: int = 3, capacity: int = 64,
                       dtype=torch.float32, device=None) -> ClusterState:
    for name, val in (("block", block), ("n_clusters", n_clusters),
                      ("capacity", capacity)):
        check_positive_int(name, val)
    dv = dh if dv is None else dv

    def z(n, d):
        return torch.zeros(B, n_kv_heads, n, d, dtype=dtype, device=device)

    cap = capacity * min(n_clusters, block)
    return ClusterState(z(block, dh), z(block, dv), z(cap, dh), z(cap, dv),
                        torch.zeros(B, n_kv_heads, cap, dtype=dtype, device=device),
                        n_clusters, iters)


def prefill_cluster_state(k, v, block: int, n_clusters: int, *, iters: int = 3,
                          capacity: int | None = None) -> ClusterState:
    """The state after the prompt k, v [B, Hkv, T, d] (room for `capacity` blocks)."""
    B, Hkv, T, dh = k.shape
    n = T // block
    st = init_cluster_state(B, Hkv, dh, block, n_clusters, v.shape[-1], iters=iters,
                            capacity=max(n + 1, capacity or 0), dtype=k.dtype,
                            device=k.device)
    if n:
        mu, nu, lw = _summaries(k[:, :, :n * block], v[:, :, :n * block], block,
                                n_clusters, iters)
        m = n * mu.shape[-2]
        st.mu[:, :, :m], st.nu[:, :, :m] = mu.flatten(2, 3), nu.flatten(2, 3)
        st.logw[:, :, :m] = lw.flatten(2)
    r = T - n * block
    st.blk_k[:, :, :r], st.blk_v[:, :, :r] = k[:, :, n * block:], v[:, :, n * block:]
    return dataclasses.replace(st, n_sum=n * min(n_clusters, block), t=T)


def cluster_step(q_t, k_t, v_t, state: ClusterState, *, scale: float | None = None):
    """One token: q_t [B, H, dh], k_t, v_t [B, Hkv, d] -> (out_t [B, H, dv], state).

    O((block + n_sum) d) work per token, plus k-means on the block when it completes.
    Equals `cluster_attention` at every position (up to rounding)."""
    check_step(q_t, k_t, v_t, state.blk_k.shape[1])
    b = state.blk_k.shape[2]
    r, n = state.t % b, state.n_sum
    state.blk_k[:, :, r], state.blk_v[:, :, r] = k_t, v_t
    parts = [(state.blk_k[:, :, :r + 1], state.blk_v[:, :, :r + 1], None)]
    if n:
        parts.append((state.mu[:, :, :n], state.nu[:, :, :n], state.logw[:, :, :n]))
    out = attend_rows(q_t, parts, scale=resolve_scale(scale, q_t.shape[-1]))
    mu, nu, logw = state.mu, state.nu, state.logw
    if r == b - 1:                                          # the block is complete
        c = min(state.n_clusters, b)
        if n + c > mu.shape[2]:
            grow = max(c, n)
            mu, nu = F.pad(mu, (0, 0, 0, grow)), F.pad(nu, (0, 0, 0, grow))
            logw = F.pad(logw, (0, grow))
        m_, n_, l_ = kmeans_keys(state.blk_k, state.blk_v, state.n_clusters,
                                 state.iters)
        mu[:, :, n:n + c], nu[:, :, n:n + c], logw[:, :, n:n + c] = m_, n_, l_
        n += c
    return out, dataclasses.replace(state, mu=mu, nu=nu, logw=logw, n_sum=n,
                                    t=state.t + 1)
