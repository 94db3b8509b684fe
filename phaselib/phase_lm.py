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

Guarantees: causal (the pyramid, the slots and the window only look back); with
window=0 there is no T x T object anywhere, cost O(T C log T + T C^2) per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import causal_mask
from .pyramid import default_levels, pyramid
from .selection import KINDS, ScaleSelector
from .slots import DecisionSlots
from .taps import Tap
from .transformer import MLP, CausalLM

__all__ = ["PhaseLMConfig", "PhaseLM", "NearFieldAttention", "window_mask"]

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

    Cost, as written today: O(T^2) time and memory. It builds the [H, T, T] bias (the
    window mask with -inf outside) and runs full attention under it, so only the result
    is local, not the work. An O(T window C) version (chunked, as in
    `efficient_attention.sliding_window_attention`) is future work."""

    def __init__(self, n_embd: int, n_head: int, window: int, bias: bool = False):
        super().__init__()
        self.n_head, self.window = n_head, window
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.rel_bias = nn.Parameter(torch.zeros(n_head, window))  # [H, w], distance 0..w-1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.qkv(x).chunk(3, dim=-1))
        d = (torch.arange(T, device=x.device)[:, None] - torch.arange(T, device=x.device)[None, :])
        bias = self.rel_bias[:, d.clamp(0, self.window - 1)]                     # [H, T, T]
        bias = bias.masked_fill(~causal_mask(T, self.window, device=x.device), float("-inf"))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None].to(q.dtype))
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


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

    def forward(self, x, cand, read):
        if self.select is None:
            x = x + self.mix(cand.mean(2))
        else:
            out, w = self.select(self.ln_q(x), cand)
            self.tap_select(w)
            x = x + out
        if self.read_proj is not None:
            x = x + self.read_proj(read)
        if self.near is not None:
            x = x + self.near(self.ln_a(x))
        x = x + self.mlp(self.ln_m(x))
        return self.tap_resid_post(x)


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
