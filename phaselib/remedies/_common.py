"""What the remedies share: input checks, the exact attention they approximate, and one
core for "exact keys near the query plus weighted summaries of the far past".

Shapes: q [B, H, T, dh], k [B, Hkv, T, dh], v [B, Hkv, T, dv], Hkv dividing H (query
head h reads key/value head h // (H // Hkv), as in grouped-query attention).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_float_tensor, check_positive_int
from ..attention import attention

__all__ = ["check_qkv", "expand_kv", "exact_attention", "resolve_scale", "attend_rows",
           "local_plus_summaries", "block_view", "tensor_bytes"]


def check_qkv(q, k, v) -> tuple[int, int, int, int, int]:
    """Validate q [B, H, T, dh], k [B, Hkv, T, dh], v [B, Hkv, T, dv].

    Returns (B, H, Hkv, T, dh)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(name, t, ndim=4, shape_doc="of shape [B, H, T, dh]")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, "
                        f"{v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"q, k and v must be on one device, got {q.device}, "
                         f"{k.device}, {v.device}")
    B, H, T, dh = q.shape
    Hkv = k.shape[1]
    if (k.shape[0] != B or k.shape[2:] != (T, dh) or v.shape[:3] != k.shape[:3]
            or Hkv < 1 or H % Hkv):
        raise ValueError("need q [B, H, T, dh], k [B, Hkv, T, dh], v [B, Hkv, T, dv] "
                         f"with Hkv dividing H; got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if T < 1:
        raise ValueError(f"q must have T >= 1 positions, got shape {tuple(q.shape)}")
    return B, H, Hkv, T, dh


def resolve_scale(scale, dh: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(dh)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale must be a positive number or None, got {scale!r}")
    return float(scale)


def expand_kv(x: torch.Tensor, H: int) -> torch.Tensor:
    """[B, Hkv, T, d] -> [B, H, T, d]: query head h gets kv head h // (H // Hkv)."""
    g = H // x.shape[1]
    return x if g == 1 else x.repeat_interleave(g, dim=1)


def exact_attention(q, k, v, *, scale: float | None = None) -> torch.Tensor:
    """Exact causal softmax attention (the [T, T] matrix written out): what the remedies
    approximate. Accepts Hkv < H (key/value heads shared by groups of query heads)."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    s = resolve_scale(scale, dh)
    return attention(q, expand_kv(k, H), expand_kv(v, H), causal=True, scale=s)[0]


def block_view(x: torch.Tensor, block: int) -> tuple[torch.Tensor, int]:
    """[B, H, T, d] -> ([B, H, n, block, d] zero-padded at the end, n)."""
    B, H, T, d = x.shape
    n = -(-T // block)
    return F.pad(x, (0, 0, 0, n * block - T)).view(B, H, n, block, d), n


def causal_blocks(q, k, v, block: int, scale: float):
    """q, k, v [B, H, T, d] cut into blocks of `block` (`block_view`), and each block's
    own causal scores: (qc, kc, vc [B, H, n, block, d], n, scores [B, H, n, block,
    block] with -inf above the diagonal)."""
    qc, n = block_view(q, block)
    kc, _ = block_view(k, block)
    vc, _ = block_view(v, block)
    i = torch.arange(block, device=q.device)
    scores = (qc @ kc.transpose(-1, -2)) * scale
    return qc, kc, vc, n, scores.masked_fill(i[None, :] > i[:, None], float("-inf"))


def local_plus_summaries(q, k, v, block: int, sk=None, sv=None, slogw=None, *,
                         scale: float, band: bool = False,
                         extra=None) -> torch.Tensor:
    """One softmax over exact near keys and weighted summaries of completed blocks.

    q [B, H, T, dh], k, v [B, H, T, d] (already expanded to H heads). Query t in block
    i = t // block sees exactly its own block's keys j <= t (`band`: and the keys of
    block i - 1 with j > t - block, so the exact part is a sliding window of `block`
    keys; no summaries then); plus the summaries of blocks 0 .. i - 1:
    sk [B, H, n, c, dh], sv [B, H, n, c, dv], slogw [B, H, n, c] (log of how
    many keys a summary stands for; -inf for an empty one). A summary of c keys enters
    the softmax as exp(q . sk + slogw): c identical keys are counted exactly. `extra`
    (ek [B, H, m, dh], ev [B, H, m, dv], allowed [T, m] bool) adds m more keys under the
    same softmax (the attention sinks). Work and memory O(T (block + n c + m) d).
    """
    B, H, T, dh = q.shape
    qc, kc, vc, n, near = causal_blocks(q, k, v, block, scale)     # near [B, H, n, b, b]
    dev = q.device
    qi = torch.arange(block, device=dev)
    parts_s, parts_v = [near], [vc]
    if band:
        if sk is not None:
            raise ValueError("band=True takes no summaries "
                             "(they would skip block i - 1)")
        # previous block, keys j > t - block: local index jj > ii
        kp = F.pad(kc, (0, 0, 0, 0, 1, 0))[:, :, :n]
        vp = F.pad(vc, (0, 0, 0, 0, 1, 0))[:, :, :n]
        prev = (qc @ kp.transpose(-1, -2)) * scale
        ok = qi[None, :] > qi[:, None]                                 # [b, b]
        ok = ok & (torch.arange(n, device=dev) > 0)[:, None, None]     # [n, b, b]
        parts_s.append(prev.masked_fill(~ok, float("-inf")))
        parts_v.append(vp)
    if extra is not None:
        ek, ev, allowed = extra
        s_x = F.pad(q @ ek.transpose(-1, -2) * scale, (0, 0, 0, n * block - T))
        ok = F.pad(allowed, (0, 0, 0, n * block - T)).view(n, block, -1)
        parts_s.append(s_x.view(B, H, n, block, -1).masked_fill(~ok, float("-inf")))
        parts_v.append(ev[:, :, None])
    if sk is not None:
        far = torch.einsum("bhnid,bhmcd->bhnimc", qc, sk) * scale
        far = far + slogw[:, :, None, None]
        ar = torch.arange(n, device=dev)
        vis = ar[None, :] < ar[:, None]                               # blocks before i
        far = far.masked_fill(~vis[:, None, :, None], float("-inf"))
        parts_s.append(far.flatten(-2))
        parts_v.append(sv.flatten(2, 3)[:, :, None])
    w = torch.softmax(torch.cat(parts_s, dim=-1), dim=-1)
    out, start = 0, 0
    for s_, v_ in zip(parts_s, parts_v):
        out = out + w[..., start:start + s_.shape[-1]] @ v_
        start += s_.shape[-1]
    return out.reshape(B, H, n * block, -1)[:, :, :T]


def attend_rows(q_t, parts, *, scale: float) -> torch.Tensor:
    """One decoding query over several key sets under one softmax.

    q_t [B, H, dh]; parts: (keys [B, Hkv, M, dh], values [B, Hkv, M, dv], logw or None)
    with logw broadcastable to [B, Hkv, M] (-inf hides a key). -> [B, H, dv]. Grouped:
    the key/value heads are never copied per query head.
    """
    B, H, dh = q_t.shape
    Hkv = parts[0][0].shape[1]
    qg = q_t.view(B, Hkv, H // Hkv, dh)
    scores = []
    for keys, _, logw in parts:
        s = torch.einsum("bkgd,bkmd->bkgm", qg, keys) * scale
        if logw is not None:
            lw = torch.as_tensor(logw, dtype=s.dtype, device=s.device)
            s = s + (lw.unsqueeze(-2) if lw.dim() else lw)
        scores.append(s)
    w = torch.softmax(torch.cat(scores, dim=-1), dim=-1)
    out, start = 0, 0
    for s, (_, values, _) in zip(scores, parts):
        out = out + w[..., start:start + s.shape[-1]] @ values
        start += s.shape[-1]
    return out.reshape(B, H, -1)


def tensor_bytes(*ts) -> int:
    return int(sum(t.numel() * t.element_size() for t in ts))


def check_step(q_t, k_t, v_t, Hkv: int) -> None:
    for name, t in (("q_t", q_t), ("k_t", k_t), ("v_t", v_t)):
        check_float_tensor(name, t, ndim=3, shape_doc="of shape [B, heads, d]")
    if (k_t.shape[1] != Hkv or v_t.shape[1] != Hkv or q_t.shape[1] % Hkv
            or k_t.shape[-1] != q_t.shape[-1] or q_t.shape[0] != k_t.shape[0]):
        raise ValueError(f"need q_t [B, H, dh], k_t [B, {Hkv}, dh], v_t [B, {Hkv}, dv] "
                         f"with the state's {Hkv} key/value heads dividing H; got "
                         f"{tuple(q_t.shape)}, {tuple(k_t.shape)}, {tuple(v_t.shape)}")


check_positive = check_positive_int
