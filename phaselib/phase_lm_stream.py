"""Streaming the phase-transport language model: one token at a time, constant state.

Book: Part IV, "The phase-transport language model". `PhaseLM.step` and
`PhaseLM.generate` are these functions: `init_state(model, batch)` is the state before
the first token, `step(model, idx_t, state) -> (logits [B, V], state)` runs one token
with O(L P + K C + n_layer w C) state (`PhaseLMState`: the pyramid's rings, the slots,
a ring of the last w keys and values per layer), whatever the context, and its logits
equal the batch forward's at every position, past block_size too (see `phase_lm`).
`generate` streams a prompt and a sample through `step`; `sample_next` draws one token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_positive_int
from .kernels.near_field import NearFieldState
from .kernels.pyramid.streaming import PyramidState
from .streaming import pyramid_step

__all__ = ["PhaseLMState", "init_state", "step", "generate", "sample_next"]


@dataclass
class PhaseLMState:
    """What `PhaseLM.step` carries between tokens; its size does not grow with t."""

    t: int                              # tokens seen so far
    pyramid: PyramidState | None        # the pyramid's rings (None: features="none")
    slots: torch.Tensor | None          # [B, K, C]; None before the first token or without
    near: list[NearFieldState | None]   # per layer: the last `window` keys and values
    conv: torch.Tensor | None = None    # [B, K-1, C] the last embeddings (short_conv)

    def batch(self) -> int | None:
        """B, the number of sequences (None for a model with no state at all yet)."""
        parts = [self.slots] + [None if self.pyramid is None else self.pyramid.ring]
        parts += [s.k for s in self.near if s is not None] + [self.conv]
        return next((p.shape[0] for p in parts if p is not None), None)

    def nbytes(self) -> int:
        n = sum(s.nbytes() for s in self.near if s is not None)
        n += 0 if self.pyramid is None else self.pyramid.nbytes()
        n += 0 if self.conv is None else self.conv.numel() * self.conv.element_size()
        return n + (0 if self.slots is None else self.slots.numel() * self.slots.element_size())


def init_state(model, batch: int, *, device=None, dtype=torch.float32) -> PhaseLMState:
    """The state of `model` (a PhaseLM) before the first token, for `batch` sequences."""
    check_positive_int("batch", batch)
    cfg = model.cfg
    near = [None if b.near is None else b.near.init_state(batch, device=device, dtype=dtype)
            for b in model.blocks]
    pyr = None
    if cfg.features != "none":
        pyr = PyramidState.zeros(batch, cfg.n_levels, cfg.pyr_dim, device=device,
                                 dtype=dtype)
    conv = None if model.conv is None else model.conv.init_past(batch, dtype=dtype,
                                                                device=device)
    return PhaseLMState(0, pyr, None, near, conv)


def _features_t(model, x: torch.Tensor, pyr: PyramidState, t: int) -> torch.Tensor:
    """Row t of the level features ([B, L, F]) from the pyramid's rings."""
    feats, _ = pyramid_step(model.to_pyr(x), pyr)                     # [B, L, P+1]
    if model.cfg.features == "transport":
        return feats
    L = model.cfg.n_levels                    # mean_diff: the last two completed centroids
    j = ((t + 1) >> torch.arange(L, device=x.device)) - 1               # latest block
    last = pyr.ring[:, torch.arange(L), j % 2]                          # [B, L, P]
    prev = pyr.ring[:, torch.arange(L), (j - 1) % 2]
    return torch.where((j >= 1)[None, :, None], last - prev, torch.zeros_like(last))


def step(model, idx_t: torch.Tensor, state: PhaseLMState | None = None):
    """One token per sequence: idx_t [B] long -> (logits [B, V], the new state).

    Stepping through idx[:, 0], idx[:, 1], ... gives `model.logits(idx)[:, t]` at every
    t, at any length. O(L P + K C^2 + n_layer (w C + C^2)) work per token. The pyramid's
    rings are updated in place.
    """
    if not isinstance(idx_t, torch.Tensor) or idx_t.dim() != 1 or idx_t.dtype != torch.long:
        raise ValueError(f"idx_t must be a long tensor of shape [B], got "
                         f"{getattr(idx_t, 'dtype', type(idx_t).__name__)} "
                         f"{tuple(getattr(idx_t, 'shape', ()))}")
    x = model.drop(model.wte(idx_t))                                  # [B, C]
    if state is None:
        state = init_state(model, x.shape[0], device=x.device, dtype=x.dtype)
    if state.batch() not in (None, x.shape[0]):
        raise ValueError(f"idx_t must have B = {state.batch()} rows like the state, got "
                         f"shape {tuple(idx_t.shape)}")
    t, cand, conv = state.t, None, state.conv
    if model.conv is not None:
        y, conv = model.conv.step(x, conv)
        x = x + y
    if state.pyramid is not None:
        feats = _features_t(model, x, state.pyramid, t)
        mask = ((t + 1) >> torch.arange(model.cfg.n_levels, device=x.device)) >= 2
        cand = model.tap_levels(model.ln_c(model.levels_in(feats[:, None], mask[None])))
    read, slots = None, state.slots
    if model.slots is not None:
        mixed = x if cand is None else x + cand[:, 0].mean(1)
        read, slots = model.slots.step(model.ln_s(mixed), slots)
        model.tap_slots(slots[:, None])
        read = read[:, None]
    x, near = x[:, None], []
    for block, ns in zip(model.blocks, state.near):
        x, ns = block.step(x, cand, read, ns)
        near.append(ns)
    logits = model.head(model.ln_f(x[:, 0]))
    return logits, PhaseLMState(t + 1, state.pyramid, slots, near, conv)


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample `max_new_tokens` tokens after `idx` [B, T]; returns [B, T + max_new_tokens].

    The prompt is read once, each new token costs one `step`, and the state (slots
    included) persists over the whole sample, past block_size too.
    """
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long \
            or idx.shape[1] < 1:
        raise ValueError(f"idx must be a long tensor of shape [B, T] with T >= 1, got "
                         f"{getattr(idx, 'dtype', type(idx).__name__)} "
                         f"{tuple(getattr(idx, 'shape', ()))}")
    state = None
    for t in range(idx.shape[1]):
        logits, state = step(model, idx[:, t], state)
    out = [idx]
    for i in range(max_new_tokens):
        nxt = sample_next(logits, temperature, top_k, generator)     # [B, 1]
        out.append(nxt)
        if i + 1 < max_new_tokens:
            logits, state = step(model, nxt[:, 0], state)
    return torch.cat(out, dim=1)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from logits [B, V], as `CausalLM.generate` samples: [B, 1]."""
    logits = logits / max(temperature, 1e-8)
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
