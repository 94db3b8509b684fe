"""Sliding-window attention with and without attention sinks, batch and streaming.

Book: Part III, "The remedies, measured". Query t sees the last `window` keys
(t - window < j <= t) and, with `n_sink` > 0, the first `n_sink` keys of the sequence
too, always (j < n_sink): the attention sinks of StreamingLLM (Xiao et al., 2024). A
decoder keeps n_sink + window keys whatever the length of the stream: a ring buffer of
the recent keys beside the fixed sink keys. Keys are taken as given (no positions are
re-assigned in the cache, as StreamingLLM does with rotary positions).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .._checks import check_positive_int
from ..attention import attention
from ..efficient_attention import sliding_window_attention
from ._common import (attend_rows, check_qkv, check_step, expand_kv,
                      local_plus_summaries, resolve_scale, tensor_bytes)

__all__ = ["sink_attention", "sink_mask", "sink_reference", "SinkCache",
           "init_sink_state", "prefill_sink_state", "sink_step"]


def _check_sizes(window, n_sink) -> None:
    check_positive_int("window", window)
    if isinstance(n_sink, bool) or not isinstance(n_sink, int) or n_sink < 0:
        raise ValueError(f"n_sink must be an int >= 0, got {n_sink!r}")


def sink_mask(T: int, window: int, n_sink: int = 0, *, device=None) -> torch.Tensor:
    """[T, T] bool, True where query i sees key j:
    j <= i and (i - j < window or j < n_sink)."""
    _check_sizes(window, n_sink)
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    return (j <= i) & ((i - j < window) | (j < n_sink))


def sink_attention(q, k, v, window: int, n_sink: int = 0, *,
                   scale: float | None = None) -> torch.Tensor:
    """Causal window attention plus n_sink always-visible first keys -> [B, H, T, dv].

    q [B, H, T, dh], k, v [B, Hkv, T, dh]. n_sink = 0 is the plain sliding window
    (`efficient_attention.sliding_window_attention`). No [T, T] matrix: blocks of
    `window` queries against [previous block | own block | sinks], O(T (window +
    n_sink) d) work and memory. Equals `sink_reference`."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    _check_sizes(window, n_sink)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    if n_sink == 0 or window >= T:
        return sliding_window_attention(q, k, v, window, scale=s)
    m = min(n_sink, T)
    t = torch.arange(T, device=q.device)[:, None]
    # a sink is added only once it has left the window
    allowed = torch.arange(m, device=q.device)[None, :] <= t - window
    return local_plus_summaries(q, k, v, window, scale=s, band=True,
                                extra=(k[:, :, :m], v[:, :, :m], allowed))


def sink_reference(q, k, v, window: int, n_sink: int = 0, *,
                   scale: float | None = None) -> torch.Tensor:
    """The twin: full attention under `sink_mask` (O(T^2) memory)."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    s = resolve_scale(scale, dh)
    return attention(q, expand_kv(k, H), expand_kv(v, H), causal=True, scale=s,
                     mask=sink_mask(T, window, n_sink, device=q.device))[0]


@dataclass
class SinkCache:
    """sink_k/v [B, Hkv, n_sink, d]: the first keys; ring_k/v [B, Hkv, window, d]:
    key j in slot j % window; t: tokens seen. `sink_step` writes into these buffers."""

    sink_k: torch.Tensor
    sink_v: torch.Tensor
    ring_k: torch.Tensor
    ring_v: torch.Tensor
    t: int = 0

    def nbytes(self) -> int:
        """Bytes held: n_sink + window keys and values, whatever the stream's length."""
        return tensor_bytes(self.sink_k, self.sink_v, self.ring_k, self.ring_v)


def init_sink_state(B: int, n_kv_heads: int, dh: int, window: int, n_sink: int = 0,
                    dv: int | None = None, *, dtype=torch.float32,
                    device=None) -> SinkCache:
    _check_sizes(window, n_sink)
    dv = dh if dv is None else dv

    def z(n, d):
        return torch.zeros(B, n_kv_heads, n, d, dtype=dtype, device=device)

    return SinkCache(z(n_sink, dh), z(n_sink, dv), z(window, dh), z(window, dv))


def prefill_sink_state(k, v, window: int, n_sink: int = 0) -> SinkCache:
    """The cache after the prompt k, v [B, Hkv, T, d]."""
    B, Hkv, T, dh = k.shape
    st = init_sink_state(B, Hkv, dh, window, n_sink, v.shape[-1], dtype=k.dtype,
                         device=k.device)
    m = min(n_sink, T)
    st.sink_k[:, :, :m], st.sink_v[:, :, :m] = k[:, :, :m], v[:, :, :m]
    j = torch.arange(max(0, T - window), T, device=k.device)
    st.ring_k[:, :, j % window], st.ring_v[:, :, j % window] = k[:, :, j], v[:, :, j]
    return dataclasses.replace(st, t=T)


def sink_step(q_t, k_t, v_t, state: SinkCache, *, scale: float | None = None):
    """One token: q_t [B, H, dh], k_t, v_t [B, Hkv, d] -> (out_t [B, H, dv], state).

    O((window + n_sink) d) work and memory per token. Equals `sink_attention` at every
    position."""
    check_step(q_t, k_t, v_t, state.ring_k.shape[1])
    t, w, n_sink = state.t, state.ring_k.shape[2], state.sink_k.shape[2]
    if t < n_sink:
        state.sink_k[:, :, t], state.sink_v[:, :, t] = k_t, v_t
    state.ring_k[:, :, t % w], state.ring_v[:, :, t % w] = k_t, v_t
    filled = min(t + 1, w)
    parts = [(state.ring_k[:, :, :filled], state.ring_v[:, :, :filled], None)]
    m = min(n_sink, max(0, t - w + 1))          # sinks j <= t - w have left the ring
    if m > 0:
        parts.append((state.sink_k[:, :, :m], state.sink_v[:, :, :m], None))
    out = attend_rows(q_t, parts, scale=resolve_scale(scale, q_t.shape[-1]))
    return out, dataclasses.replace(state, t=t + 1)

