"""Banded plus low-rank attention (FMMformer): an exact near field, a linear far field.

Book: Part III, "The remedies, measured". FMMformer (Nguyen et al., 2021) splits
attention as the fast multipole method splits a potential: the near field, softmax
attention over a band of the last `window` keys, computed exactly; the far field, a
low-rank (linear-attention) term, blended in: out = w_near * near + w_far * far, the
two weights learnable in the paper (floats or per-head tensors [H] here). The far
field is causal linear attention with phi(x) = elu(x) + 1 over one of two key sets:

- far_keys="all" (mixer "fmm-all"): all keys j <= t, the band included, as in the
  paper: the far field is a smooth low-rank term over the whole past, added to the
  exact band, and the blend weights decide how much of it to keep;
- far_keys="outside" (mixer "fmm-band", the default, and the older mixer "fmm"):
  only the keys that have left the band (j <= t - window), 0 while there are none,
  so near and far keys do not overlap. Not the paper's far field.

With window >= T, w_near = 1, far_keys="outside" it is exact attention. Work and
memory O(T window d + T d^2 / window); a decoder keeps the band (a ring buffer) and a
[dh, dv] state. Simplified: the paper's far field may use several feature maps (a
rank-r sum); here one, elu + 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_positive_int
from ..attention import attention
from ..efficient_attention import (LinearAttentionState, elu_feature_map,
                                   linear_attention, sliding_window_attention)
from ._common import (attend_rows, block_view, check_qkv, check_step, expand_kv,
                      resolve_scale, tensor_bytes)

__all__ = ["far_field", "fmm_attention", "fmm_reference", "FMMState", "init_fmm_state",
           "prefill_fmm_state", "fmm_step"]


def _weight(w, H: int, like: torch.Tensor, ndim: int):
    """A float, or a tensor [H] (a weight per head), shaped to broadcast."""
    if isinstance(w, torch.Tensor):
        if w.shape != (H,):
            raise ValueError(f"a tensor weight must have shape [H] = [{H}], "
                             f"got {tuple(w.shape)}")
        return w.to(like).view(1, H, *([1] * (ndim - 2)))
    if isinstance(w, bool) or not isinstance(w, (int, float)):
        raise TypeError(f"near_weight/far_weight must be a float or a tensor [H], "
                        f"got {w!r}")
    return float(w)


FAR_KEYS = ("outside", "all")


def _check_far_keys(far_keys) -> None:
    if far_keys not in FAR_KEYS:
        raise ValueError(f"far_keys must be one of {FAR_KEYS}, got {far_keys!r}")


def far_field(q, k, v, window: int, *, eps: float = 1e-6) -> torch.Tensor:
    """Causal linear attention over the keys j <= t - window: [B, H, T, dh] ->
    [B, H, T, dv].

    Blocks of `window` queries: block i reads the summed state of blocks 0 .. i - 2 and
    the keys of block i - 1 up to its own offset. 0 where no key is that far back."""
    B, H, T, dh = q.shape
    w = window
    fq, _ = block_view(elu_feature_map(q), w)               # [B, H, n, w, dh]
    fk, n = block_view(elu_feature_map(k), w)
    vc, _ = block_view(v, w)
    kv = fk.transpose(-1, -2) @ vc                           # [B, H, n, dh, dv]
    z = fk.sum(-2)                                           # [B, H, n, dh]
    # state of blocks 0 .. i - 2: cumulative sums shifted by two blocks
    S = F.pad(torch.cumsum(kv, 2), (0, 0, 0, 0, 2, 0))[:, :, :n]
    Z = F.pad(torch.cumsum(z, 2), (0, 0, 2, 0))[:, :, :n]
    fk_prev = F.pad(fk, (0, 0, 0, 0, 1, 0))[:, :, :n]     # block i - 1 (zeros at i = 0)
    v_prev = F.pad(vc, (0, 0, 0, 0, 1, 0))[:, :, :n]
    i = torch.arange(w, device=q.device)
    a = (fq @ fk_prev.transpose(-1, -2)).masked_fill(i[None, :] > i[:, None], 0.0)
    num = a @ v_prev + fq @ S
    den = a.sum(-1) + (fq @ Z.unsqueeze(-1)).squeeze(-1)
    return (num / (den.unsqueeze(-1) + eps)).reshape(B, H, n * w, -1)[:, :, :T]


def fmm_attention(q, k, v, window: int, *, near_weight=1.0, far_weight=1.0,
                  far_keys: str = "outside", eps: float = 1e-6,
                  scale: float | None = None) -> torch.Tensor:
    """Banded softmax plus linear far field: q [B, H, T, dh], k, v [B, Hkv, T, dh] ->
    [B, H, T, dv]. `far_keys`: "outside" the band (j <= t - window) or "all" (j <= t,
    FMMformer's). Equals `fmm_reference`; exact attention when window >= T and
    far_keys="outside"."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    check_positive_int("window", window)
    _check_far_keys(far_keys)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    wn, wf = _weight(near_weight, H, q, 4), _weight(far_weight, H, q, 4)
    near = sliding_window_attention(q, k, v, window, scale=s)
    if far_keys == "all":
        return wn * near + wf * linear_attention(q, k, v, eps=eps)
    if window >= T:
        return wn * near
    return wn * near + wf * far_field(q, k, v, window, eps=eps)


def fmm_reference(q, k, v, window: int, *, near_weight=1.0, far_weight=1.0,
                  far_keys: str = "outside", eps: float = 1e-6,
                  scale: float | None = None) -> torch.Tensor:
    """The twin: the band as a masked [T, T] softmax, the far field as a masked [T, T]
    matrix phi(q) phi(k)^T over j <= i - window ("outside") or j <= i ("all"),
    normalised by its row sums."""
    B, H, Hkv, T, dh = check_qkv(q, k, v)
    _check_far_keys(far_keys)
    s = resolve_scale(scale, dh)
    k, v = expand_kv(k, H), expand_kv(v, H)
    i = torch.arange(T, device=q.device)[:, None]
    j = torch.arange(T, device=q.device)[None, :]
    near = attention(q, k, v, causal=True, scale=s, mask=(i - j < window))[0]
    reach = (j <= i - window) if far_keys == "outside" else (j <= i)
    a = (elu_feature_map(q) @ elu_feature_map(k).transpose(-1, -2)) * reach
    far = (a @ v) / (a.sum(-1, keepdim=True) + eps)
    wn, wf = _weight(near_weight, H, q, 4), _weight(far_weight, H, q, 4)
    return wn * near + wf * far


@dataclass
class FMMState:
    """ring_k/v [B, Hkv, window, d]: the band, key j in slot j % window; far: the linear
    state (S [B, Hkv, dh, dv], z [B, Hkv, dh]) of the keys that left the band
    (far_keys="outside") or of all keys seen ("all"); t: tokens seen. `fmm_step`
    writes into the ring."""

    ring_k: torch.Tensor
    ring_v: torch.Tensor
    far: LinearAttentionState
    t: int = 0
    far_keys: str = "outside"

    def nbytes(self) -> int:
        """Bytes held: the band plus the [dh, dv] far-field state, at any length."""
        return tensor_bytes(self.ring_k, self.ring_v, self.far.S, self.far.z)


def init_fmm_state(B: int, n_kv_heads: int, dh: int, window: int,
                   dv: int | None = None, *, far_keys: str = "outside",
                   dtype=torch.float32, device=None) -> FMMState:
    check_positive_int("window", window)
    _check_far_keys(far_keys)
    dv = dh if dv is None else dv
    z = torch.zeros(B, n_kv_heads, window, dh, dtype=dtype, device=device)
    zv = torch.zeros(B, n_kv_heads, window, dv, dtype=dtype, device=device)
    return FMMState(z, zv,
                    LinearAttentionState.zeros(B, n_kv_heads, dh, dv, dtype, device),
                    far_keys=far_keys)


def prefill_fmm_state(k, v, window: int, *, far_keys: str = "outside") -> FMMState:
    """The state after the prompt k, v [B, Hkv, T, d]."""
    B, Hkv, T, dh = k.shape
    st = init_fmm_state(B, Hkv, dh, window, v.shape[-1], far_keys=far_keys,
                        dtype=k.dtype, device=k.device)
    j = torch.arange(max(0, T - window), T, device=k.device)
    st.ring_k[:, :, j % window], st.ring_v[:, :, j % window] = k[:, :, j], v[:, :, j]
    fk = elu_feature_map(k[:, :, :max(0, T - window) if far_keys == "outside" else T])
    far = LinearAttentionState(fk.transpose(-1, -2) @ v[:, :, :fk.shape[2]], fk.sum(2))
    return dataclasses.replace(st, far=far, t=T)


def fmm_step(q_t, k_t, v_t, state: FMMState, *, near_weight=1.0, far_weight=1.0,
             eps: float = 1e-6, scale: float | None = None):
    """One token: q_t [B, H, dh], k_t, v_t [B, Hkv, d] -> (out_t [B, H, dv], state).

    The key leaving the band (far_keys="outside") or the new key ("all", as the state
    says) joins the far-field state; O(window d + d^2) per token. Equals
    `fmm_attention(..., far_keys=state.far_keys)` at every position."""
    check_step(q_t, k_t, v_t, state.ring_k.shape[1])
    t, w = state.t, state.ring_k.shape[2]
    B, H, dh = q_t.shape
    Hkv = state.ring_k.shape[1]
    far = state.far
    if state.far_keys == "all":
        fk = elu_feature_map(k_t)
        far = LinearAttentionState(far.S + fk[..., :, None] * v_t[..., None, :],
                                   far.z + fk)
    elif t >= w:                                             # key t - w leaves the band
        fk = elu_feature_map(state.ring_k[:, :, t % w])
        v_old = state.ring_v[:, :, t % w]
        far = LinearAttentionState(far.S + fk[..., :, None] * v_old[..., None, :],
                                   far.z + fk)
    state.ring_k[:, :, t % w], state.ring_v[:, :, t % w] = k_t, v_t
    filled = min(t + 1, w)
    near = attend_rows(q_t, [(state.ring_k[:, :, :filled], state.ring_v[:, :, :filled],
                              None)], scale=resolve_scale(scale, dh))
    fq = elu_feature_map(q_t).view(B, Hkv, H // Hkv, dh)
    num = fq @ far.S                                         # [B, Hkv, g, dv]
    den = (fq * far.z[:, :, None]).sum(-1, keepdim=True) + eps
    wn, wf = _weight(near_weight, H, q_t, 3), _weight(far_weight, H, q_t, 3)
    out = wn * near + wf * (num / den).reshape(B, H, -1)
    return out, dataclasses.replace(state, far=far, t=t + 1)
