"""The F8 experiments: train one model on the select task and measure it; the sweep.

Book: Part II, "F8 MLPs are continuous decoders". `train_model` trains one model of
`phaselib.branching` (an MLP, a soft or hard gate, a top-1 router) on the select task;
`run_cell` trains it and measures it with `phaselib.branching.evaluate` (and, by kind,
`slope_bound` or the router's expert use). Each runs one seed; `sweep` is the
precomputed sweep `f8` (`python -m phaselib.sweep f8`).
"""

from __future__ import annotations

import numpy as np
import torch

from .branching import (MLP, evaluate, expert_width_for_budget, make_model, n_params,
                        select_batch, slope_bound)
from .train import TrainConfig, train

__all__ = ["train_model", "run_cell", "sweep"]


def train_model(seed: int, kind: str, width: int, steps: int = 2000, lr: float = 3e-3,
                batch: int = 256, depth: int = 2, n_experts: int = 4,
                factored: bool = False, device="cpu", margin: float = 0.0):
    """Train one model on the select task with phaselib.train: (model, History).
    margin > 0 trains on |s| > margin only (the margin control)."""
    torch.manual_seed(seed)
    model = make_model(kind, width, n_experts=n_experts, depth=depth,
                       factored=factored).to(device)
    gen = torch.Generator().manual_seed(seed)
    hist = train(model, lambda step: select_batch(batch, gen, device=device,
                                                  s_min=margin),
                 TrainConfig(steps=steps, lr=lr, progress=False))
    return model, hist


def run_cell(seed: int, kind: str, width: int, steps: int = 2000, lr: float = 3e-3,
             batch: int = 256, depth: int = 2, n_experts: int = 4, factored: bool = False,
             device="cpu", return_model: bool = False, margin: float = 0.0):
    """Train one model (`train_model`) and measure it (`evaluate`): a dict of results, or
    (dict, model) with return_model=True. margin > 0 trains on |s| > margin and adds
    "mse_edge", the test MSE on margin < |s| < margin + 0.01 (next to the margin)."""
    model, hist = train_model(seed, kind, width, steps, lr, batch, depth, n_experts,
                              factored, device, margin)
    res = evaluate(model)
    if margin > 0:
        x, y = select_batch(4096, torch.Generator().manual_seed(999), margin + 0.01,
                            device, s_min=margin)
        with torch.no_grad():
            res["mse_edge"] = torch.nn.functional.mse_loss(model(x)[0], y).item()
    res.update(params=n_params(model), final_loss=float(np.mean(hist.loss[-50:])))
    if kind == "mlp":
        res["slope_bound"] = slope_bound(model)
    if kind == "top1_router":
        x, _ = select_batch(4096, torch.Generator().manual_seed(7), device=device)
        w = model.weights(x)
        one = ((w == 1).sum(1) == 1) & ((w == 0).sum(1) == w.shape[1] - 1)
        res["one_expert_share"] = one.float().mean().item()
        res["experts_used"] = int((w.sum(0) > 0).sum().item())
    if return_model:
        return res, model
    return res


def sweep(seeds=(0, 1, 2)):
    """Sweep `f8`: transition width and error against training steps, longer than the
    chapter trains live: the MLP at widths 16 and 64, and the factored hard gate on the
    budget of the width-32 MLP."""
    from .sweep import SweepSpec

    gate_width = expert_width_for_budget(n_params(MLP(32)), "hard_gate", factored=True)
    cells = [{"seed": s, "kind": "mlp", "width": w, "steps": n}
             for s in seeds for w in (16, 64) for n in (500, 2000, 8000, 32000)]
    cells += [{"seed": s, "kind": "hard_gate", "width": gate_width, "steps": n,
               "factored": True} for s in seeds for n in (500, 2000, 8000)]
    return SweepSpec(name="f8", out="book/part2/results/f8.json", cells=cells,
                     run=run_cell, description="F8: transition width and error on the "
                     "select task against training steps (MLP; factored hard gate)")
