"""The shared small task suite of Part III: one (remedy, task, seed) cell in seconds.

Book: Part III, "The remedies, measured". Three tasks, each trained with
`phaselib.train.train` on a `RemedyLM` whose mixer is the remedy under test:

- "mqar": multi-query associative recall (Arora et al., 2023): key-value pairs, then
  the keys again in another order; each query's target is its value.
- "copy": a span of 8 tokens, a gap of `d` random tokens, the span again; from its
  second token on, the repeated span can be predicted only by finding the first copy
  (an induction head), `d` + 8 positions back. Trained on mixed gaps, scored per gap.
- "shakespeare": the character model at a fixed budget, held-out loss in nats/char.

`run_cell(mixer, task, seed)` trains one model and returns its scores; `sweep()` is the
precomputed grid `python -m phaselib.sweep remedies`.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

from ..data import CharTokenizer, load_shakespeare, random_windows, split_text
from ..train import TrainConfig, evaluate_loss, train
from .mixers import MIXERS
from .model import RemedyConfig, RemedyLM

__all__ = ["TASKS", "GAPS", "mqar_batch", "span_copy_batch", "shakespeare_data",
           "run_cell", "sweep", "SWEEP_MIXERS", "FAITHFUL_MIXERS", "BUDGETS",
           "COPY_LONG_STEPS", "COPY_LONGER_STEPS", "COPY_RATES"]

TASKS = ("mqar", "copy", "shakespeare")
GAPS = (2, 10, 26)    # copy-to-span distances 10, 18, 34; window mixers see 12 (T/4)
# The sweep's mixers, under the names its stored cells carry ("landmark", "cluster" and
# "fmm" are the legacy names of block means, centroids and the banded FMM variant; see
# `mixers.LEGACY_NAMES`). It leaves out "softmax": it is "fused" computed without the
# kernel (same numbers to rounding, tested), at five times the time. The faithful
# mechanisms come after them (FAITHFUL_MIXERS).
SWEEP_MIXERS = ("fused", "mqa", "gqa", "window", "sinks", "landmark", "linear", "fmm",
                "cluster", "ssm")
# The defining mechanisms the simple versions lack (a referee's list): exact retrieval
# of the blocks a query picks, content routing over exact keys, a selective state space,
# a short convolution before linear attention and the diagonal state space, and
# FMMformer's far field over every key. Their cells come after the ones above.
COPY_LONG_STEPS = 1500
# The softmax on the copy, longer still, at two rates (1e-2 did not learn the copy in
# 1500 steps in a pilot on seed 100); the rate is chosen by the copy's validation loss.
COPY_LONGER_STEPS, COPY_RATES = 6000, (1e-3, 3e-3)
FAITHFUL_MIXERS = ("landmark-retrieval", "lsh", "ssm-selective", "linear-conv",
                   "ssm-conv", "fmm-all")


def _check_int(name: str, v, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")


def mqar_batch(batch: int, n_pairs: int = 4, n_keys: int = 16, n_values: int = 16, *,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-query associative recall: x, y [batch, 3 n_pairs] long.

    Tokens 0..n_keys-1 are keys, n_keys..n_keys+n_values-1 values. The first 2 n_pairs
    positions are pairs k v (distinct keys, random values; targets -1), the last n_pairs
    are the same keys shuffled, each with its value as the target.
    """
    _check_int("batch", batch, 1)
    _check_int("n_pairs", n_pairs, 1)
    _check_int("n_values", n_values, 1)
    if not isinstance(n_keys, int) or n_keys < n_pairs:
        raise ValueError(f"n_keys must be an int >= n_pairs={n_pairs}, got {n_keys!r}")
    keys = torch.rand(batch, n_keys, generator=generator).argsort(-1)[:, :n_pairs]
    vals = n_keys + torch.randint(n_values, (batch, n_pairs), generator=generator)
    order = torch.rand(batch, n_pairs, generator=generator).argsort(-1)
    ctx = torch.stack([keys, vals], -1).flatten(1)                 # k1 v1 k2 v2 ...
    x = torch.cat([ctx, keys.gather(1, order)], 1)
    y = torch.full_like(x, -1)
    y[:, 2 * n_pairs:] = vals.gather(1, order)
    return x, y


def span_copy_batch(batch: int, gap: int | tuple[int, ...], T: int = 48, vocab: int = 64,
                    span: int = 8, *, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """A span of `span` distinct tokens, `gap` random tokens, the span again: x, y [B, T].

    The span starts at a random position (random tokens before it and after the copy).
    Targets are set (others -1) at the copy's first span-1 positions: the next token
    of the span, found by matching the current token to the first copy (gap + span
    positions back). `gap` may be a tuple: each row draws one of its values.
    """
    gaps = (gap,) if isinstance(gap, int) else tuple(gap)
    for g in gaps:
        _check_int("gap", g, 0)
    _check_int("span", span, 2)
    if 2 * span + max(gaps) > T:
        raise ValueError(f"T must be >= 2 span + gap = {2 * span + max(gaps)}, got {T}")
    if vocab < span:
        raise ValueError(f"vocab must be >= span={span}, got {vocab}")
    x = torch.randint(vocab, (batch, T + 1), generator=generator)
    y = torch.full((batch, T), -1, dtype=torch.long)
    g = torch.tensor(gaps)[torch.randint(len(gaps), (batch,), generator=generator)]
    for b in range(batch):
        n = 2 * span + int(g[b])
        s = int(torch.randint(T - n + 1, (1,), generator=generator))
        tok = torch.rand(vocab, generator=generator).argsort()[:span]
        c = s + span + int(g[b])                                    # start of the copy
        x[b, s:s + span] = tok
        x[b, c:c + span] = tok
        y[b, c:c + span - 1] = tok[1:]
    return x[:, :T], y


@lru_cache(maxsize=1)
def shakespeare_data() -> tuple[CharTokenizer, torch.Tensor, torch.Tensor]:
    """(tokenizer, train ids, held-out ids) of the book's fixed split of the plays."""
    text = load_shakespeare()
    tok = CharTokenizer(text)
    tr, va = split_text(text)
    return tok, tok.encode(tr), tok.encode(va)


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        pred = model(x)[0].argmax(-1)
    m = y >= 0
    return float((pred[m] == y[m]).float().mean())


# Training budget per task: (steps, sequences per step, peak learning rate). MQAR's
# 4 answers per sequence give few targets per step: at 32 sequences and 400 steps no
# mixer left the plateau of guessing among the context's values, so it gets 128 x 2000.
BUDGETS = {"mqar": (2000, 128, 1e-3), "copy": (300, 32, 3e-3),
           "shakespeare": (200, 32, 3e-3)}


def run_cell(mixer: str, task: str, seed: int, *, steps: int | None = None,
             n_embd: int = 64, n_head: int = 4, n_layer: int = 2,
             batch: int | None = None, device: str = "cpu",
             lr: float | None = None) -> dict:
    """Train a RemedyLM with `mixer` on `task` from `seed`; return its scores.

    mqar: {"acc"} over 512 fresh sequences; copy: {"acc_gap_<d>"} for each d of GAPS
    (256 sequences each); shakespeare: {"val_loss"} (nats/char, first 20 000 held-out
    characters). Every result also has "train_loss" (last 20 steps), "seconds", "params".
    `lr` (default: the task's BUDGETS rate) sets the peak learning rate; a copy run at
    a rate of its own also reports "val_loss" on 256 fresh sequences of another seed
    (what chooses among rates, never the accuracies reported).
    """
    if mixer not in MIXERS:
        raise ValueError(f"mixer must be one of {sorted(MIXERS)}, got {mixer!r}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    _check_int("seed", seed, 0)
    t0 = time.perf_counter()
    steps = steps or BUDGETS[task][0]
    batch = batch or BUDGETS[task][1]
    rate = BUDGETS[task][2] if lr is None else lr
    if not (isinstance(rate, (int, float)) and rate > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    test = torch.Generator().manual_seed(10_000 + seed)
    if task == "mqar":
        V, T = 32, 12
        get = lambda step: mqar_batch(batch, generator=g)  # noqa: E731
    elif task == "copy":
        V, T = 64, 48
        get = lambda step: span_copy_batch(batch, GAPS, generator=g)  # noqa: E731
    else:
        tok, tr, va = shakespeare_data()
        V, T = tok.vocab_size, 64
        get = lambda step: random_windows(tr, T, batch, generator=g)  # noqa: E731
    cfg = RemedyConfig(vocab_size=V, mixer=mixer, block_size=T, n_layer=n_layer,
                       n_head=n_head, n_embd=n_embd)
    model = RemedyLM(cfg).to(device)

    def get_batch(step):
        x, y = get(step)
        return x.to(device), y.to(device)

    hist = train(model, get_batch,
                 TrainConfig(steps=steps, lr=rate, progress=False))
    out = {"train_loss": sum(hist.loss[-20:]) / len(hist.loss[-20:]),
           "params": model.num_params(), "steps": steps, "batch": batch, "lr": rate}
    model.eval()
    if task == "mqar":
        x, y = mqar_batch(512, generator=test)
        out["acc"] = _accuracy(model, x.to(device), y.to(device))
    elif task == "copy":
        for d in GAPS:
            x, y = span_copy_batch(256, d, generator=test)
            out[f"acc_gap_{d}"] = _accuracy(model, x.to(device), y.to(device))
        if lr is not None:
            x, y = span_copy_batch(256, GAPS, generator=torch.Generator().manual_seed(
                20_000 + seed))
            with torch.no_grad():
                out["val_loss"] = model(x.to(device), y.to(device))[1].item()
    else:
        out["val_loss"] = evaluate_loss(model, va[:20_000], T, device=device)
    out["seconds"] = time.perf_counter() - t0
    return out


def _sweep_cell(kind: str, seed: int, mixer: str = "", task: str = "",
                steps: int | None = None, lr: float | None = None) -> dict:
    if kind == "streaming":
        from .streaming_sinks import streaming_run
        return streaming_run(seed)
    return run_cell(mixer, task, seed, steps=steps, lr=lr)


def sweep(seeds=(0, 1, 2)):
    """Sweep `remedies`: every mixer of SWEEP_MIXERS on every task, and the StreamingLLM
    experiment, for each seed; then the FAITHFUL_MIXERS on every task and seed."""
    from ..sweep import SweepSpec

    cells = []
    for s in seeds:
        cells.append({"kind": "streaming", "seed": int(s)})
        cells += [{"kind": "task", "mixer": m, "task": t, "seed": int(s)}
                  for t in TASKS for m in SWEEP_MIXERS]
    cells += [{"kind": "task", "mixer": m, "task": t, "seed": int(s)}
              for s in seeds for t in TASKS for m in FAITHFUL_MIXERS]
    # The copy again, five times as long, for the softmax and the window: is the
    # softmax's low near-copy accuracy at 300 steps a matter of training?
    cells += [{"kind": "task", "mixer": m, "task": "copy", "seed": int(s),
               "steps": COPY_LONG_STEPS} for s in seeds for m in ("fused", "window")]
    # And the softmax alone at four times that, at each of COPY_RATES.
    cells += [{"kind": "task", "mixer": "fused", "task": "copy", "seed": int(s),
               "steps": COPY_LONGER_STEPS, "lr": r} for s in seeds for r in COPY_RATES]
    return SweepSpec(name="remedies", out="book/part3/results/remedies_quality.json",
                     cells=cells, run=_sweep_cell,
                     description="Part III: remedies x tasks x seeds, and window vs sinks")
