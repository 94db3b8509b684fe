"""The layers of the phase-transport language model: the near-field window and one block
(select among the levels, read the slots, window, MLP).

Book: Part IV, "The phase-transport language model". `PhaseLM` (in `phase_lm`) puts
them together; the pyramid's levels as candidates (features, their maps, the compact
form) are in `phase_lm_levels`.

  * `NearFieldAttention`: causal attention over the last w tokens.
  * `PhaseBlock`: a layer; with `features="none"` it has no selector (window only).
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import causal_mask
from .kernels.near_field import (NearFieldState, near_field_banded, near_field_reference,
                                 near_field_step_reference)
from .phase_lm_levels import CompactCandidates
from .selection import ScaleSelector, select_weights
from .taps import Tap
from .transformer import MLP

__all__ = ["window_mask", "NearFieldAttention", "PhaseBlock"]

# The near-field mask is the package's one windowed causal mask, under the name the
# phase-LM chapter uses: window_mask(T, w)[i, j] is True when i - w < j <= i.
window_mask = causal_mask


class NearFieldAttention(nn.Module):
    """Causal attention over the last `window` tokens, with a learned bias per head and
    distance (so it knows the order without a position table).

    forward(x [B, T, C]) -> [B, T, C], banded (`kernels.near_field.near_field_banded`):
    O(T window C) time, O(T window H) memory, no [T, T] object; `reference(x)` is the
    masked full-attention twin, O(T^2). step(x_t [B, C], state) -> ([B, C], state) keeps
    a ring of the last `window` keys and values (`NearFieldState`)."""

    def __init__(self, n_embd: int, n_head: int, window: int, bias: bool = False):
        super().__init__()
        self.n_head, self.window = n_head, window
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.rel_bias = nn.Parameter(torch.zeros(n_head, window))  # [H, w], distance 0..w-1

    def _heads(self, x: torch.Tensor):
        B, T, C = x.shape
        return (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                for t in self.qkv(x).chunk(3, dim=-1))

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        B, H, T, dh = y.shape
        return self.proj(y.transpose(1, 2).reshape(B, T, H * dh))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._out(near_field_banded(*self._heads(x), self.rel_bias, self.window))

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The same output through the masked [H, T, T] version (tests only)."""
        return self._out(near_field_reference(*self._heads(x), self.rel_bias, self.window))

    def init_state(self, batch: int, *, device=None, dtype=torch.float32) -> NearFieldState:
        dh = self.qkv.in_features // self.n_head
        return NearFieldState.zeros(batch, self.n_head, self.window, dh, device=device,
                                    dtype=dtype)

    def step(self, x_t: torch.Tensor, state: NearFieldState):
        q, k, v = (t[:, :, 0] for t in self._heads(x_t[:, None]))       # [B, H, dh]
        y, state = near_field_step_reference(q, k, v, self.rel_bias, state)
        return self._out(y[:, :, None])[:, 0], state


def _scaled(y: torch.Tensor, gain: torch.Tensor | None) -> torch.Tensor:
    return y if gain is None else y * gain


class PhaseBlock(nn.Module):
    """One layer: select among the levels, read the slots, look at the near field, MLP.

    The selection is computed here (the selector's scores and `select_weights`, then a
    weighted sum by multiply-and-sum): the same numbers as `ScaleSelector.forward`,
    whose einsum runs as B*T tiny matrix products and cost about as much as the MLP."""

    def __init__(self, cfg):
        super().__init__()
        C = cfg.n_embd
        self.select = self.mix = None
        if cfg.features != "none":
            self.ln_q = nn.LayerNorm(C, bias=cfg.bias)
            if cfg.selector == "none":
                self.mix = nn.Linear(C, C, bias=cfg.bias)
            else:
                self.select = ScaleSelector(C, cfg.n_levels, kind=cfg.selector)
        self.tap_select = Tap()  # [B, T, L] the selection weights over levels
        self.read_proj = nn.Linear(C, C, bias=cfg.bias) if cfg.n_slots else None
        # LayerScale (cfg.layer_scale > 0): a learned per-channel gain on what the levels
        # and the slots add to the stream, so that at initialisation they need not
        # outweigh the token's own embedding; None keeps the sum as the sweeps ran it.
        self.gain_levels = self.gain_read = None
        if cfg.layer_scale:
            if cfg.features != "none":
                self.gain_levels = nn.Parameter(torch.full((C,), cfg.layer_scale))
            if cfg.n_slots:
                self.gain_read = nn.Parameter(torch.full((C,), cfg.layer_scale))
        self.near = None
        if cfg.window:
            self.ln_a = nn.LayerNorm(C, bias=cfg.bias)
            self.near = NearFieldAttention(C, cfg.n_head, cfg.window, cfg.bias)
        self.ln_m = nn.LayerNorm(C, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.tap_resid_post = Tap()  # [B, T, C]

    def _select_read(self, x, cand, read):
        compact = isinstance(cand, CompactCandidates)
        levels = None
        if self.mix is not None:
            levels = self.mix(cand.mean() if compact else cand.mean(2))
        elif self.select is not None:
            s = self.select
            w = select_weights(s.score(self.ln_q(x)), s.kind, s.tau, self.training)
            self.tap_select(s.tap_weights(w))
            levels = cand.weighted_sum(w) if compact else (w.unsqueeze(-1) * cand).sum(2)
        if levels is not None:
            x = x + _scaled(levels, self.gain_levels)
        if self.read_proj is not None:
            x = x + _scaled(self.read_proj(read), self.gain_read)
        return x

    def _mlp(self, x):
        x = x + self.mlp(self.ln_m(x))
        return self.tap_resid_post(x)

    def forward(self, x, cand, read):
        x = self._select_read(x, cand, read)
        if self.near is not None:
            x = x + self.near(self.ln_a(x))
        return self._mlp(x)

    def step(self, x, cand, read, near_state: NearFieldState | None):
        """One position: x [B, 1, C], cand [B, 1, L, C] | None, read [B, 1, C] | None."""
        x = self._select_read(x, cand, read)
        if self.near is not None:
            y, near_state = self.near.step(self.ln_a(x[:, 0]), near_state)
            x = x + y[:, None]
        return self._mlp(x), near_state
