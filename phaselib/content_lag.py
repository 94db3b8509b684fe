"""A lag inferred from content: one trained `ContentScaleCopier` per cell, and its sweep.

Book: Part IV, "Selection, the open problem", section "A lag inferred from content".
Each sequence copies itself with a period 2**k, k drawn per sequence and announced by
nothing (`periodic_copy_batch`); the model predicts the next token from the tokens one
period back at every dyadic lag, choosing the lag from the pyramid's transport features.
`run_lag` trains one selector kind from one seed and scores it on held-out sequences;
`sweep` is `python -m phaselib.sweep selection-lag`, every kind of the chapter over
seeds, which the chapter reads (it trains one of them live and checks it against the
sweep).
"""

from __future__ import annotations

import time

import torch

from .selection import selection_entropy
from .toy_models import ContentScaleCopier, periodic_copy_batch
from .train import TrainConfig, train

__all__ = ["LAG_DEFAULTS", "LAG_KINDS", "run_lag", "sweep"]

# The chapter's settings: vocabulary, sequence length, periods 1 .. 2**(n_levels - 1),
# copy probability, training (steps of `batch` sequences at `lr`), model width, and the
# number of held-out sequences.
LAG_DEFAULTS = dict(vocab=16, T=128, n_levels=5, p_copy=0.8, steps=150, batch=32,
                    lr=3e-3, n_embd=32, n_test=192)
LAG_KINDS = ("softmax", "sparsemax", "hard_st")


def run_lag(seed: int, kind: str, *, test_seed: int = 2000, device="cpu",
            **hp) -> dict:
    """Train a ContentScaleCopier of selector `kind` (weights from `seed`, batches from
    seed + 300) with `hp` over LAG_DEFAULTS, then score it on `n_test` sequences drawn
    from `test_seed`. -> {"acc": next-token accuracy on the scored positions,
    "right_lag": share of them whose largest selection weight is on the sequence's lag,
    "entropy": mean selection entropy there (nats), "cpu_seconds"}."""
    unknown = set(hp) - set(LAG_DEFAULTS)
    if unknown:
        raise ValueError(f"hp must be among {sorted(LAG_DEFAULTS)}, got {sorted(unknown)}")
    p = {**LAG_DEFAULTS, **hp}
    t0 = time.process_time()
    x, y, k = periodic_copy_batch(p["n_test"], p["T"], p["vocab"], p["n_levels"],
                                  p["p_copy"], device=device,
                                  generator=torch.Generator().manual_seed(test_seed))
    torch.manual_seed(seed)
    model = ContentScaleCopier(p["vocab"], p["n_levels"], p["n_embd"], kind).to(device)
    gen = torch.Generator().manual_seed(seed + 300)
    train(model, lambda step: periodic_copy_batch(p["batch"], p["T"], p["vocab"],
                                                  p["n_levels"], p["p_copy"],
                                                  generator=gen, device=device)[:2],
          TrainConfig(steps=p["steps"], lr=p["lr"], progress=False))
    model.eval()
    with torch.no_grad():
        pred = model(x)[0].argmax(-1)
    scored = y >= 0
    w = model.weights[:, 2 ** p["n_levels"]:-1]                # the scored positions
    return {"acc": (pred[scored] == y[scored]).float().mean().item(),
            "right_lag": (w.argmax(-1) == k[:, None]).float().mean().item(),
            "entropy": selection_entropy(w).mean().item(),
            "cpu_seconds": time.process_time() - t0}


def sweep(seeds=(0, 1, 2)):
    """Every kind of LAG_KINDS x seed at LAG_DEFAULTS, on the test set of seed 2000."""
    from .sweep import SweepSpec

    return SweepSpec(name="selection-lag", out="book/part4/results/selection_lag.json",
                     cells=[{"seed": s, "kind": kd} for kd in LAG_KINDS for s in seeds],
                     run=run_lag,
                     description="Selection: the lag of a periodic copy chosen from the "
                                 "pyramid's features, per selector kind")
