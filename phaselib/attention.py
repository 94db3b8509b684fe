"""Scaled dot-product attention, written out, and the fused path beside it.

Book: Part I, "Attention from scratch". Shapes: q [B, H, Tq, dh], k and v [B, H, Tk, dh].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .taps import Tap

__all__ = ["causal_mask", "attention", "fused_attention", "split_heads", "merge_heads",
           "rotary", "CausalSelfAttention"]


def causal_mask(T: int, window: int | None = None, *, device=None) -> torch.Tensor:
    """[T, T] bool, True where query i may attend to key j.

    window=None: every key up to the query, j <= i (the causal mask). An int `window`
    keeps only the last `window` keys, the query itself included: i - window < j <= i
    (the sliding window, the near field). The one copy of this mask in the package;
    a window >= T gives the plain causal mask. For T = 4, window = 2:

        1 0 0 0
        1 1 0 0
        0 1 1 0
        0 0 1 1
    """
    if isinstance(T, bool) or not isinstance(T, int):
        raise TypeError(f"T must be an int, got {T!r}")
    if T < 0:
        raise ValueError(f"T must be >= 0, got {T}")
    check_positive_int("window", window, allow_none=True)
    d = torch.arange(T, device=device)[:, None] - torch.arange(T, device=device)[None, :]
    allowed = d >= 0                                       # d = i - j, the distance back
    return allowed if window is None else allowed & (d < window)


def _last_queries_mask(Tq: int, Tk: int, device) -> torch.Tensor:
    """[Tq, Tk] bool: the last Tq rows of the causal mask over Tk keys (a cache of Tk - Tq)."""
    return torch.ones(Tq, Tk, dtype=torch.bool, device=device).tril(diagonal=Tk - Tq)


def _check_qkv(q, k, v) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(name, t, ndim=4, shape_doc="of shape [B, H, T, dh]")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"q, k and v must be on one device, got {q.device}, {k.device}, "
                         f"{v.device}")
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q [B, H, Tq, dh], k [B, H, Tk, dh], v [B, H, Tk, dv] do not agree: "
                         f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = True,
              mask: torch.Tensor | None = None,
              scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T * scale + mask) v, returning (out [B, H, Tq, dv], weights [B, H, Tq, Tk]).

    `causal` lets query i see keys j <= i + (Tk - Tq) (the queries are the last Tq
    positions, as in decoding with a cache); `mask` [Tq, Tk] bool adds further
    restrictions (True = may attend). Every row of weights sums to one.
    """
    _check_qkv(q, k, v)
    Tq, Tk = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if causal:
        allowed = _last_queries_mask(Tq, Tk, q.device)
    else:
        allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device)
    if mask is not None:
        if mask.shape != (Tq, Tk) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape [Tq, Tk] = {(Tq, Tk)}, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        if mask.device != q.device:
            raise ValueError(f"mask must be on the device of q ({q.device}), "
                             f"got {mask.device}")
        allowed = allowed & mask
    if not allowed.any(-1).all():
        raise ValueError("mask leaves a query with no key to attend to (a row of all False)")
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    return weights @ v, weights


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = True,
                    scale: float | None = None) -> torch.Tensor:
    """The same output through `F.scaled_dot_product_attention` (no weights are formed)."""
    _check_qkv(q, k, v)
    Tq, Tk = q.shape[-2], k.shape[-2]
    if causal and Tq != Tk:
        mask = _last_queries_mask(Tq, Tk, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """[B, T, H*dh] -> [B, H, T, dh]."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, H, T, dh] -> [B, T, H*dh]."""
    B, H, T, dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * dh)


def rotary(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoPE, Su et al.) of x [B, H, T, dh], dh even: the pair
    (x[2i], x[2i+1]) at position t is turned by the angle t * base^(-2i/dh). Applied to
    queries and keys, it makes each score depend on the two positions only through
    their difference."""
    check_float_tensor("x", x, ndim=4, shape_doc="of shape [B, H, T, dh]")
    T, dh = x.shape[-2], x.shape[-1]
    if dh % 2:
        raise ValueError(f"x must have an even head width dh, got {dh}")
    inv = base ** (-torch.arange(0, dh, 2, device=x.device, dtype=torch.float32) / dh)
    ang = torch.arange(T, device=x.device, dtype=torch.float32)[:, None] * inv  # [T, dh/2]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), -1).flatten(-2)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention (nanoGPT's, with a tap on the pattern).

    Uses the fused kernel unless the pattern is being captured, in which case it writes
    the weights out so `tap_pattern` [B, H, T, T] can record them.

    `rope=True` turns queries and keys by their positions (`rotary`) before the scores.
    `attn_scale="log_n"` multiplies the query at position t by s_h * log(t + 1), t + 1
    being the number of keys it sees, with s_h learnable per head (scalable softmax,
    Part II "F5 Dynamic context collapse"); "standard" leaves the usual 1/sqrt(dh) alone.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = False,
                 attn_scale: str = "standard", rope: bool = False):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        if rope and (n_embd // n_head) % 2:
            raise ValueError(f"rope needs an even head width, got n_embd // n_head = "
                             f"{n_embd // n_head}")
        self.rope = rope
        if attn_scale not in ("standard", "log_n"):
            raise ValueError(f"attn_scale must be 'standard' or 'log_n', got {attn_scale!r}")
        self.n_head = n_head
        self.attn_scale = attn_scale
        if attn_scale == "log_n":
            # s * log n = 1 at n = e**2.5 (about 12 keys): near the standard scale for short
            # contexts, sharper for long ones; training moves s per head.
            self.log_n_s = nn.Parameter(torch.full((n_head,), 0.4))
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.tap_pattern = Tap()  # [B, H, T, T]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(t, self.n_head) for t in self.qkv(x).chunk(3, dim=-1))
        if self.rope:
            q, k = rotary(q), rotary(k)
        if self.attn_scale == "log_n":
            n = torch.arange(1, q.shape[-2] + 1, device=q.device, dtype=q.dtype)
            q = q * (self.log_n_s.view(1, -1, 1, 1) * n.log().view(1, 1, -1, 1)).to(q.dtype)
        if self.tap_pattern.active:
            y, w = attention(q, k, v, causal=True)
            self.tap_pattern(w)
        else:
            y = fused_attention(q, k, v, causal=True)
        return self.dropout(self.proj(merge_heads(y)))
