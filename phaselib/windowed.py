"""A small transformer whose attention sees only the last `window` tokens, with optional
decision slots in each block.

Book: Part IV, "Decision slots". The chapter trains four variants of one network on a
task whose rule is fixed by the first token: the window alone, the window with soft or
hard slots, and full causal attention (window=None). There is no position table, so a
model trained on short sequences runs at any length.

One forward pass, for idx [B, T] long:

    x = wte(idx)                                              [B, T, C]
    each block:  x += proj(attention of ln_1(x) over the last `window` tokens)
                 x += slots(ln_s(x)).read                      if the block has slots
                 x += mlp(ln_2(x))
    logits = head(ln_f(x))                                    [B, T, vocab_out]

Two controls for the slots: `sink=True` keeps the first token visible to every query
beside the window (an attention sink, as in StreamingLLM), and `memory="gru"` puts a
`GRUState` of the same state size (K*C numbers per block) where the slots go.

Causal: the logits at t depend on idx[:, :t+1] only; with a window w, no sink and no
slots, on idx[:, t-L(w-1) : t+1] only, L the number of blocks. The attention runs under the
[T, T] mask of `phaselib.attention.causal_mask`, so its cost is O(T^2), not O(T w).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_positive_int
from .attention import causal_mask, merge_heads, split_heads
from .slots import DecisionSlots, GRUState
from .taps import Tap

__all__ = ["WindowedBlock", "WindowedLM"]


class WindowedBlock(nn.Module):
    """Pre-norm block: windowed causal attention, then the slots (if any), then an MLP.

    forward(x [B, T, C]) -> [B, T, C]. `window=None` is full causal attention; `slots`
    is a `DecisionSlots` or `GRUState` of width C, or None; `sink=True` lets every
    query also see key 0.
    """

    def __init__(self, n_embd: int, n_head: int, window: int | None,
                 slots: nn.Module | None = None, sink: bool = False):
        super().__init__()
        check_positive_int("window", window, allow_none=True)
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by "
                             f"n_head ({n_head})")
        if not isinstance(sink, bool):
            raise TypeError(f"sink must be a bool, got {sink!r}")
        self.n_head, self.window, self.sink = n_head, window, sink
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd, bias=False)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(),
                                 nn.Linear(4 * n_embd, n_embd))
        self.slots = slots
        self.ln_s = nn.LayerNorm(n_embd) if slots is not None else None
        self.tap_resid_post = Tap()  # [B, T, C] the stream after this block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Keys the query may see: the last `window` of them (all, for window=None).
        mask = causal_mask(x.shape[1], self.window, device=x.device)
        if self.sink:                               # and the first token, always
            mask[:, 0] = True
        qkv = self.qkv(self.ln_1(x)).chunk(3, -1)
        q, k, v = (split_heads(t, self.n_head) for t in qkv)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(merge_heads(y))
        if self.slots is not None:
            x = x + self.slots(self.ln_s(x))[0]     # read the slots into the stream
        x = x + self.mlp(self.ln_2(x))
        return self.tap_resid_post(x)


class WindowedLM(nn.Module):
    """Token embeddings (no position table), `n_layer` windowed blocks, a linear head.

    forward(idx [B, T] long, targets [B, T] long | None) -> (logits [B, T, vocab_out],
    mean cross-entropy over targets != -1, or None). With `n_slots` > 0 every block
    gets its own `DecisionSlots(n_embd, n_slots, hard, gate_bias)` (memory="slots") or
    `GRUState(n_embd, n_slots, gru_hidden)` (memory="gru"); `sink=True` adds key 0 to
    every window.
    """

    def __init__(self, vocab_in: int, vocab_out: int, n_embd: int, n_head: int,
                 window: int | None, *, n_layer: int = 2, n_slots: int = 0,
                 hard: bool = False, gate_bias: float = 0.0, sink: bool = False,
                 memory: str = "slots", gru_hidden: int | None = None):
        super().__init__()
        for name, value in (("vocab_in", vocab_in), ("vocab_out", vocab_out),
                            ("n_embd", n_embd), ("n_head", n_head),
                            ("n_layer", n_layer)):
            check_positive_int(name, value)
        if isinstance(n_slots, bool) or not isinstance(n_slots, int) or n_slots < 0:
            raise ValueError(f"n_slots must be an int >= 0 (0: no slots), "
                             f"got {n_slots!r}")
        if memory not in ("slots", "gru"):
            raise ValueError(f"memory must be 'slots' or 'gru', got {memory!r}")
        self.vocab_in = vocab_in
        self.wte = nn.Embedding(vocab_in, n_embd)
        self.tap_embed = Tap()  # [B, T, C]
        # Each block's slots are built before the block (the chapter's order of
        # initialisation, which its results depend on).
        def memory_module():
            if not n_slots:
                return None
            if memory == "gru":
                return GRUState(n_embd, n_slots, hidden=gru_hidden)
            return DecisionSlots(n_embd, n_slots, hard=hard, gate_bias=gate_bias)

        self.blocks = nn.ModuleList(
            WindowedBlock(n_embd, n_head, window, memory_module(), sink=sink)
            for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_out, bias=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        if not (isinstance(idx, torch.Tensor) and idx.dtype == torch.long
                and idx.dim() == 2):
            raise ValueError("idx must be a long tensor of shape [B, T], got "
                             f"{getattr(idx, 'dtype', type(idx).__name__)} "
                             f"{tuple(getattr(idx, 'shape', ()))}")
        x = self.tap_embed(self.wte(idx))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss
