"""Block mean-pooling made causal: exact keys in the current block, one mean key and
mean value for every finished block before it (mixer "block-mean"; "landmark" is its
old name, kept for stored results).

Book: Part III, "The remedies, measured". What this is: pooling, a compression of the
far past, each finished block of `block` keys replaced by its mean. What it is not:
Landmark Attention (Mohtashami and Jaggi, 2023), which uses a block's landmark only to
*choose* the block and then attends to its exact tokens; that is
`retrieval.landmark_retrieval_attention` (mixer "landmark-retrieval"). The functions
keep their old names (`landmark_attention`, ...); `block_mean_attention` and
`block_mean_reference` are the same functions under honest names.

Linformer (Wang et al., 2020) mixes the whole sequence into r summaries and
Nystromformer (Xiong et al., 2021) picks landmarks as means of segments of the whole
sequence; both let every query see summaries of the future, so neither is causal as
published. What changed here: a mean summarises a *finished* block of `block` keys
only (as the pyramid's centroids do), a query sees the means of the blocks before its
own and the keys of its own block up to itself exactly, and a mean enters the softmax
as `block` copies of its mean key (exp(q . mean_k + log block)), so a block of equal
keys is counted exactly. No Nystrom pseudo-inverse. block = 1 is exact attention; the
error grows with the block. Cost O(T (block + T / block) d): quadratic with a constant
1 / block, T^1.5 at block ~ sqrt(T).
`efficient_attention.lowrank_attention(causal=True)` (re-exported) is the Linformer
repair by prefix averages; it is tied to one length T.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_positive_int
from ._common import (attend_rows, block_view, check_qkv, check_step, expand_kv,
                      local_plus_summaries, resolve_scale, tensor_bytes)

__all__ = ["landmark_attention", "landmark_reference", "block_mean_attention",
           "block_mean_reference", "LandmarkState", "init_landmark_state",
           "prefill_landmark_state", "landmark_step"]


def landmark_attention(q, k, v, block: int, *,
                       scale: float | None = None) -> torch.Tensor:
    """Causal block mean-pooling: q [B, H, T, dh], k, v [B, Hkv, T, dh] ->
    [B, H, T, dv].

    Equals `landmark_reference`; equals exact attention at block = 1."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    check_positive_int("block", block)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    b = min(block, T)
    kc, n = block_view(k, b)
    vc, _ = block_view(v, b)
    logw = torch.full((B, H, n, 1), math.log(b), dtype=q.dtype, device=q.device)
    return local_plus_summaries(q, k, v, b, kc.mean(-2, keepdim=True),
                                vc.mean(-2, keepdim=True), logw, scale=s)


def landmark_reference(q, k, v, block: int, *,
                       scale: float | None = None) -> torch.Tensor:
    """The twin: for each query t, a literal list of its keys (own block up to t, then
    one mean per earlier block with weight log block) and one softmax over them."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    check_positive_int("block", block)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    outs = []
    for t in range(T):
        start = (t // block) * block
        keys, vals = [k[:, :, start:t + 1]], [v[:, :, start:t + 1]]
        logw = [torch.zeros(t + 1 - start)]
        for m in range(t // block):
            keys.append(k[:, :, m * block:(m + 1) * block].mean(2, keepdim=True))
            vals.append(v[:, :, m * block:(m + 1) * block].mean(2, keepdim=True))
            logw.append(torch.full((1,), math.log(block)))
        sc = (q[:, :, t:t + 1] @ torch.cat(keys, 2).transpose(-1, -2)) * s
        w = torch.softmax(sc + torch.cat(logw).to(q), dim=-1)
        outs.append(w @ torch.cat(vals, 2))
    return torch.cat(outs, dim=2)


block_mean_attention = landmark_attention
block_mean_reference = landmark_reference


@dataclass
class LandmarkState:
    """blk_k/v [B, Hkv, block, d]: the current block (t % block filled); lm_k/v
    [B, Hkv, capacity, d]: the landmarks, n_lm of them; t: tokens seen. `landmark_step`
    writes into these buffers."""

    blk_k: torch.Tensor
    blk_v: torch.Tensor
    lm_k: torch.Tensor
    lm_v: torch.Tensor
    n_lm: int = 0
    t: int = 0

    def nbytes(self) -> int:
        """Bytes held: the current block plus one key and value per completed block."""
        used = self.n_lm * (self.lm_k.shape[-1] + self.lm_v.shape[-1])
        B, Hkv = self.lm_k.shape[:2]
        lm = B * Hkv * used * self.lm_k.element_size()
        return tensor_bytes(self.blk_k, self.blk_v) + lm


def init_landmark_state(B: int, n_kv_heads: int, dh: int, block: int,
                        dv: int | None = None, *, capacity: int = 64,
                        dtype=torch.float32, device=None) -> LandmarkState:
    check_positive_int("block", block)
    check_positive_int("capacity", capacity)
    dv = dh if dv is None else dv

    def z(n, d):
        return torch.zeros(B, n_kv_heads, n, d, dtype=dtype, device=device)

    return LandmarkState(z(block, dh), z(block, dv), z(capacity, dh), z(capacity, dv))


def prefill_landmark_state(k, v, block: int, *,
                           capacity: int | None = None) -> LandmarkState:
    """The state after the prompt k, v [B, Hkv, T, d], room for `capacity` landmarks."""
    check_positive_int("block", block)
    B, Hkv, T, dh = k.shape
    n = T // block
    cap = max(n + 1, capacity or 0)
    st = init_landmark_state(B, Hkv, dh, block, v.shape[-1], capacity=cap,
                             dtype=k.dtype, device=k.device)
    st.lm_k[:, :, :n] = k[:, :, :n * block].unflatten(2, (n, block)).mean(3)
    st.lm_v[:, :, :n] = v[:, :, :n * block].unflatten(2, (n, block)).mean(3)
    r = T - n * block
    st.blk_k[:, :, :r], st.blk_v[:, :, :r] = k[:, :, n * block:], v[:, :, n * block:]
    return dataclasses.replace(st, n_lm=n, t=T)


def landmark_step(q_t, k_t, v_t, state: LandmarkState, *, scale: float | None = None):
    """One token: q_t [B, H, dh], k_t, v_t [B, Hkv, d] -> (out_t [B, H, dv], state).

    O((block + t / block) d) work per token; a completed block becomes one landmark.
    Equals `landmark_attention` at every position."""
    check_step(q_t, k_t, v_t, state.blk_k.shape[1])
    b = state.blk_k.shape[2]
    r, n = state.t % b, state.n_lm
    state.blk_k[:, :, r], state.blk_v[:, :, r] = k_t, v_t
    parts = [(state.blk_k[:, :, :r + 1], state.blk_v[:, :, :r + 1], None)]
    if n:
        parts.append((state.lm_k[:, :, :n], state.lm_v[:, :, :n], math.log(b)))
    out = attend_rows(q_t, parts, scale=resolve_scale(scale, q_t.shape[-1]))
    lm_k, lm_v = state.lm_k, state.lm_v
    if r == b - 1:                                          # the block is complete
        if n == lm_k.shape[2]:
            lm_k, lm_v = F.pad(lm_k, (0, 0, 0, n)), F.pad(lm_v, (0, 0, 0, n))
        lm_k[:, :, n], lm_v[:, :, n] = state.blk_k.mean(2), state.blk_v.mean(2)
        n += 1
    return out, dataclasses.replace(state, lm_k=lm_k, lm_v=lm_v, n_lm=n, t=state.t + 1)
