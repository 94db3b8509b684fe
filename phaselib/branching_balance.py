"""F8's Switch-style router with Switch Transformers' load-balancing loss: does a router
that learns to route on the condition still blend? Sweep `f8-balance`.

Book: Part II, "F8 MLPs are continuous decoders", section "With a load-balancing loss".
Without that loss (sweep `f8-switch`), the Switch-style router sent every input to one
expert in most seeds with free experts and chose as a coin next to the boundary with
factored ones, so its blended output said nothing about a router that routes. Here the
same router and budget train with the loss Switch Transformers add,
BALANCE * n_experts * sum_i f_i P_i (`SwitchRouter.balance_loss`), and each run also
reports how far its choice follows the condition (`route_purity`). The straight-through
top-1 router with factored experts, which switches within a grid step at the chapter's
rate, is the positive control for that measure.
"""

from __future__ import annotations

import torch

from .branching import (MLP, expert_width_for_budget, n_params, route_purity,
                        select_batch)
from .branching_runs import (LR, SWITCH_EDGE_RATE, SWITCH_RATES, run_cell,
                             switch_val_mse)

__all__ = ["BALANCE", "BALANCE_SEEDS", "BALANCE_RATES", "ROUTERS", "PURITY_SEED",
           "BALANCE_OUT", "BALANCE_RULES", "run_balance_cell", "sweep_balance"]

# Registered 2026-12-08 (stop 55), before any of its cells ran. The record's "what would
# change the verdict" names a Switch-style router that learns to route on the condition
# (with a load-balancing loss), whose output then switches within two grid steps. The
# Switch router of f8-switch on the same budget, with Switch Transformers' loss weight,
# free and factored experts, five seeds at every rate of BALANCE_RATES (f8-switch's grid
# and the step its free arm took past it); each arm is read at the rate whose validation
# error averaged over the seeds is lowest, and if that rate lies at an end of the grid
# the chapter says so (no further step). Control for the purity parts' nulls: the
# straight-through top-1 router with factored experts, same seeds, at the chapter's
# rate; for the width parts' nulls, the budget MLP's band, as for f8-switch's parts.
BALANCE = 0.01
BALANCE_SEEDS = (0, 1, 2, 3, 4)
BALANCE_RATES = SWITCH_RATES + (SWITCH_EDGE_RATE,)
ROUTERS = ("switch", "top1")      # "top1": the control, straight-through, no balance
PURITY_SEED = 7                   # the points on which run_cell reads a router's choice
BALANCE_OUT = "book/part2/results/f8_balance.json"
_WIDTH = ("log10 of the load-balanced Switch-style router's transition width in grid "
          "steps, {experts}, at the rate of lowest validation error averaged over the "
          "seeds")
_PURITY = ("share of uniform test inputs whose expert's majority side of the boundary "
           "is their own (route purity) for the load-balanced Switch-style router, "
           "{experts}, at the same rate")
_FREE, _FACTORED = "experts reading all of the input", "experts reading only the values"
BALANCE_RULES = {"f8-moe-soft-gate": {
    "Switch with load balancing, experts see the condition": {
        "effect": _WIDTH.format(experts=_FREE),
        "unit": "decades", "threshold": 0.301, "direction": 1},
    "Switch with load balancing, experts factored": {
        "effect": _WIDTH.format(experts=_FACTORED),
        "unit": "decades", "threshold": 0.301, "direction": 1},
    "routing is learned, experts see the condition": {
        "effect": _PURITY.format(experts=_FREE),
        "unit": "of the inputs", "threshold": 0.9, "direction": 1},
    "routing is learned, experts factored": {
        "effect": _PURITY.format(experts=_FACTORED),
        "unit": "of the inputs", "threshold": 0.9, "direction": 1},
}}


def run_balance_cell(seed: int, router: str, factored: bool, lr: float,
                     return_model: bool = False, steps: int = 2000):
    """One cell of `f8-balance`: router "switch" (the Switch-style router with the
    load-balancing loss at weight BALANCE) or "top1" (the straight-through top-1 router,
    no such loss) on the width-32 MLP's budget, trained and measured by `run_cell`, with
    "val_mse" (uniform points of SWITCH_VAL_SEED, which chooses the rate),
    "route_purity" and "load" (each expert's share of the inputs, largest first), both
    on the points of PURITY_SEED; (dict, model) with return_model. `steps`: the
    sweep's cells train the chapter's 2000 (fewer for a quick check)."""
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {ROUTERS}, got {router!r}")
    kind = "switch_router" if router == "switch" else "top1_router"
    balance = BALANCE if router == "switch" else 0.0
    width = expert_width_for_budget(n_params(MLP(32)), kind, factored=factored)
    res, model = run_cell(seed, kind, width, steps=steps, lr=lr, factored=factored,
                          balance=balance, return_model=True)
    res["val_mse"] = switch_val_mse(model)
    x, _ = select_batch(4096, torch.Generator().manual_seed(PURITY_SEED))
    c = model.choice(x)
    res["route_purity"] = route_purity(c, x[:, 2])
    res["load"] = sorted(c.mean(0).tolist(), reverse=True)
    res.update(width=width, balance=balance)
    return (res, model) if return_model else res


def sweep_balance(seeds=BALANCE_SEEDS):
    """Sweep `f8-balance` (registered with BALANCE_RULES before its runs; see their
    comment): the load-balanced Switch-style router, free and factored experts, every
    seed at every rate of BALANCE_RATES, at the chapter's 2000 steps; and the control,
    the factored straight-through top-1 router at the chapter's rate."""
    from .sweep import SweepSpec

    cells = [{"seed": s, "router": "switch", "factored": fac, "lr": lr}
             for fac in (False, True) for lr in BALANCE_RATES for s in seeds]
    cells += [{"seed": s, "router": "top1", "factored": True, "lr": LR} for s in seeds]
    return SweepSpec(name="f8-balance", out=BALANCE_OUT, cells=cells,
                     run=run_balance_cell,
                     description="F8: the Switch-style router with Switch Transformers' "
                                 "load-balancing loss, free and factored experts, every "
                                 "seed at every rate; control: the factored "
                                 "straight-through router")
