"""The remedies as token mixers: one registry, one interface, for the shared task suite.

Book: Part III, "The remedies, measured". `MIXERS[name](d_model, n_head, block_size,
**kw)` builds a causal `nn.Module` mapping x [B, T, D] -> [B, T, D]; a model swaps one
in where attention was (`phaselib.remedies.model.RemedyLM`). Every attention mixer
projects x to q [B, H, T, dh] and k, v [B, Hkv, T, dh], calls a functional form and
projects back; the diagonal state-space mixer has no q, k or v. The functional forms
come from `phaselib.attention` and `phaselib.efficient_attention`; the few that are not
there yet (sinks, segment-mean landmarks, FMM, clusters, the diagonal recurrence) are
written here in their plainest causal form, for quality at small sizes, not speed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float_tensor, check_positive_int
from ..attention import attention, causal_mask, fused_attention, merge_heads, split_heads
from ..efficient_attention import linear_attention, sliding_window_attention

__all__ = ["MIXERS", "make_mixer", "AttentionMixer", "SSMMixer", "sink_mask",
           "landmark_attention", "fmm_attention", "cluster_attention", "ssm_scan"]


def _expand(kv: torch.Tensor, n_head: int) -> torch.Tensor:
    """k or v [B, Hkv, T, dh] -> [B, H, T, dh]: each kv head serves H / Hkv query heads."""
    return kv.repeat_interleave(n_head // kv.shape[1], dim=1)


def sink_mask(T: int, window: int, n_sink: int, *, device=None) -> torch.Tensor:
    """[T, T] bool: the last `window` keys and the first `n_sink` keys (causal)."""
    sinks = torch.arange(T, device=device)[None, :] < n_sink
    return causal_mask(T, window, device=device) | (sinks & causal_mask(T, device=device))


def landmark_attention(q, k, v, segment: int) -> torch.Tensor:
    """Causal segment-mean landmarks: [B, H, T, dh] -> [B, H, T, dh].

    Query t attends over itself and the means of k and v over every segment of
    `segment` positions that ended before t (the landmarks of Nystromformer, made
    causal by using finished segments only); a landmark's logit gets + log(segment) so
    it weighs as the segment's keys would if they were equal. O(T^2 / segment) work.
    """
    B, H, T, dh = q.shape
    n = T // segment
    scale = 1.0 / math.sqrt(dh)
    self_logit = (q * k).sum(-1, keepdim=True) * scale                  # [B, H, T, 1]
    if n == 0:
        return v.clone()
    km = k[:, :, :n * segment].reshape(B, H, n, segment, dh).mean(3)    # [B, H, n, dh]
    vm = v[:, :, :n * segment].reshape(B, H, n, segment, dh).mean(3)
    logits = (q @ km.transpose(-1, -2)) * scale + math.log(segment)     # [B, H, T, n]
    ends = (torch.arange(n, device=q.device) + 1) * segment             # segment s: < ends
    done = ends[None, :] <= torch.arange(T, device=q.device)[:, None]   # [T, n]
    logits = logits.masked_fill(~done, float("-inf"))
    w = torch.softmax(torch.cat([self_logit, logits], -1), -1)
    return w[..., :1] * v + w[..., 1:] @ vm


def fmm_attention(q, k, v, window: int, near: torch.Tensor, far: torch.Tensor):
    """Banded softmax (near field) plus causal linear attention (far field), FMMformer's
    blend: near[h] * band + far[h] * linear, with per-head weights near, far [H]."""
    band = sliding_window_attention(q, k, v, window)
    lin = linear_attention(q, k, v)
    return near.view(1, -1, 1, 1) * band + far.view(1, -1, 1, 1) * lin


def cluster_attention(q, k, v, window: int, codes: torch.Tensor) -> torch.Tensor:
    """Exact near field plus cluster summaries of the far field (a monopole expansion).

    Keys older than the last `window` positions are grouped by their nearest code (codes
    [C, dh], unit rows: a fixed, content-based partition in the manner of routing and
    multipole attention); each cluster enters the softmax once, as its mean key and mean
    value with logit + log(count). A cluster of one key is exact. O(T (window + C) dh)
    memory for the summaries' running sums.
    """
    B, H, T, dh = q.shape
    scale = 1.0 / math.sqrt(dh)
    C = codes.shape[0]
    near = causal_mask(T, window, device=q.device)
    s_near = ((q @ k.transpose(-1, -2)) * scale).masked_fill(~near, float("-inf"))
    assign = F.one_hot((F.normalize(k, dim=-1) @ codes.T).argmax(-1), C).to(k.dtype)
    # Running sums per cluster, shifted by `window`: the far field of query t is j <= t - w.
    cnt = torch.cumsum(assign, 2)                                        # [B, H, T, C]
    ks = torch.cumsum(assign[..., None] * k[..., None, :], 2)            # [B, H, T, C, dh]
    vs = torch.cumsum(assign[..., None] * v[..., None, :], 2)
    pad = (0, 0, 0, 0, window, 0)
    cnt = F.pad(cnt, pad[2:])[:, :, :T]
    ks, vs = F.pad(ks, pad)[:, :, :T], F.pad(vs, pad)[:, :, :T]
    safe = cnt.clamp_min(1.0)[..., None]
    km, vm = ks / safe, vs / safe
    s_far = torch.einsum("bhtd,bhtcd->bhtc", q, km) * scale + cnt.clamp_min(1.0).log()
    s_far = s_far.masked_fill(cnt == 0, float("-inf"))
    w = torch.softmax(torch.cat([s_near, s_far], -1), -1)
    return w[..., :T] @ v + torch.einsum("bhtc,bhtcd->bhtd", w[..., T:], vm)


def ssm_scan(u: torch.Tensor, log_a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """A diagonal linear recurrence, h_t = a * h_{t-1} + u_t, read out as y_t = sum c h_t.

    u [B, T, D]; log_a, c [D, N] (a = exp(log_a) in (0, 1), N states per channel).
    Computed as a causal convolution with the kernel K[d, tau] = sum_n c a^tau (the
    recurrence unrolled): O(T^2 D) here, fine at small T; a scan gives O(T D N).
    """
    B, T, D = u.shape
    tau = torch.arange(T, device=u.device, dtype=u.dtype)
    kern = (c[..., None] * torch.exp(log_a[..., None] * tau)).sum(1)    # [D, T]
    y = F.conv1d(F.pad(u.transpose(1, 2), (T - 1, 0)), kern.flip(-1)[:, None], groups=D)
    return y.transpose(1, 2)


class AttentionMixer(nn.Module):
    """q, k, v projections around a functional attention `kind`; see MIXERS."""

    KINDS = ("softmax", "fused", "window", "sinks", "landmark", "linear", "fmm",
             "cluster")

    def __init__(self, d_model: int, n_head: int, block_size: int, kind: str = "fused",
                 *, n_kv_head: int | None = None, window: int | None = None,
                 n_sink: int = 4, segment: int = 8, n_clusters: int = 8):
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
        self.n_sink, self.segment = n_sink, segment
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * n_kv_head * self.dh, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        if kind == "fmm":
            self.near = nn.Parameter(torch.ones(n_head))
            self.far = nn.Parameter(torch.full((n_head,), 0.5))
        if kind == "cluster":
            g = torch.Generator().manual_seed(1234)
            codes = F.normalize(torch.randn(n_clusters, self.dh, generator=g), dim=-1)
            self.register_buffer("codes", codes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]. `mask` [T, T] bool (softmax kinds only) replaces the
        causal mask's reach, e.g. a sliding KV window at test time (still causal)."""
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
        q = split_heads(self.q(x), self.n_head)
        k, v = (split_heads(t, self.n_kv_head) for t in self.kv(x).chunk(2, -1))
        k, v = _expand(k, self.n_head), _expand(v, self.n_head)
        T = x.shape[1]
        if mask is not None:
            if self.kind not in ("softmax", "fused"):
                raise ValueError(f"mask is only for the softmax kinds, not {self.kind!r}")
            y = attention(q, k, v, causal=True, mask=mask)[0]
        elif self.kind == "softmax":
            y = attention(q, k, v, causal=True)[0]
        elif self.kind == "fused":
            y = fused_attention(q, k, v, causal=True)
        elif self.kind == "window":
            y = sliding_window_attention(q, k, v, self.window)
        elif self.kind == "sinks":
            m = sink_mask(T, self.window, self.n_sink, device=x.device)
            y = attention(q, k, v, causal=True, mask=m)[0]
        elif self.kind == "landmark":
            y = landmark_attention(q, k, v, self.segment)
        elif self.kind == "linear":
            y = linear_attention(q, k, v)
        elif self.kind == "fmm":
            y = fmm_attention(q, k, v, self.window, self.near, self.far)
        else:
            y = cluster_attention(q, k, v, self.window, self.codes)
        return self.proj(merge_heads(y))


class SSMMixer(nn.Module):
    """A gated diagonal state-space layer (S4D/Mamba's skeleton without selectivity):
    u = W_in x, y = ssm_scan(u) + skip * u, out = W_out (y * silu(W_g x))."""

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
        self.c = nn.Parameter(torch.randn(d_model, n_state) / math.sqrt(n_state))
        self.skip = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
        if mask is not None:
            raise ValueError("mask is only for the softmax kinds, not 'ssm'")
        u = self.inp(x)
        log_a = -torch.exp(-self.log_a_raw)           # a = exp(-1 / time) in (0, 1)
        y = ssm_scan(u, log_a, self.c) + self.skip * u
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
