"""StreamingLLM at small scale: a sliding KV window breaks, kept sink tokens repair it.

Book: Part III, "The remedies, measured". Xiao et al. (2023) found that a language
model decoding with a sliding KV cache falls apart once the first tokens leave the
cache, and that keeping those few first tokens ("attention sinks") beside the window
restores it. Here: a small softmax character model without a position table
(`RemedyLM(pos="none")`, so it runs past its training length) is trained on
Shakespeare, then scored on long held-out streams under KV caches of one size W:

- "window": the last W tokens;
- "sinks_s": the first s tokens and the last W - s (s = 1, 2, 4);
- "recompute": every token re-read with the last W tokens as a fresh sequence (the
  costly baseline: O(W^2) per token instead of O(W));
- "dense": every earlier token (the cache grows without bound).

A masked forward pass over the whole stream is exactly what decoding with such a cache
computes (each token's keys and values were made under the same rule when it was read).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..attention import causal_mask
from ..data import random_windows
from ..train import TrainConfig, train
from .sinks import sink_mask
from .model import RemedyConfig, RemedyLM
from .tasks import shakespeare_data

__all__ = ["CONDITIONS", "stream_losses", "streaming_run"]

CONDITIONS = ("dense", "window", "sinks_1", "sinks_2", "sinks_4", "recompute")


def _cache_mask(cond: str, L: int, W: int) -> torch.Tensor:
    if cond == "dense":
        return causal_mask(L)
    if cond == "window":
        return causal_mask(L, W)
    s = int(cond.split("_")[1])
    return sink_mask(L, W - s, s)


@torch.no_grad()
def stream_losses(model: RemedyLM, x: torch.Tensor, y: torch.Tensor, cond: str,
                  W: int) -> torch.Tensor:
    """[L] mean loss at each position of streams x, y [B, L] under cache `cond`."""
    if cond not in CONDITIONS:
        raise ValueError(f"cond must be one of {CONDITIONS}, got {cond!r}")
    model.eval()
    B, L = x.shape
    if cond != "recompute":
        logits = model.long_logits(x, _cache_mask(cond, L, W))
        return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(0)
    out = torch.empty(L)
    xp = F.pad(x, (W - 1, 0))                       # left padding, never attended below
    for t in range(L):
        n = min(t + 1, W)
        logits = model(xp[:, t + W - n:t + W])[0][:, -1]
        out[t] = F.cross_entropy(logits, y[:, t])
    return out


def streaming_run(seed: int, *, W: int = 32, L: int = 384, n_streams: int = 8,
                  steps: int = 300, block: int = 64) -> dict:
    """Train the model from `seed`; score every condition. Returns per-condition
    "loss_<cond>" (mean over positions W..L-1, after the first eviction), "early_loss"
    (positions < W, equal for every cache), the per-position curves "curve_<cond>"
    (lists of L floats) and the mean attention weight on token 0 at positions >= 16
    under the dense cache ("sink_weight")."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    tok, tr, va = shakespeare_data()
    cfg = RemedyConfig(vocab_size=tok.vocab_size, mixer="softmax", block_size=block,
                       pos="none", n_layer=2, n_head=4, n_embd=64)
    model = RemedyLM(cfg)
    train(model, lambda s: random_windows(tr, block, 32, generator=g),
          TrainConfig(steps=steps, progress=False))
    starts = torch.linspace(0, len(va) - L - 2, n_streams).long()
    x = torch.stack([va[s:s + L] for s in starts])
    y = torch.stack([va[s + 1:s + L + 1] for s in starts])
    out = {"W": W, "L": L, "steps": steps}
    for cond in CONDITIONS:
        c = stream_losses(model, x, y, cond, W)
        out[f"curve_{cond}"] = [round(float(v), 4) for v in c]
        out[f"loss_{cond}"] = float(c[W:].mean())
    out["early_loss"] = float(stream_losses(model, x, y, "window", W)[:W].mean())
    out["sink_weight"] = _sink_weight(model, x[:, :block])
    out["seconds"] = time.perf_counter() - t0
    return out


@torch.no_grad()
def _sink_weight(model: RemedyLM, x: torch.Tensor) -> float:
    """Mean softmax weight on key 0 from queries 16.. of x, over layers and heads
    (uniform attention would give 1 / (t + 1))."""
    from ..attention import attention, split_heads

    h = model.wte(x)
    ws = []
    for blk in model.blocks:
        a = blk.ln_1(h)
        q = split_heads(blk.mix.q(a), blk.mix.n_head)
        k, v = (split_heads(t, blk.mix.n_kv_head) for t in blk.mix.kv(a).chunk(2, -1))
        ws.append(attention(q, k, v)[1][..., 16:, 0].mean().item())
        h = blk(h)
    return float(sum(ws) / len(ws))
