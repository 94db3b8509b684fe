"""A tiny GPT in the manner of nanoGPT, with taps on its attention and residual stream.

Book: Part I, "Attention from scratch"; used as the baseline everywhere after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CausalSelfAttention
from .taps import Tap

__all__ = ["TransformerConfig", "TinyTransformer", "CausalLM"]


@dataclass
class TransformerConfig:
    vocab_size: int
    block_size: int = 64      # longest context the position table covers
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = False
    mlp: bool = True          # False gives an attention-only model (easier to read)
    attn_scale: str = "standard"  # "log_n": scalable softmax, query * s_h log(t+1) (Part II, F5)
    pos: str = "learned"      # "learned": a position table; "rope": rotary queries and keys


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg.n_embd, cfg.n_head, cfg.dropout, cfg.bias,
                                        attn_scale=cfg.attn_scale, rope=cfg.pos == "rope")
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias) if cfg.mlp else None
        self.mlp = MLP(cfg) if cfg.mlp else None
        self.tap_resid_post = Tap()  # [B, T, C] the residual stream after this block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        if self.mlp is not None:
            x = x + self.mlp(self.ln_2(x))
        return self.tap_resid_post(x)


class CausalLM(nn.Module):
    """What every language model here shares: input checks, the loss, weight init, sampling.

    A subclass sets `self.cfg` (with `vocab_size` and `block_size`) and implements
    `logits(idx) -> [B, T, V]`; `forward(idx, targets)` returns `(logits, loss | None)`.
    """

    cfg: TransformerConfig

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def check_idx(self, idx, targets=None) -> None:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
            raise ValueError(f"idx must be a long tensor of shape [B, T], got "
                             f"{getattr(idx, 'dtype', type(idx).__name__)} {tuple(getattr(idx, 'shape', ()))}")
        T = idx.shape[1]
        if not 1 <= T <= self.cfg.block_size:
            raise ValueError(f"idx must have 1 <= T <= block_size={self.cfg.block_size} tokens, got T={T}")
        if targets is not None and targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        self.check_idx(idx, targets)
        logits = self.logits(idx)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample `max_new_tokens` tokens after `idx` [B, T]; returns [B, T + max_new_tokens]."""
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.cfg.block_size:])
            logits = logits[:, -1] / max(temperature, 1e-8)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


class TinyTransformer(CausalLM):
    """Token and position embeddings, `n_layer` blocks, a final norm and a tied head.

    forward(idx [B, T] long, targets [B, T] long | None) -> (logits [B, T, V], loss | None).
    Causal: the logits at t depend only on idx[:, :t+1].
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.pos not in ("learned", "rope"):
            raise ValueError(f"pos must be 'learned' or 'rope', got {cfg.pos!r}")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        # A position table, or none when the attention turns queries and keys (rope).
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.pos == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.tap_embed = Tap()  # [B, T, C] the residual stream before the first block
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.wte.weight  # weight tying, as in GPT-2
        self.apply(self._init_weights)

    def num_params(self) -> int:
        """Parameters, counting the tied embedding once and leaving out the position table."""
        table = self.wpe.weight.numel() if self.wpe is not None else 0
        return sum(p.numel() for p in self.parameters()) - table

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """The first residual stream [B, T, C]: token plus position embeddings (token
        embeddings alone with pos="rope")."""
        if self.wpe is None:
            return self.wte(idx)
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.wte(idx) + self.wpe(pos)

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tap_embed(self.drop(self.embed(idx)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
