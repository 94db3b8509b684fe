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
forward's at every position. `generate` uses it. Both live in `phase_lm_stream`; the
layers (window, block) in `phase_lm_blocks`, the levels as candidates in
`phase_lm_levels`.

Ablations (config fields): `features="mean_diff"` compares the pyramid's blocks by the
difference of their means instead of transport; `features="none"` drops the pyramid and
the selectors (with a window: window only); `n_slots=0` drops the slots; `selector`
picks softmax, sparsemax, entmax15, hard_st, gumbel or "none" (a fixed mean).
`short_conv=K` adds a causal depthwise convolution of kernel K to the embeddings
(x + conv_K(x), `remedies.shortconv.ShortConv`), so that every token also carries its
K - 1 predecessors: the binding of a value to its key that Zoology's recall models get
from their short convolutions (Part III's MQAR). It has no bias: added to embeddings
of scale 0.02, a bias at PyTorch's initialisation (up to 1/sqrt(K) per channel) is the
same vector at every position, many times a token's own, and the blocks' LayerNorms
then see every token as nearly the same (a model with it barely learned MQAR).

`layer_scale=g > 0` multiplies what the selection over the levels and the slot read
add to the stream in each layer by a learned per-channel gain initialised to g
(LayerScale, as in CaiT). Without it those additions start far larger than a token's
own embedding (LayerNormed candidates of rms about 1/3 per channel, a slot read of
about 0.16, against embeddings of 0.02), so the window's LayerNorm sees mostly them;
Part III's MQAR ablation asks whether that is what costs the window its lookup.

`compact=True` computes the same candidates from the pyramid's pair rows (about 2T of
them) instead of its [B, T, L, P+1] features: the per-level map and its LayerNorm run
once per pair of blocks, not once per position, and the selection reads each level's
rows where they apply, so the [B, T, L, C] candidates are never written
(`phase_lm_levels.CompactCandidates`; `python -m phaselib.bench phase-features` times
both). Its numbers equal the default's to rounding, not to the
bit, so the default stays False: the stored sweeps re-run bit-exactly.

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

from . import phase_lm_stream as _stream
from .phase_lm_blocks import NearFieldAttention, PhaseBlock, window_mask
from .phase_lm_levels import (FEATURES, CompactCandidates, LevelFeatures, level_features,
                              level_pairs)
from .phase_lm_stream import PhaseLMState, sample_next
from .pyramid import default_levels
from .remedies.shortconv import ShortConv
from .selection import KINDS
from .slots import DecisionSlots
from .taps import Tap
from .transformer import CausalLM

__all__ = ["PhaseLMConfig", "PhaseLM", "PhaseLMState", "NearFieldAttention", "window_mask",
           "sample_next", "FEATURES"]


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
    window: int = 0               # exact near field over the last w tokens; 0 disables
    n_head: int = 2               # heads of the near-field window
    dropout: float = 0.0
    bias: bool = False
    features: str = "transport"   # level features: transport, mean_diff, none (no pyramid)
    compact: bool = False         # candidates from the pair rows (same numbers to
                                  # rounding, less work); False: as the sweeps ran
    short_conv: int = 0           # kernel K of a causal depthwise convolution added to
                                  # the embeddings (x + conv_K(x)); 0 disables it
    layer_scale: float = 0.0      # > 0: a learned per-channel gain, initialised to this,
                                  # on what the levels and the slots add to the stream
                                  # in each layer (LayerScale); 0 disables it

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_embd", "pyr_dim", "n_head"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.pyr_dim < 2:
            raise ValueError(f"pyr_dim must be >= 2 (transport needs a sphere), "
                             f"got {self.pyr_dim}")
        if self.levels is not None and (not isinstance(self.levels, int) or self.levels < 1):
            raise ValueError(f"levels must be None or a positive int, got {self.levels!r}")
        if not isinstance(self.window, int) or self.window < 0:
            raise ValueError(f"window must be an int >= 0 (0 disables it), "
                             f"got {self.window!r}")
        if not isinstance(self.n_slots, int) or self.n_slots < 0:
            raise ValueError(f"n_slots must be an int >= 0 (0 disables them), "
                             f"got {self.n_slots!r}")
        if self.selector != "none" and self.selector not in KINDS:
            raise ValueError(f"selector must be 'none' or one of {KINDS}, "
                             f"got {self.selector!r}")
        if self.window and self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head "
                             f"({self.n_head})")
        if not isinstance(self.compact, bool):
            raise ValueError(f"compact must be a bool, got {self.compact!r}")
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {self.features!r}")
        if (isinstance(self.short_conv, bool) or not isinstance(self.short_conv, int)
                or self.short_conv < 0):
            raise ValueError(f"short_conv must be an int >= 0 (0 disables it), "
                             f"got {self.short_conv!r}")
        if (isinstance(self.layer_scale, bool)
                or not isinstance(self.layer_scale, (int, float))
                or not 0 <= self.layer_scale < float("inf")):
            raise ValueError(f"layer_scale must be a finite float >= 0 (0 disables it), "
                             f"got {self.layer_scale!r}")

    @property
    def n_levels(self) -> int:
        return default_levels(self.block_size) if self.levels is None else self.levels


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
        self.conv = (ShortConv(C, cfg.short_conv, bias=False) if cfg.short_conv
                     else None)                   # no bias: module docstring
        self.to_pyr = self.levels_in = None
        if cfg.features != "none":
            self.to_pyr = nn.Linear(C, cfg.pyr_dim, bias=cfg.bias)
            in_dim = cfg.pyr_dim + (cfg.features == "transport")
            self.levels_in = LevelFeatures(L, in_dim, C)
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

    def candidates(self, x: torch.Tensor) -> torch.Tensor | None:
        """The level candidates [B, T, L, C] of the stream x [B, T, C] (None without a
        pyramid)."""
        if self.levels_in is None:
            return None
        if self.cfg.compact:
            return self.tap_levels(self.compact_candidates(x).materialise())
        feats, mask = level_features(self.to_pyr(x), self.cfg.n_levels, self.cfg.features)
        return self.tap_levels(self.ln_c(self.levels_in(feats, mask)))

    def compact_candidates(self, x: torch.Tensor) -> CompactCandidates:
        """The level candidates of x [B, T, C] as `CompactCandidates` (the pair rows of
        each level, mapped and normalised once), whatever `cfg.compact`."""
        if self.levels_in is None:
            raise ValueError("compact_candidates needs a pyramid; this model has "
                             "features='none'")
        pairs = level_pairs(self.to_pyr(x), self.cfg.n_levels, self.cfg.features)
        return self.levels_in.compact(pairs, x.shape[1], self.ln_c, x.shape[0])

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.wte(idx))
        if self.conv is not None:
            x = x + self.conv(x)
        if self.cfg.compact and self.levels_in is not None and not self.tap_levels.active:
            cand = self.compact_candidates(x)          # never gathered to [B, T, L, C]
            mean = cand.mean()
        else:
            cand = self.candidates(x)
            mean = None if cand is None else cand.mean(2)
        read = None
        if self.slots is not None:
            read, slots = self.slots(self.ln_s(x if mean is None else x + mean))
            self.tap_slots(slots)
        for block in self.blocks:
            x = block(x, cand, read)
        return self.head(self.ln_f(x))

    def init_state(self, batch: int, *, device=None, dtype=torch.float32) -> PhaseLMState:
        """The state before the first token, for `batch` sequences."""
        return _stream.init_state(self, batch, device=device, dtype=dtype)

    def step(self, idx_t: torch.Tensor, state: PhaseLMState | None = None):
        """One token per sequence: idx_t [B] long -> (logits [B, V], the new state).

        Stepping through idx[:, 0], idx[:, 1], ... gives `logits(idx)[:, t]` at every t,
        at any length (see the module docstring for t >= block_size); `phase_lm_stream`.
        """
        return _stream.step(self, idx_t, state)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample `max_new_tokens` tokens after `idx` [B, T]; returns [B, T + max_new_tokens],
        streaming with `step`, so the slots persist over the whole sample."""
        return _stream.generate(self, idx, max_new_tokens, temperature, top_k, generator)
