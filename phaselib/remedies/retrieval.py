"""Landmark Attention with retrieval: a landmark picks a block, its exact keys are read.

Book: Part III, "The remedies, measured". Landmark Attention (Mohtashami and Jaggi,
2023) cuts the keys into blocks of `block` tokens and gives each block a landmark. A
query's weight on token j of an earlier, finished block b is a product,

    p(b | q) * p(j | q, b),

p(j | q, b) the softmax of q . k_j over the exact keys of block b, p(b | q) one softmax
over the landmark scores of the finished blocks together with a score for the query's
own block (the log-sum-exp of q . k_j over its keys j <= t, so that own-block tokens
get exactly the weight they would have in one softmax with the landmarks: the paper's
"grouped softmax"). The own block is attended exactly and causally. With
`top_k`, only the top_k finished blocks by landmark score keep their weight (their
exact tokens are retrieved, the others get zero) and p(b | q) is renormalised over the
kept blocks and the own block: the paper's retrieval at inference. Unlike
`landmark.block_mean_attention`, which replaces a block by its mean, nothing here is
averaged: every weight lands on an exact token.

Simplified: the paper's landmark is a learned token inserted after every block, its
key made by the network; here the landmark key of a block is the mean of its keys,
and its score is q . mean_b k + log block: a landmark stands for `block` tokens (as
in `landmark`'s block means), so a block of equal keys gets exactly the weight its
tokens have in exact attention, and finished blocks are not outweighed by the own
block's log-sum-exp merely for being one score. No token is inserted, nothing about
landmarks is learned. The
paper retrieves per head and caches blocks in CPU memory; here all blocks are scored
at once and the batch form writes the [T, T] weights out, so it costs O(T^2 d) like
exact attention: the point is what a query can see, not the speed. block = 1, and
block >= T, are exact attention (top_k=None).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_positive_int
from ._common import causal_blocks, check_qkv, expand_kv, resolve_scale

__all__ = ["landmark_retrieval_attention", "landmark_retrieval_reference"]


def _check_top_k(top_k) -> None:
    check_positive_int("top_k", top_k, allow_none=True)


def _keep_top_k(land: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """land [..., n] (-inf where not visible) -> the same with all but the top_k
    largest set to -inf."""
    if top_k is None or top_k >= land.shape[-1]:
        return land
    idx = land.topk(top_k, dim=-1).indices
    kept = torch.zeros_like(land, dtype=torch.bool).scatter_(-1, idx, True)
    return land.masked_fill(~kept, float("-inf"))


def landmark_retrieval_attention(q, k, v, block: int, top_k: int | None = None, *,
                                 scale: float | None = None) -> torch.Tensor:
    """Landmark Attention (grouped softmax, optional top-k block retrieval), landmark
    scores q . mean_b k + log block: q
    [B, H, T, dh], k, v [B, Hkv, T, dh] -> [B, H, T, dv]. Causal; equals
    `landmark_retrieval_reference`.

    Vectorised over blocks: scores of every query against every key in block layout
    [B, H, n, block, n, block]; O(T^2 d) work and O(T^2) memory."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    check_positive_int("block", block)
    _check_top_k(top_k)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    b = min(block, T)
    # own block: exact, causal; its log-sum-exp is the own block's score in p(b | q)
    qc, kc, vc, n, own = causal_blocks(q, k, v, b, s)           # own [B, H, n, b, b]
    dev = q.device
    own_score = own.logsumexp(-1)                               # [B, H, n, b]
    # landmarks: the mean key of each block; only finished blocks m < own block
    land = torch.einsum("bhnid,bhmd->bhnim", qc, kc.mean(-2)) * s + math.log(b)
    m = torch.arange(n, device=dev)
    land = land.masked_fill(~(m[None, :] < m[:, None])[:, None], float("-inf"))
    land = _keep_top_k(land, top_k)
    p_block = torch.softmax(torch.cat([own_score[..., None], land], -1), -1)
    p_own, p_far = p_block[..., :1], p_block[..., 1:]          # [.., 1], [.., n]
    # within each block: softmax over its exact keys
    far = torch.einsum("bhnid,bhmjd->bhnimj", qc, kc) * s       # [B, H, n, b, n, b]
    w_far = p_far[..., None] * torch.softmax(far, -1)
    out = p_own * (torch.softmax(own, -1) @ vc)
    out = out + w_far.flatten(-2) @ vc.flatten(2, 3)[:, :, None]
    return out.reshape(B, H, n * b, -1)[:, :, :T]


def landmark_retrieval_reference(q, k, v, block: int, top_k: int | None = None, *,
                                 scale: float | None = None) -> torch.Tensor:
    """The twin: for each query t, the literal list of finished blocks, their landmark
    scores, the kept ones, p(b | q), and the weights p(b | q) p(j | q, b) token by
    token."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    check_positive_int("block", block)
    _check_top_k(top_k)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    outs = []
    for t in range(T):
        qt = q[:, :, t]                                         # [B, H, dh]
        start = (t // block) * block
        own = torch.einsum("bhjd,bhd->bhj", k[:, :, start:t + 1], qt) * s
        scores, blocks = [own.logsumexp(-1)], []
        for m in range(t // block):
            kb = k[:, :, m * block:(m + 1) * block]
            scores.append((kb.mean(2) * qt).sum(-1) * s + math.log(block))
            blocks.append(m)
        scores = torch.stack(scores, -1)                         # [B, H, 1 + n_done]
        if top_k is not None and len(blocks) > top_k:
            drop = scores[..., 1:].topk(len(blocks) - top_k, -1, largest=False).indices
            scores = scores.scatter(-1, 1 + drop, float("-inf"))
        p = torch.softmax(scores, -1)                            # p(b | q)
        w_own = torch.softmax(own, -1)
        out = p[..., :1] * torch.einsum("bhj,bhjd->bhd", w_own, v[:, :, start:t + 1])
        for c, m in enumerate(blocks):
            kb, vb = (x[:, :, m * block:(m + 1) * block] for x in (k, v))
            w = torch.softmax(torch.einsum("bhjd,bhd->bhj", kb, qt) * s, -1)  # p(j|q,b)
            out = out + p[..., 1 + c, None] * torch.einsum("bhj,bhjd->bhd", w, vb)
        outs.append(out)
    return torch.stack(outs, dim=2)
