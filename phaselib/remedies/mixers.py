"""The remedies as token mixers: one registry, one interface, for the shared task suite.

Book: Part III, "The remedies, measured". `MIXERS[name](d_model, n_head, block_size,
**kw)` builds a causal `nn.Module` mapping x [B, T, D] -> [B, T, D]; a model swaps one
in where attention was (`phaselib.remedies.model.RemedyLM`). Every attention mixer
projects x to q [B, H, T, dh] and k, v [B, Hkv, T, dh], calls the package's functional
remedy (`phaselib.remedies`: fused, gqa, sinks, landmark, fmm, cluster, and linear
attention from `phaselib.efficient_attention`) and projects back; the state-space mixer
feeds a gated projection of x through `phaselib.remedies.ssm_scan`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float_tensor, check_positive_int
from ..attention import attention, merge_heads, split_heads
from ..efficient_attention import linear_attention
from ._common import expand_kv
from .cluster import cluster_attention
from .fmm import fmm_attention
from .fused import fused_causal, fused_reference
from .gqa import gqa_attention
from .landmark import landmark_attention
from .sinks import sink_attention
from .ssm import ssm_scan

__all__ = ["MIXERS", "make_mixer", "AttentionMixer", "SSMMixer"]


class AttentionMixer(nn.Module):
    """q, k, v projections around a functional attention `kind`; see MIXERS."""

    KINDS = ("softmax", "fused", "window", "sinks", "landmark", "linear", "fmm",
             "cluster")

    def __init__(self, d_model: int, n_head: int, block_size: int, kind: str = "fused",
                 *, n_kv_head: int | None = None, window: int | None = None,
                 n_sink: int = 4, segment: int = 8, n_clusters: int = 2):
        super().__init__()
        for name, val in (("d_model", d_model), ("n_head", n_head),
                          ("block_size", block_size)):
            check_positive_int(name, val)
        if d_model % n_head:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_head ({n_head})")
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        check_positive_int("n_kv_head", n_kv_head)
        if n_head % n_kv_head:
            raise ValueError(f"n_kv_head must divide n_head={n_head}, got {n_kv_head}")
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.kind, self.n_head, self.n_kv_head = kind, n_head, n_kv_head
        self.dh = d_model // n_head
        self.window = max(1, block_size // 4) if window is None else window
        check_positive_int("window", self.window)
        self.n_sink, self.segment, self.n_clusters = n_sink, segment, n_clusters
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * n_kv_head * self.dh, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        if kind == "fmm":
            self.near = nn.Parameter(torch.ones(n_head))
            self.far = nn.Parameter(torch.full((n_head,), 0.5))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]. `mask` [T, T] bool (softmax kinds only) replaces the
        causal mask's reach, e.g. a sliding KV window at test time (still causal)."""
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
        q = split_heads(self.q(x), self.n_head)
        k, v = (split_heads(t, self.n_kv_head) for t in self.kv(x).chunk(2, -1))
        if mask is not None:
            if self.kind not in ("softmax", "fused"):
                raise ValueError(f"mask is only for the softmax kinds, not {self.kind!r}")
            y = attention(q, expand_kv(k, self.n_head), expand_kv(v, self.n_head),
                          causal=True, mask=mask)[0]
        elif self.kind == "softmax":
            y = fused_reference(q, k, v)
        elif self.kind == "fused":
            y = gqa_attention(q, k, v) if self.n_kv_head < self.n_head else \
                fused_causal(q, k, v)
        elif self.kind == "window":
            y = sink_attention(q, k, v, self.window, 0)
        elif self.kind == "sinks":
            y = sink_attention(q, k, v, self.window, self.n_sink)
        elif self.kind == "landmark":
            y = landmark_attention(q, k, v, self.segment)
        elif self.kind == "linear":
            y = linear_attention(q, expand_kv(k, self.n_head), expand_kv(v, self.n_head))
        elif self.kind == "fmm":
            y = fmm_attention(q, k, v, self.window, near_weight=self.near,
                              far_weight=self.far)
        else:
            y = cluster_attention(q, k, v, self.segment, self.n_clusters)
        return self.proj(merge_heads(y))


class SSMMixer(nn.Module):
    """A gated diagonal state-space layer (S4D/Mamba's skeleton without selectivity):
    u = W_in x, h_t = a h_{t-1} + b u_t, y = c h + skip * u, out = W_out (y * silu(W_g x)),
    with a, b, c [D, n_state] learned, a in (0, 1) (decay times 1 .. block_size at init)."""

    def __init__(self, d_model: int, n_head: int, block_size: int, *, n_state: int = 8):
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("n_state", n_state)
        self.inp = nn.Linear(d_model, d_model, bias=False)
        self.gate = nn.Linear(d_model, d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        # Decay times from 1 to block_size positions, log-spaced, per state.
        times = torch.logspace(0, math.log10(max(2, block_size)), n_state)
        self.log_a_raw = nn.Parameter(torch.log(times).repeat(d_model, 1))  # log time
        self.b = nn.Parameter(torch.ones(d_model, n_state))
        self.c = nn.Parameter(torch.randn(d_model, n_state) / math.sqrt(n_state))
        self.skip = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
        if mask is not None:
            raise ValueError("mask is only for the softmax kinds, not 'ssm'")
        u = self.inp(x)
        a = torch.exp(-torch.exp(-self.log_a_raw))    # a = exp(-1 / time) in (0, 1)
        y = ssm_scan(u, a, self.b, self.c) + self.skip * u
        return self.proj(y * F.silu(self.gate(x)))


def _attn(kind: str, **fixed):
    def make(d_model: int, n_head: int, block_size: int, **kw) -> nn.Module:
        return AttentionMixer(d_model, n_head, block_size, kind, **{**fixed, **kw})
    return make


def _gqa(d_model: int, n_head: int, block_size: int, **kw) -> nn.Module:
    kw.setdefault("n_kv_head", max(1, n_head // 2))
    return AttentionMixer(d_model, n_head, block_size, "fused", **kw)


# name -> factory(d_model, n_head, block_size, **kw) -> causal mixer [B, T, D] -> [B, T, D]
MIXERS = {
    "softmax": _attn("softmax"),
    "fused": _attn("fused"),
    "mqa": _attn("fused", n_kv_head=1),
    "gqa": _gqa,
    "window": _attn("window"),
    "sinks": _attn("sinks"),
    "landmark": _attn("landmark"),
    "linear": _attn("linear"),
    "fmm": _attn("fmm"),
    "cluster": _attn("cluster"),
    "ssm": SSMMixer,
}


def make_mixer(name: str, d_model: int, n_head: int, block_size: int, **kw) -> nn.Module:
    """MIXERS[name](d_model, n_head, block_size, **kw), with a clear error for a bad name."""
    if name not in MIXERS:
        raise ValueError(f"name must be one of {sorted(MIXERS)}, got {name!r}")
    return MIXERS[name](d_model, n_head, block_size, **kw)
