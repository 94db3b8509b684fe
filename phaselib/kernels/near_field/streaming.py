"""The near field one token at a time: a ring of the last `window` keys and values.

Book: Part IV, "The phase-transport language model". Position t writes its key and
value into slot t % window, overwriting position t - window, which no later query
sees. Slot s then holds position t - d with d = (t - s) mod window, valid when d <= t.
O(window dh) state and work per head and token; equal, to rounding, to the batch near
field at every position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..._checks import to_state_dtype


@dataclass
class NearFieldState:
    """What one near-field layer remembers: the last `window` keys and values."""

    t: int              # tokens seen so far
    k: torch.Tensor     # [B, H, window, dh], slot = position % window
    v: torch.Tensor     # [B, H, window, dh]

    @classmethod
    def zeros(cls, batch: int, heads: int, window: int, head_dim: int, *, device=None,
              dtype=torch.float32):
        shape = (batch, heads, window, head_dim)
        return cls(0, torch.zeros(shape, device=device, dtype=dtype),
                   torch.zeros(shape, device=device, dtype=dtype))

    def nbytes(self) -> int:
        return (self.k.numel() + self.v.numel()) * self.k.element_size()


def near_field_step_reference(q_t: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor,
                              rel_bias: torch.Tensor, state: NearFieldState):
    """q_t, k_t, v_t [B, H, dh] -> (y_t [B, H, dh], new state). Does not mutate `state`.

    q_t, k_t, v_t have the state's dtype or one that converts to it exactly (bf16 or
    fp16 under `torch.autocast` into an fp32 state); a cast that would round raises
    TypeError.
    """
    q_t, k_t, v_t = (to_state_dtype(n, x, state.k)
                     for n, x in (("q_t", q_t), ("k_t", k_t), ("v_t", v_t)))
    w, t = state.k.shape[2], state.t
    k, v = state.k.clone(), state.v.clone()
    k[:, :, t % w] = k_t                # the slot is a host int: no copy to the device
    v[:, :, t % w] = v_t
    d = (t - torch.arange(w, device=k_t.device)) % w                   # distance back
    scores = torch.einsum("bhd,bhwd->bhw", q_t, k) * q_t.shape[-1] ** -0.5
    scores = scores + rel_bias[:, d].to(q_t.dtype)
    scores = scores.masked_fill(d > t, float("-inf"))                  # before position 0
    y = torch.einsum("bhw,bhwd->bhd", torch.softmax(scores, -1), v)
    return y, NearFieldState(t + 1, k, v)
