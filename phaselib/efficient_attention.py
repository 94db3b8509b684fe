"""Cheaper attention: a sliding window, linear (kernel) attention and a low-rank projection.

Book: Part II, "F2 Quadratic pairwise cost". Shapes follow `phaselib.attention`:
q, k [B, H, T, dh], v [B, H, T, dv] -> out [B, H, T, dv]. Each variant is written so
its memory is what its name promises: the window never forms a [T, T] matrix, the
linear form carries a [dh, dv] state instead of the past, and the low-rank form mixes
the sequence down to r summaries. Reference twins beside them (the masked full matrix,
the literal recurrence) are what the tests hold them to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._checks import check_float_tensor, check_positive_int
from .attention import attention, causal_mask

__all__ = ["sliding_window_attention", "sliding_window_reference",
           "elu_feature_map", "linear_attention", "linear_attention_parallel",
           "LinearAttentionState", "linear_attention_step", "linear_attention_recurrent",
           "lowrank_attention"]


def _check_self(q, k, v) -> tuple[int, int, int, int]:
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(name, t, ndim=4, shape_doc="of shape [B, H, T, dh]")
    if q.shape != k.shape or q.shape[:3] != v.shape[:3]:
        raise ValueError("self-attention needs q, k [B, H, T, dh] and v [B, H, T, dv] over the same "
                         f"B, H, T; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[2] < 1:
        raise ValueError(f"q must have T >= 1 positions, got shape {tuple(q.shape)}")
    return tuple(q.shape)


# --- Sliding window ---------------------------------------------------------------------

def sliding_window_reference(q, k, v, window: int, *, scale: float | None = None) -> torch.Tensor:
    """The window as a mask on full attention: O(T^2) memory, the ground truth for the tests."""
    _check_self(q, k, v)
    check_positive_int("window", window)
    T = q.shape[2]
    return attention(q, k, v, causal=True, mask=causal_mask(T, window, device=q.device),
                     scale=scale)[0]


def sliding_window_attention(q, k, v, window: int, *, scale: float | None = None) -> torch.Tensor:
    """Causal attention restricted to the last `window` keys: [B, H, T, dh] -> [B, H, T, dv].

    Queries are taken in chunks of `window`; a chunk's keys are itself and the chunk
    before, so no score matrix is larger than [window, 2 window]. Work and memory are
    O(T window dh), linear in T for a fixed window. Equals full causal attention when
    window >= T.
    """
    B, H, T, dh = _check_self(q, k, v)
    check_positive_int("window", window)
    scale = 1.0 / math.sqrt(dh) if scale is None else scale
    w = min(window, T)
    n = -(-T // w)
    pad = n * w - T
    # Left-pad the keys by one chunk so every query chunk sees [previous chunk, its own chunk].
    kp = F.pad(k, (0, 0, w, pad))
    vp = F.pad(v, (0, 0, w, pad))
    qc = F.pad(q, (0, 0, 0, pad)).view(B, H, n, w, dh)
    kc = kp.unfold(2, 2 * w, w).transpose(-1, -2)          # [B, H, n, 2w, dh]
    vc = vp.unfold(2, 2 * w, w).transpose(-1, -2)          # [B, H, n, 2w, dv]
    scores = (qc @ kc.transpose(-1, -2)) * scale          # [B, H, n, w, 2w]
    qi = torch.arange(w, device=q.device)[:, None] + w    # query index inside [prev | own]
    kj = torch.arange(2 * w, device=q.device)[None, :]
    allowed = (kj <= qi) & (kj > qi - window)              # [w, 2w]
    first = torch.ones(n, 1, 1, dtype=torch.bool, device=q.device)
    first[0] = False                                       # chunk 0 has no previous chunk
    allowed = allowed & (first | (kj >= w))                # [n, w, 2w]
    scores = scores.masked_fill(~allowed, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ vc               # [B, H, n, w, dv]
    return out.reshape(B, H, n * w, -1)[:, :, :T]


# --- Linear attention -------------------------------------------------------------------

def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1 > 0, the feature map of Katharopoulos et al. (2020)."""
    return F.elu(x) + 1.0


def linear_attention_parallel(q, k, v, *, eps: float = 1e-6) -> torch.Tensor:
    """Causal linear attention as a masked [T, T] matrix (the quadratic twin, for tests).

    out_i = sum_{j<=i} (phi(q_i) . phi(k_j)) v_j / (sum_{j<=i} phi(q_i) . phi(k_j) + eps).
    """
    _check_self(q, k, v)
    fq, fk = elu_feature_map(q), elu_feature_map(k)
    T = q.shape[2]
    a = (fq @ fk.transpose(-1, -2)).masked_fill(~causal_mask(T, device=q.device), 0.0)
    return (a @ v) / (a.sum(-1, keepdim=True) + eps)


@dataclass
class LinearAttentionState:
    """What causal linear attention keeps of the past: S = sum phi(k) v^T, z = sum phi(k)."""

    S: torch.Tensor   # [B, H, dh, dv]
    z: torch.Tensor   # [B, H, dh]

    @classmethod
    def zeros(cls, B: int, H: int, dh: int, dv: int, dtype=torch.float32, device=None):
        return cls(torch.zeros(B, H, dh, dv, dtype=dtype, device=device),
                   torch.zeros(B, H, dh, dtype=dtype, device=device))


def linear_attention_step(q_t, k_t, v_t, state: LinearAttentionState, *, eps: float = 1e-6):
    """One token: q_t, k_t [B, H, dh], v_t [B, H, dv] -> (out_t [B, H, dv], new state).

    O(dh dv) work and memory per token, whatever the length of the past.
    """
    fq, fk = elu_feature_map(q_t), elu_feature_map(k_t)
    S = state.S + fk[..., :, None] * v_t[..., None, :]
    z = state.z + fk
    num = (fq[..., None, :] @ S).squeeze(-2)
    den = (fq * z).sum(-1, keepdim=True) + eps
    return num / den, LinearAttentionState(S, z)


def linear_attention_recurrent(q, k, v, *, eps: float = 1e-6) -> torch.Tensor:
    """The literal recurrence: `linear_attention_step` over t = 0 .. T-1 (a Python loop)."""
    B, H, T, dh = _check_self(q, k, v)
    state = LinearAttentionState.zeros(B, H, dh, v.shape[-1], q.dtype, q.device)
    outs = []
    for t in range(T):
        o, state = linear_attention_step(q[:, :, t], k[:, :, t], v[:, :, t], state, eps=eps)
        outs.append(o)
    return torch.stack(outs, dim=2)


def linear_attention(q, k, v, *, chunk: int = 64, eps: float = 1e-6) -> torch.Tensor:
    """Causal linear attention, chunked: [B, H, T, dh] -> [B, H, T, dv].

    Inside a chunk of `chunk` positions the masked matrix form; across chunks the state
    S = sum phi(k) v^T carried by a cumulative sum. Work O(T (chunk + dh) dv) and memory
    O(T dh dv / chunk + T chunk): linear in T. Equals `linear_attention_parallel` and
    `linear_attention_recurrent` up to rounding.
    """
    B, H, T, dh = _check_self(q, k, v)
    check_positive_int("chunk", chunk)
    dv = v.shape[-1]
    c = min(chunk, T)
    n = -(-T // c)
    pad = n * c - T
    fq = F.pad(elu_feature_map(q), (0, 0, 0, pad)).view(B, H, n, c, dh)
    fk = F.pad(elu_feature_map(k), (0, 0, 0, pad)).view(B, H, n, c, dh)  # padded keys: phi = 0
    vc = F.pad(v, (0, 0, 0, pad)).view(B, H, n, c, dv)
    # State entering each chunk: the sum over all earlier chunks (exclusive cumulative sum).
    S = torch.cumsum(fk.transpose(-1, -2) @ vc, dim=2) - fk.transpose(-1, -2) @ vc  # [B,H,n,dh,dv]
    z = torch.cumsum(fk.sum(-2), dim=2) - fk.sum(-2)                                  # [B,H,n,dh]
    a = (fq @ fk.transpose(-1, -2)).masked_fill(~causal_mask(c, device=q.device), 0.0)
    # a: [B, H, n, c, c], causal inside each chunk
    num = a @ vc + fq @ S
    den = a.sum(-1) + (fq @ z[..., :, None]).squeeze(-1)
    out = num / (den[..., None] + eps)
    return out.reshape(B, H, n * c, dv)[:, :, :T]


# --- Low rank (Linformer) ---------------------------------------------------------------

def lowrank_attention(q, k, v, proj_k: torch.Tensor, proj_v: torch.Tensor | None = None, *,
                      causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """Linformer-style attention over r mixed summaries of the sequence: -> [B, H, T, dv].

    proj_k, proj_v: [r, T] (proj_v defaults to proj_k). The keys and values are mixed
    along the sequence, K' = E K and V' = F V ([B, H, r, dh]); each query attends over
    those r rows: O(T r dh) work and memory.

    `causal=False` is Linformer (Wang et al., 2020): every summary row mixes the whole
    sequence, future included, so it is *not* causal and cannot train a next-token model.
    `causal=True` is one repair, and an honest one only in part: query t uses the
    summaries of its prefix alone, K'_t = (1/(t+1)) sum_{j<=t} E[:, j] k_j, via cumulative
    sums. That is causal, but it costs O(T r dh) memory for the prefix summaries, its
    summaries shrink toward an average as t grows, and E is tied to the training length.
    """
    B, H, T, dh = _check_self(q, k, v)
    proj_v = proj_k if proj_v is None else proj_v
    for name, p in (("proj_k", proj_k), ("proj_v", proj_v)):
        check_float_tensor(name, p, ndim=2, shape_doc="of shape [r, T]")
        if p.shape[1] != T:
            raise ValueError(f"{name} must have shape [r, T] with T={T}, got {tuple(p.shape)}")
    if proj_k.shape != proj_v.shape:
        raise ValueError(f"proj_k and proj_v must have the same shape, got {tuple(proj_k.shape)} "
                         f"and {tuple(proj_v.shape)}")
    scale = 1.0 / math.sqrt(dh) if scale is None else scale
    if not causal:
        kr = torch.einsum("rt,bhtd->bhrd", proj_k, k)
        vr = torch.einsum("rt,bhtd->bhrd", proj_v, v)
        return torch.softmax((q @ kr.transpose(-1, -2)) * scale, dim=-1) @ vr
    count = torch.arange(1, T + 1, device=q.device, dtype=q.dtype)[:, None, None]
    kr = torch.cumsum(torch.einsum("rt,bhtd->bhtrd", proj_k, k), dim=2) / count  # [B,H,T,r,dh]
    vr = torch.cumsum(torch.einsum("rt,bhtd->bhtrd", proj_v, v), dim=2) / count
    w = torch.softmax(torch.einsum("bhtd,bhtrd->bhtr", q, kr) * scale, dim=-1)
    return torch.einsum("bhtr,bhtrd->bhtd", w, vr)
