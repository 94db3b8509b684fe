"""One small training loop shared by every chapter: AdamW, warmup and cosine decay.

Book: used from Part I on. `train(model, get_batch, cfg)` calls `get_batch(step)` for
`(x, y)` and `model(x, y)` for `(logits, loss)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

__all__ = ["TrainConfig", "History", "train", "lr_at"]


@dataclass
class TrainConfig:
    steps: int = 300
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup: int = 20
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 0        # 0: evaluate only at the end (if an eval_fn is given)
    progress: bool = True      # a tqdm bar in notebooks and terminals


@dataclass
class History:
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval: list[float] = field(default_factory=list)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_ratio."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def train(model: nn.Module, get_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
          cfg: TrainConfig, eval_fn: Callable[[nn.Module], float] | None = None) -> History:
    """Train `model` in place for `cfg.steps` steps; returns the loss history."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    hist = History()
    steps = range(cfg.steps)
    if cfg.progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="training", leave=False)
    model.train()
    for step in steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x, y = get_batch(step)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        hist.step.append(step)
        hist.loss.append(loss.item())
        last = step == cfg.steps - 1
        if eval_fn is not None and (last or (cfg.eval_every and (step + 1) % cfg.eval_every == 0)):
            model.eval()
            with torch.no_grad():
                hist.eval_step.append(step + 1)
                hist.eval.append(float(eval_fn(model)))
            model.train()
    model.eval()
    return hist
