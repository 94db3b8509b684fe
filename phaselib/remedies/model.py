"""A tiny language model with the token mixer swapped: the test bench of Part III.

Book: Part III, "The remedies, measured". `RemedyLM` is `TinyTransformer` with the
attention of each block replaced by a mixer from `phaselib.remedies.mixers.MIXERS`;
the MLP, the norms, the tied head, the loss and sampling are the package's own
(`phaselib.transformer`). `pos="none"` drops the position table (a causal model can
still tell positions apart), so a model can be run past its training length with a
sliding KV window, as the StreamingLLM experiment does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..transformer import MLP, CausalLM, TransformerConfig
from .mixers import make_mixer

__all__ = ["RemedyConfig", "RemedyLM"]


@dataclass
class RemedyConfig:
    vocab_size: int
    mixer: str = "fused"
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    pos: str = "learned"          # "learned" (a position table) or "none"
    mixer_kw: dict = field(default_factory=dict)
    dropout: float = 0.0
    bias: bool = False


class RemedyBlock(nn.Module):
    """Pre-norm residual block: x + mixer(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: RemedyConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mix = make_mixer(cfg.mixer, cfg.n_embd, cfg.n_head, cfg.block_size,
                              **cfg.mixer_kw)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        tcfg = TransformerConfig(vocab_size=cfg.vocab_size, n_embd=cfg.n_embd,
                                 dropout=cfg.dropout, bias=cfg.bias)
        self.mlp = MLP(tcfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.mix(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class RemedyLM(CausalLM):
    """Embeddings, `n_layer` remedy blocks, a final norm and a tied head.

    forward(idx [B, T], targets | None) -> (logits [B, T, V], loss | None), causal.
    `logits(idx, mask)` with a [T, T] bool mask runs softmax mixers under that mask
    (for a sliding KV window past the training length; needs pos="none").
    """

    def __init__(self, cfg: RemedyConfig):
        super().__init__()
        if cfg.pos not in ("learned", "none"):
            raise ValueError(f"pos must be 'learned' or 'none', got {cfg.pos!r}")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.pos == "learned" else None
        self.blocks = nn.ModuleList(RemedyBlock(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.wte.weight
        self.apply(self._init_weights)

    def num_params(self) -> int:
        extra = self.wpe.weight.numel() if self.wpe is not None else 0
        return sum(p.numel() for p in self.parameters()) - extra

    def logits(self, idx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_f(x))

    @torch.no_grad()
    def long_logits(self, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits over a sequence longer than block_size under a [T, T] mask: what a
        model decoding with that KV cache computes (pos="none" only)."""
        if self.wpe is not None:
            raise ValueError("long_logits needs a model built with pos='none'")
        T = idx.shape[1]
        if mask.shape != (T, T) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape [{T}, {T}], "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        return self.logits(idx, mask)
