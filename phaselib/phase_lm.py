"""The phase-transport language model: pyramid features, a scale selector and decision
slots feeding per-position blocks, with an optional exact near-field window.

Book: Part IV, "The phase-transport language model". Same interface as
`TinyTransformer`: forward(idx, targets) -> (logits, loss), generate, num_params.

One forward pass, for idx [B, T]:

    x    = wte(idx)                                    [B, T, C]
    feats, mask = pyramid(to_pyr(x), L)                [B, T, L, P+1], [T, L]
    cand = per-level linear map of feats (a learned
           "empty" vector where a level is masked)     [B, T, L, C]
    read = DecisionSlots(ln(x + mean_l cand))          [B, T, C]
    each layer:  x += select(ln(x), cand)              scales chosen per position and layer
                 x += read_proj(read)                  the slots, read by every layer
                 x += near_field(ln(x))                optional: attention over the last w tokens
                 x += mlp(ln(x))
    logits = head(ln_f(x))                             tied to wte

Guarantees: causal (the pyramid, the slots and the window only look back); no T x T
object anywhere (the window is banded), cost O(T C log T + T C^2 + T w C) per layer.

Streaming: `step(idx_t, state) -> (logits_t, state)` runs one token with O(L P + K C
+ n_layer w C) state (`PhaseLMState`: the pyramid's rings, the slots, a ring of the
last w keys and values per layer), whatever the context; its logits equal the batch
forward's at every position. `generate` uses it.

Past block_size: the model has no position table, so `logits(idx)` (the batch
computation, without `forward`'s length check) is defined at any T: the pyramid keeps
its n_levels levels (its top level keeps comparing blocks of 2**(L-1) tokens), the slots
and the window carry on. `step` computes exactly that: at position t >= block_size its
logits equal `logits(idx[:, :t+1])` over the whole history, not over the last
block_size tokens. `forward` still refuses T > block_size (lengths never trained on).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_positive_int
from .attention import causal_mask
from .kernels.near_field import (NearFieldState, near_field_banded, near_field_reference,
                                 near_field_step_reference)
from .kernels.pyramid.streaming import PyramidState
from .pyramid import default_levels, pyramid
from .selection import KINDS, ScaleSelector
from .slots import DecisionSlots
from .streaming import pyramid_step
from .taps import Tap
from .transformer import MLP, CausalLM

__all__ = ["PhaseLMConfig", "PhaseLM", "PhaseLMState", "NearFieldAttention", "window_mask",
           "sample_next"]

# The near-field mask is the package's one windowed causal mask, under the name the
# phase-LM chapter uses: window_mask(T, w)[i, j] is True when i - w < j <= i.
window_mask = causal_mask


@dataclass
class PhaseLMConfig:
    vocab_size: int
    block_size: int = 64          # longest context; fixes the number of pyramid levels
    n_layer: int = 2
    n_embd: int = 64
    pyr_dim: int = 32             # width P of the projected stream the pyramid runs on
    levels: int | None = None     # None: default_levels(block_size)
    selector: str = "softmax"     # ScaleSelector kind; "none": a fixed sum over levels
    n_slots: int = 4              # decision slots; 0 disables them
    hard_slots: bool = False
    window: int = 0               # exact near-field: attention over the last w tokens; 0 disables
    n_head: int = 2               # heads of the near-field window
    dropout: float = 0.0
    bias: bool = False

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_embd", "pyr_dim", "n_head"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.pyr_dim < 2:
            raise ValueError(f"pyr_dim must be >= 2 (transport needs a sphere), got {self.pyr_dim}")
        if self.levels is not None and (not isinstance(self.levels, int) or self.levels < 1):
            raise ValueError(f"levels must be None or a positive int, got {self.levels!r}")
        if not isinstance(self.window, int) or self.window < 0:
            raise ValueError(f"window must be an int >= 0 (0 disables it), got {self.window!r}")
        if not isinstance(self.n_slots, int) or self.n_slots < 0:
            raise ValueError(f"n_slots must be an int >= 0 (0 disables them), got {self.n_slots!r}")
        if self.selector != "none" and self.selector not in KINDS:
            raise ValueError(f"selector must be 'none' or one of {KINDS}, got {self.selector!r}")
        if self.window and self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    @property
    def n_levels(self) -> int:
        return default_levels(self.block_size) if self.levels is None else self.levels


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


class LevelFeatures(nn.Module):
    """Pyramid features to candidates: `[B, T, L, P+1], [T, L] -> [B, T, L, C]`, one linear
    map per level, and a learned vector per level where the level is masked (too early)."""

    def __init__(self, n_levels: int, pyr_dim: int, n_embd: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_levels, pyr_dim + 1, n_embd) * 0.02)
        self.bias = nn.Parameter(torch.zeros(n_levels, n_embd))
        self.empty = nn.Parameter(torch.zeros(n_levels, n_embd))

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        cand = torch.einsum("btlp,lpc->btlc", feats, self.weight) + self.bias
        return torch.where(mask[None, :, :, None], cand, self.empty)


class PhaseBlock(nn.Module):
    """One layer: select among the levels, read the slots, look at the near field, MLP."""

    def __init__(self, cfg: PhaseLMConfig):
        super().__init__()
        C = cfg.n_embd
        self.ln_q = nn.LayerNorm(C, bias=cfg.bias)
        if cfg.selector == "none":
            self.select = None
            self.mix = nn.Linear(C, C, bias=cfg.bias)
        else:
            self.select = ScaleSelector(C, cfg.n_levels, kind=cfg.selector)
        self.tap_select = Tap()  # [B, T, L] the selection weights over levels
        self.read_proj = nn.Linear(C, C, bias=cfg.bias) if cfg.n_slots else None
        self.near = None
        if cfg.window:
            self.ln_a = nn.LayerNorm(C, bias=cfg.bias)
            self.near = NearFieldAttention(C, cfg.n_head, cfg.window, cfg.bias)
        self.ln_m = nn.LayerNorm(C, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.tap_resid_post = Tap()  # [B, T, C]

    def _select_read(self, x, cand, read):
        if self.select is None:
            x = x + self.mix(cand.mean(2))
        else:
            out, w = self.select(self.ln_q(x), cand)
            self.tap_select(w)
            x = x + out
        if self.read_proj is not None:
            x = x + self.read_proj(read)
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
        """One position: x [B, 1, C], cand [B, 1, L, C], read [B, 1, C] | None."""
        x = self._select_read(x, cand, read)
        if self.near is not None:
            y, near_state = self.near.step(self.ln_a(x[:, 0]), near_state)
            x = x + y[:, None]
        return self._mlp(x), near_state


@dataclass
class PhaseLMState:
    """What `PhaseLM.step` carries between tokens; its size does not grow with t."""

    t: int                              # tokens seen so far
    pyramid: PyramidState               # the pyramid's rings, [B, L, 2, P] and friends
    slots: torch.Tensor | None          # [B, K, C], None before the first token or without slots
    near: list[NearFieldState | None]   # per layer: the last `window` keys and values

    def nbytes(self) -> int:
        n = self.pyramid.nbytes() + sum(s.nbytes() for s in self.near if s is not None)
        return n + (0 if self.slots is None else self.slots.numel() * self.slots.element_size())


class PhaseLM(CausalLM):
    """Phase-transport language model (see the module docstring for the data flow).

    forward(idx [B, T] long, targets [B, T] long | None) -> (logits [B, T, V], loss | None).
    Causal: the logits at t depend only on idx[:, :t+1].
    """

    def __init__(self, cfg: PhaseLMConfig):
        super().__init__()
        self.cfg = cfg
        C, L = cfg.n_embd, cfg.n_levels
        self.wte = nn.Embedding(cfg.vocab_size, C)
        self.drop = nn.Dropout(cfg.dropout)
        self.to_pyr = nn.Linear(C, cfg.pyr_dim, bias=cfg.bias)
        self.levels_in = LevelFeatures(L, cfg.pyr_dim, C)
        self.ln_c = nn.LayerNorm(C, bias=cfg.bias)
        self.tap_levels = Tap()  # [B, T, L, C] the candidates the selectors choose among
        self.slots = None
        if cfg.n_slots:
            self.ln_s = nn.LayerNorm(C, bias=cfg.bias)
            self.slots = DecisionSlots(C, n_slots=cfg.n_slots, hard=cfg.hard_slots)
        self.tap_slots = Tap()  # [B, T, K, C] the slot contents
        self.blocks = nn.ModuleList(PhaseBlock(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(C, bias=cfg.bias)
        self.head = nn.Linear(C, cfg.vocab_size, bias=False)
        self.head.weight = self.wte.weight
        self.apply(self._init_weights)

    def num_params(self) -> int:
        """Parameters, counting the tied embedding once."""
        return sum(p.numel() for p in self.parameters())

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.wte(idx))
        feats, mask = pyramid(self.to_pyr(x), self.cfg.n_levels)
        cand = self.tap_levels(self.ln_c(self.levels_in(feats, mask)))
        read = None
        if self.slots is not None:
            read, slots = self.slots(self.ln_s(x + cand.mean(2)))
            self.tap_slots(slots)
        for block in self.blocks:
            x = block(x, cand, read)
        return self.head(self.ln_f(x))

    def init_state(self, batch: int, *, device=None, dtype=torch.float32) -> PhaseLMState:
        """The state before the first token, for `batch` sequences."""
        check_positive_int("batch", batch)
        cfg = self.cfg
        near = [None if b.near is None else b.near.init_state(batch, device=device, dtype=dtype)
                for b in self.blocks]
        pyr = PyramidState.zeros(batch, cfg.n_levels, cfg.pyr_dim, device=device, dtype=dtype)
        return PhaseLMState(0, pyr, None, near)

    def step(self, idx_t: torch.Tensor, state: PhaseLMState | None = None):
        """One token per sequence: idx_t [B] long -> (logits [B, V], the new state).

        Stepping through idx[:, 0], idx[:, 1], ... gives `logits(idx)[:, t]` at every t,
        at any length (see the module docstring for t >= block_size). O(L P + K C^2 +
        n_layer (w C + C^2)) work per token. The pyramid's rings are updated in place.
        """
        if not isinstance(idx_t, torch.Tensor) or idx_t.dim() != 1 or idx_t.dtype != torch.long:
            raise ValueError(f"idx_t must be a long tensor of shape [B], got "
                             f"{getattr(idx_t, 'dtype', type(idx_t).__name__)} "
                             f"{tuple(getattr(idx_t, 'shape', ()))}")
        x = self.drop(self.wte(idx_t))                                    # [B, C]
        if state is None:
            state = self.init_state(x.shape[0], device=x.device, dtype=x.dtype)
        if state.pyramid.ring.shape[0] != x.shape[0]:
            raise ValueError(f"idx_t must have B = {state.pyramid.ring.shape[0]} rows like "
                             f"the state, got shape {tuple(idx_t.shape)}")
        L, t = self.cfg.n_levels, state.t
        feats, _ = pyramid_step(self.to_pyr(x), state.pyramid)          # [B, L, P+1]
        mask = ((t + 1) >> torch.arange(L, device=x.device)) >= 2        # pyramid_mask row t
        cand = self.tap_levels(self.ln_c(self.levels_in(feats[:, None], mask[None])))
        read, slots = None, state.slots
        if self.slots is not None:
            read, slots = self.slots.step(self.ln_s(x + cand[:, 0].mean(1)), slots)
            self.tap_slots(slots[:, None])
            read = read[:, None]
        x, near = x[:, None], []
        for block, ns in zip(self.blocks, state.near):
            x, ns = block.step(x, cand, read, ns)
            near.append(ns)
        logits = self.head(self.ln_f(x[:, 0]))
        return logits, PhaseLMState(t + 1, state.pyramid, slots, near)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample `max_new_tokens` tokens after `idx` [B, T]; returns [B, T + max_new_tokens].

        Streams with `step`: the prompt is read once, each new token costs one step, and
        the state (slots included) persists over the whole sample, past block_size too.
        """
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long \
                or idx.shape[1] < 1:
            raise ValueError(f"idx must be a long tensor of shape [B, T] with T >= 1, got "
                             f"{getattr(idx, 'dtype', type(idx).__name__)} "
                             f"{tuple(getattr(idx, 'shape', ()))}")
        state = None
        for t in range(idx.shape[1]):
            logits, state = self.step(idx[:, t], state)
        out = [idx]
        for i in range(max_new_tokens):
            nxt = sample_next(logits, temperature, top_k, generator)     # [B, 1]
            out.append(nxt)
            if i + 1 < max_new_tokens:
                logits, state = self.step(nxt[:, 0], state)
        return torch.cat(out, dim=1)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from logits [B, V], as `CausalLM.generate` samples: [B, 1]."""
    logits = logits / max(temperature, 1e-8)
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
