"""One small training loop shared by every chapter: AdamW, warmup and cosine decay.

Book: used from Part I on. `train(model, get_batch, cfg)` calls `get_batch(step)` for
`(x, y)` and `model(x, y)` for `(logits, loss)`. The same loop resumes a run: give it
`start=TrainState(step, history, optimizer_state)` and it continues at that step, and
`on_step(step_done, optimizer, history)` is called after every step (the command line
saves checkpoints from there). `evaluate_loss` scores every token of a held-out split
exactly once; `sample` continues a prompt. The command line,

    python -m phaselib.train --model phase|transformer [--text FILE] [--steps N]
                             [--out ckpt.pt [--save-every N]] [--resume ckpt.pt]
    python -m phaselib.train --eval-only ckpt.pt --results-json run.json

lives in `phaselib.cli`; it trains (or scores a checkpoint) with these functions.
`python -m phaselib.train` runs `phaselib/train/__main__.py`, the one file of this package
that imports the command line: importing `phaselib.train` never does, so the loop, the
checkpoints (which import the loop) and the command line import one another in one
direction only.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TrainConfig", "History", "TrainState", "train", "lr_at", "param_groups",
           "eval_windows", "evaluate_loss", "position_losses", "sample"]


@dataclass
class TrainConfig:
    steps: int = 300
    lr: float = 3e-3
    weight_decay: float = 0.0  # AdamW's, on weight matrices and embeddings only
    beta2: float = 0.999       # AdamW's second-moment decay (nanoGPT's char runs: 0.99)
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


@dataclass
class TrainState:
    """Where a run stands after `step` completed steps: its history so far and the
    optimizer's `state_dict()` (None at step 0). `train(..., start=state)` continues it."""

    step: int = 0
    history: History = field(default_factory=History)
    optimizer: dict | None = None


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_ratio."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on tensors of two or more dimensions (weight
    matrices, embeddings), none on biases, gains and other vectors, as in nanoGPT. With
    no decay, one group of every parameter (what a checkpoint's optimizer state holds)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not weight_decay:
        return [{"params": params, "weight_decay": 0.0}]
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def train(model: nn.Module, get_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
          cfg: TrainConfig, eval_fn: Callable[[nn.Module], float] | None = None, *,
          start: TrainState | None = None,
          on_step: Callable[[int, torch.optim.Optimizer, History], None] | None = None
          ) -> History:
    """Train `model` in place up to `cfg.steps` steps; returns the loss history.

    start: continue a run from `start.step` with its history and optimizer state (the
    model must already hold that run's weights, and `get_batch` its data position).
    on_step(step_done, optimizer, history) runs after every step and its evaluation;
    an exception raised there stops the loop with the model at `step_done` steps.
    """
    start = TrainState() if start is None else start
    if not 0 <= start.step <= cfg.steps or len(start.history.step) != start.step:
        raise ValueError(f"start must be a TrainState with 0 <= step <= cfg.steps="
                         f"{cfg.steps} and one history entry per step, got step "
                         f"{start.step} with {len(start.history.step)} entries")
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                            betas=(0.9, cfg.beta2))
    if start.optimizer is not None:
        opt.load_state_dict(start.optimizer)
    hist = copy.deepcopy(start.history)  # the caller's state stays as it was
    steps = range(start.step, cfg.steps)
    if cfg.progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="training", leave=False, initial=start.step,
                     total=cfg.steps)
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
        if on_step is not None:
            on_step(step + 1, opt, hist)
    model.eval()
    return hist


def eval_windows(n: int, block: int, stride: int | None = None) -> list[tuple[int, int, int]]:
    """Windows that score every target of a 1-D split of `n` tokens exactly once.

    Returns (start, length, first_scored) triples: the window reads tokens
    [start, start + length) and predicts [start + 1, start + length + 1); only its
    predictions from index first_scored of the window on are counted. Targets 1 .. n-1
    (every token but the first, which has no context) are each covered once. With
    stride=None (= block) the windows do not overlap; a smaller stride slides them so
    every scored token after the first window sees at least block - stride tokens of context.
    """
    for name, v in (("n", n), ("block", block)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if n < 2:
        raise ValueError(f"n must be >= 2 (one token of context and one target), got {n}")
    stride = block if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= block:
        raise ValueError(f"stride must be an int in [1, block={block}], got {stride!r}")
    out, start, scored = [], 0, 0     # scored: targets 1..scored are done
    while scored < n - 1:
        length = min(block, n - 1 - start)
        out.append((start, length, scored - start))
        scored, start = start + length, start + stride
    return out


@torch.no_grad()
def _window_losses(model: nn.Module, data: torch.Tensor, block: int, batch: int,
                   stride: int | None, device):
    """Yield (per-token losses [T], first_scored) for each window of eval_windows."""
    if not isinstance(data, torch.Tensor) or data.dim() != 1 or data.dtype != torch.long:
        raise ValueError(f"data must be a 1-D long tensor of token ids, got "
                         f"{getattr(data, 'dtype', type(data).__name__)} {tuple(getattr(data, 'shape', ()))}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    wins = eval_windows(len(data), block, stride)
    device = device if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        i = 0
        while i < len(wins):
            length = wins[i][1]  # windows of one length go through together
            group = [w for w in wins[i:i + batch] if w[1] == length]
            x = torch.stack([data[s:s + length] for s, _, _ in group]).to(device)
            y = torch.stack([data[s + 1:s + length + 1] for s, _, _ in group]).to(device)
            logits, _ = model(x)
            ce = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
            for row, (_, _, first) in zip(ce.view(len(group), length).cpu(), group):
                yield row, first
            i += len(group)
    finally:
        model.train(was_training)


def evaluate_loss(model: nn.Module, data: torch.Tensor, block: int, batch: int = 64, *,
                  stride: int | None = None, device=None) -> float:
    """Mean cross-entropy (nats per token) over every target of `data` [N], each once.

    Windows come from `eval_windows(N, block, stride)`; stride=None gives non-overlapping
    windows (positions early in a window see little context, as in training).
    """
    total, count = 0.0, 0
    for row, first in _window_losses(model, data, block, batch, stride, device):
        total += row[first:].double().sum().item()
        count += len(row) - first
    return total / count


def position_losses(model: nn.Module, data: torch.Tensor, block: int, batch: int = 64,
                    device=None) -> torch.Tensor:
    """[block] mean loss at each position t of non-overlapping windows (t + 1 tokens of
    context); the final, shorter window is left out so every position averages the same tokens."""
    rows = [row for row, _ in _window_losses(model, data, block, batch, None, device)
            if len(row) == block]
    if not rows:
        raise ValueError(f"data must hold at least block + 1 = {block + 1} tokens, got {len(data)}")
    return torch.stack(rows).double().mean(0)


@torch.no_grad()
def sample(model: nn.Module, tok, prompt: str, n_tokens: int = 200, *,
           temperature: float = 1.0, top_k: int | None = None, seed: int = 0) -> str:
    """Continue `prompt` with `n_tokens` sampled tokens (seeded); returns the decoded
    prompt + continuation. `tok` encodes a string to a 1-D tensor of ids and decodes a
    list of ids (a `CharTokenizer`, whose tokens are single characters)."""
    if not prompt:
        raise ValueError("prompt must be a non-empty string")
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    model.eval()
    idx = tok.encode(prompt)[None].to(device)
    out = model.generate(idx, n_tokens, temperature=temperature, top_k=top_k, generator=g)
    return tok.decode(out[0].tolist())
