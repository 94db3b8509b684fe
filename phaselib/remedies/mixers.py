"""The remedies as token mixers: one registry, one interface, for the shared task suite.

Book: Part III, "The remedies, measured". `MIXERS[name](d_model, n_head, block_size,
**kw)` builds a causal `nn.Module` mapping x [B, T, D] -> [B, T, D]; a model swaps one
in where attention was (`phaselib.remedies.model.RemedyLM`). Every attention mixer
projects x to q [B, H, T, dh] and k, v [B, Hkv, T, dh], calls the package's functional
remedy (`phaselib.remedies`: fused, gqa, sinks, landmark (block means), retrieval
(Landmark Attention), fmm, cluster (centroids), lsh, and linear attention from
`phaselib.efficient_attention`) and projects back; the state-space mixers feed a gated
projection of x through `phaselib.remedies.ssm_scan` (time-invariant) or
`selective_scan` (Mamba's S6). `short_conv` = K > 0 puts a causal depthwise
convolution of kernel K (`shortconv.ShortConv`, as in H3, Zoology/Based and Mamba)
on the mixer's input, before the q, k, v projections or before the scan.

`MIXER_LABELS[name]` says in a few words what each mixer is. Three keys were renamed
to say what they compute; `LEGACY_NAMES` maps the old keys (which stored results
files name) to the new ones, and `make_mixer`, `MIXERS[old]` and `old in MIXERS`
accept them, building the same module with the same numbers.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float_tensor, check_positive_int
from ..attention import attention, merge_heads, split_heads
from ..efficient_attention import linear_attention
from ._common import expand_kv
from .cluster import cluster_attention
from .fmm import FAR_KEYS, fmm_attention
from .fused import fused_causal, fused_reference
from .landmark import landmark_attention
from .lsh import lsh_attention, lsh_rotation
from .retrieval import landmark_retrieval_attention
from .selective import SelectiveSSMMixer
from .shortconv import ShortConv
from .sinks import sink_attention
from .ssm import ssm_scan

__all__ = ["MIXERS", "MIXER_LABELS", "LEGACY_NAMES", "canonical_name", "make_mixer",
           "AttentionMixer", "SSMMixer", "SelectiveSSMMixer"]


def _short_conv(d_model: int, short_conv) -> ShortConv | None:
    """A ShortConv of kernel `short_conv`, or None for 0 (and then no parameters are
    made, so the random stream and every number of the mixer stay as they were)."""
    if (isinstance(short_conv, bool) or not isinstance(short_conv, int)
            or short_conv < 0):
        raise ValueError(f"short_conv must be an int >= 0 (0 = off), "
                         f"got {short_conv!r}")
    return ShortConv(d_model, short_conv) if short_conv else None


class AttentionMixer(nn.Module):
    """q, k, v projections around a functional attention `kind`; see MIXERS."""

    KINDS = ("softmax", "fused", "window", "sinks", "block-mean", "linear", "fmm",
             "centroids", "landmark-retrieval", "lsh")

    def __init__(self, d_model: int, n_head: int, block_size: int, kind: str = "fused",
                 *, n_kv_head: int | None = None, window: int | None = None,
                 n_sink: int = 4, segment: int = 8, n_clusters: int = 2,
                 block: int | None = None, top_k: int | None = 2, n_buckets: int = 4,
                 seed: int = 0, far_keys: str = "outside", short_conv: int = 0):
        """`segment` (or its newer name `block`): the block length of block-mean,
        centroids and landmark-retrieval; `top_k`: landmark-retrieval's retrieved
        blocks (None: all); `n_buckets`, `seed`: lsh's buckets and its rotation's seed;
        `far_keys`: fmm's far field, "outside" the band or "all"; `short_conv`: the
        kernel of a causal depthwise convolution on the input (0: none)."""
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
        kind = {"landmark": "block-mean", "cluster": "centroids"}.get(kind, kind)
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        segment = segment if block is None else block
        check_positive_int("block", segment)
        check_positive_int("top_k", top_k, allow_none=True)
        if far_keys not in FAR_KEYS:
            raise ValueError(f"far_keys must be one of {FAR_KEYS}, got {far_keys!r}")
        self.kind, self.n_head, self.n_kv_head = kind, n_head, n_kv_head
        self.dh = d_model // n_head
        self.window = max(1, block_size // 4) if window is None else window
        check_positive_int("window", self.window)
        self.n_sink, self.segment, self.n_clusters = n_sink, segment, n_clusters
        self.top_k, self.far_keys = top_k, far_keys
        self.q = nn.Linear(d_model, d_model, bias=False)
        # lsh shares queries and keys (Reformer): the projection makes values only
        n_kv_proj = 1 if kind == "lsh" else 2
        self.kv = nn.Linear(d_model, n_kv_proj * n_kv_head * self.dh, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        if kind == "fmm":
            self.near = nn.Parameter(torch.ones(n_head))
            self.far = nn.Parameter(torch.full((n_head,), 0.5))
        if kind == "lsh":
            rot = lsh_rotation(self.dh, n_buckets, seed=seed)     # fixed, not learned
            self.register_buffer("rotation", rot)
        self.conv = _short_conv(d_model, short_conv)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]. `mask` [T, T] bool (softmax kinds only) replaces the
        causal mask's reach, e.g. a sliding KV window at test time (still causal)."""
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
        if mask is not None and self.kind not in ("softmax", "fused"):
            raise ValueError(f"mask is only for the softmax kinds, not {self.kind!r}")
        if self.conv is not None:
            x = self.conv(x)
        q = split_heads(self.q(x), self.n_head)
        if self.kind == "lsh":
            # shared QK (Reformer): the key is the normalised query, so both hash alike
            k, v = F.normalize(q, dim=-1), split_heads(self.kv(x), self.n_kv_head)
            y = lsh_attention(q, k, expand_kv(v, self.n_head), self.rotation)
            return self.proj(merge_heads(y))
        k, v = (split_heads(t, self.n_kv_head) for t in self.kv(x).chunk(2, -1))
        if mask is not None:
            y = attention(q, expand_kv(k, self.n_head), expand_kv(v, self.n_head),
                          causal=True, mask=mask)[0]
        elif self.kind == "softmax":
            y = fused_reference(q, k, v)
        elif self.kind == "fused":
            # Hkv < H too: fused_causal repeats the kv heads, as gqa_attention did
            # when the stored results were made; gqa_attention now reads them in place,
            # same output but gradients that differ in the last bit, and those results
            # must re-run bit for bit. The memory of GQA is measured on gqa_attention
            # (phaselib.bench.remedies), not here.
            y = fused_causal(q, k, v)
        elif self.kind == "window":
            y = sink_attention(q, k, v, self.window, 0)
        elif self.kind == "sinks":
            y = sink_attention(q, k, v, self.window, self.n_sink)
        elif self.kind == "block-mean":
            y = landmark_attention(q, k, v, self.segment)
        elif self.kind == "landmark-retrieval":
            y = landmark_retrieval_attention(q, k, v, self.segment, self.top_k)
        elif self.kind == "linear":
            y = linear_attention(q, expand_kv(k, self.n_head), expand_kv(v, self.n_head))
        elif self.kind == "fmm":
            y = fmm_attention(q, k, v, self.window, near_weight=self.near,
                              far_weight=self.far, far_keys=self.far_keys)
        else:
            y = cluster_attention(q, k, v, self.segment, self.n_clusters)
        return self.proj(merge_heads(y))


class SSMMixer(nn.Module):
    """A gated diagonal state-space layer (S4D/Mamba's skeleton without selectivity):
    u = W_in x, h_t = a h_{t-1} + b u_t, y = c h + skip * u, out = W_out (y * silu(W_g x)),
    with a, b, c [D, n_state] learned, a in (0, 1) (decay times 1 .. block_size at
    init). `short_conv` = K > 0: u = conv_K(W_in x), a causal depthwise convolution
    before the scan, where Mamba has its own (no SiLU after it here)."""

    def __init__(self, d_model: int, n_head: int, block_size: int, *, n_state: int = 8,
                 short_conv: int = 0):
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
        self.conv = _short_conv(d_model, short_conv)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
        if mask is not None:
            raise ValueError("mask is only for the softmax kinds, not 'ssm'")
        u = self.inp(x)
        if self.conv is not None:
            u = self.conv(u)
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


def _ssm(**fixed):
    def make(d_model: int, n_head: int, block_size: int, **kw) -> nn.Module:
        return SSMMixer(d_model, n_head, block_size, **{**fixed, **kw})
    return make


LEGACY_NAMES = {"landmark": "block-mean", "cluster": "centroids", "fmm": "fmm-band"}
"""Old mixer key -> its honest name. Stored results name cells by the old keys."""


def canonical_name(name: str) -> str:
    """The mixer key `name` under its current name (a legacy key resolved)."""
    return LEGACY_NAMES.get(name, name)


class _Registry(dict):
    """The mixer factories by canonical key. Lookup and `in` also accept a legacy key
    (`LEGACY_NAMES`); iteration, len and keys() give the canonical keys only."""

    def __missing__(self, name):
        if name in LEGACY_NAMES:
            return self[LEGACY_NAMES[name]]
        raise KeyError(name)

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, canonical_name(name))


# name -> factory(d_model, n_head, block_size, **kw) -> causal mixer [B, T, D] -> [B, T, D]
MIXERS = _Registry({
    "softmax": _attn("softmax"),
    "fused": _attn("fused"),
    "mqa": _attn("fused", n_kv_head=1),
    "gqa": _gqa,
    "window": _attn("window"),
    "sinks": _attn("sinks"),
    "block-mean": _attn("block-mean"),
    "linear": _attn("linear"),
    "fmm-band": _attn("fmm"),
    "centroids": _attn("centroids"),
    "ssm": SSMMixer,
    "landmark-retrieval": _attn("landmark-retrieval", block=8, top_k=2),
    "lsh": _attn("lsh", n_buckets=4),
    "fmm-all": _attn("fmm", far_keys="all"),
    "linear-conv": _attn("linear", short_conv=4),
    "fused-conv": _attn("fused", short_conv=4),
    "ssm-conv": _ssm(short_conv=4),
    "ssm-selective": SelectiveSSMMixer,
    # every simple row of the remedies table with the same short convolution in front,
    # for its recall column (`mqar_sweeps.recall`)
    "mqa-conv": _attn("fused", n_kv_head=1, short_conv=4),
    "gqa-conv": partial(_gqa, short_conv=4),
    "window-conv": _attn("window", short_conv=4),
    "sinks-conv": _attn("sinks", short_conv=4),
    "block-mean-conv": _attn("block-mean", short_conv=4),
    "fmm-band-conv": _attn("fmm", short_conv=4),
    "centroids-conv": _attn("centroids", short_conv=4),
})

MIXER_LABELS = {
    "softmax": "exact attention (the [T, T] matrix)",
    "fused": "exact attention (fused kernel)",
    "mqa": "multi-query attention (one KV head)",
    "gqa": "grouped-query attention (H/2 KV heads)",
    "window": "sliding window",
    "sinks": "sliding window + attention sinks",
    "block-mean": "block means (pooling)",
    "linear": "linear attention (elu + 1)",
    "fmm-band": "band + linear far field beyond it",
    "centroids": "k-means centroids (compression)",
    "ssm": "diagonal SSM (time-invariant)",
    "landmark-retrieval": "Landmark Attention (retrieval)",
    "lsh": "LSH buckets, exact keys (routing)",
    "fmm-all": "FMMformer: band + linear far field",
    "linear-conv": "linear attention + short conv",
    "fused-conv": "exact attention + short conv",
    "ssm-conv": "diagonal SSM + short conv",
    "ssm-selective": "selective SSM (Mamba S6)",
    "mqa-conv": "multi-query attention + short conv",
    "gqa-conv": "grouped-query attention + short conv",
    "window-conv": "sliding window + short conv",
    "sinks-conv": "window + sinks + short conv",
    "block-mean-conv": "block means + short conv",
    "fmm-band-conv": "band + linear far field + short conv",
    "centroids-conv": "k-means centroids + short conv",
}
"""A short honest label for every canonical mixer key (legacy keys: via
`canonical_name`)."""


def make_mixer(name: str, d_model: int, n_head: int, block_size: int, **kw) -> nn.Module:
    """MIXERS[name](d_model, n_head, block_size, **kw), with a clear error for a bad
    name; a legacy name (`LEGACY_NAMES`) builds the mixer it was renamed to."""
    if name not in MIXERS:
        raise ValueError(f"name must be one of {sorted(MIXERS)} (or a legacy name, "
                         f"{sorted(LEGACY_NAMES)}), got {name!r}")
    return MIXERS[name](d_model, n_head, block_size, **kw)
