"""Tests for phaselib.branching_runs: one trained cell of F8 end to end, and the sweep."""

from phaselib.branching import KINDS, MLP, expert_width_for_budget, n_params
import math

import pytest

from phaselib.branching_runs import (SWITCH_RATES, SWITCH_RULES, SWITCH_SEEDS, VARIANTS,
                                     cell_params, find_stored, run_cell, stored_or_run,
                                     sweep, sweep_switch)
from phaselib.sweep import SweepResults


def test_run_cell_learns_the_task_and_mlp_blends(one_thread):
    r = run_cell(0, "mlp", 16, steps=300)
    assert r["params"] == 353    # 3*16 + 16 + 16*16 + 16 + 16*1 + 1, counted from the shapes
    assert r["mse"]["1.0"] < 0.05                  # far better than predicting 0 (1/3)
    assert r["transition"] > 10 * r["grid_step"]   # a continuous rise, not a step
    assert r["slope_bound"] > 0.8 * 0.5 / r["transition"]   # |a - b| >= 0.5
    assert r["mse"]["0.01"] > r["mse"]["1.0"]      # the error sits at the boundary
    assert set(KINDS) == {"mlp", "soft_gate", "hard_gate", "top1_router",
                          "switch_router"}


def test_the_f8_sweep_has_every_model_of_the_chapter_per_seed():
    spec = sweep(seeds=(0, 1), product_seeds=())
    assert spec.name == "f8" and spec.out == "book/part2/results/f8.json"
    budget = n_params(MLP(32))
    # Against training steps: MLP widths 16 and 64 x 4 budgets, the factored gate x 3.
    long = [c for c in spec.cells if c["steps"] != 2000]
    assert len(long) == 2 * (2 * 3 + 2)
    # At the chapter's 2000 steps: MLPs 16, 32, 64, the five variants, the margin MLP.
    at = [c for c in spec.cells if c["steps"] == 2000]
    assert len(at) == 2 * (3 + len(VARIANTS) + 1) and len(spec.cells) == 2 * 17
    for s in (0, 1):
        for w in (16, 32, 64):
            assert cell_params(s, "mlp", w, 2000) in at
        for kind, fac in VARIANTS:
            w = expert_width_for_budget(budget, kind, factored=fac)
            assert cell_params(s, kind, w, 2000, factored=fac) in at
        assert {"seed": s, "kind": "mlp", "width": 32, "steps": 2000, "margin": 0.1} in at
    keys = [tuple(sorted(c.items())) for c in spec.cells]
    assert len(set(keys)) == len(keys)            # no cell twice


def _results(cells):
    return SweepResults(path=None, doc={"cells": cells})


def test_find_stored_matches_every_parameter_and_reads_null_as_inf():
    p = cell_params(0, "hard_gate", 9, 500, factored=True)
    sw = _results([{"params": p, "status": "done", "result": {"transition": None}},
                   {"params": cell_params(0, "hard_gate", 9, 500), "status": "done",
                    "result": {"transition": 0.5}}])
    assert math.isinf(find_stored(sw, 0, "hard_gate", 9, steps=500, factored=True)
                      ["transition"])
    assert find_stored(sw, 0, "hard_gate", 9, steps=500)["transition"] == 0.5
    assert find_stored(sw, 1, "hard_gate", 9, steps=500) is None        # other seed
    assert find_stored(sw, 0, "hard_gate", 9, steps=500, lr=1e-3) is None  # other rate


def test_stored_or_run_trains_what_the_sweep_lacks(one_thread):
    stored = {"transition": 0.123}
    sw = _results([{"params": cell_params(0, "mlp", 8, 20), "status": "done",
                    "result": stored}])
    assert stored_or_run(sw, 0, "mlp", 8, steps=20) == stored
    trained = stored_or_run(sw, 0, "mlp", 8, steps=20, batch=64)
    assert trained == run_cell(0, "mlp", 8, steps=20, batch=64)
    assert trained["transition"] != 0.123


@pytest.mark.parametrize("fac", [False, True])
def test_a_gate_records_its_weight_on_s(one_thread, fac):
    r, model = run_cell(0, "hard_gate", 4, steps=5, factored=fac, return_model=True)
    w = model.gate.weight.detach()[0]
    assert r["gate_s_share"] == pytest.approx(abs(w[2].item()) / w.norm().item())
    assert 0 <= r["gate_s_share"] <= 1 and "gate_s_share" not in run_cell(0, "mlp", 4,
                                                                          steps=5)


def test_run_cell_with_a_margin_scores_next_to_the_margin(one_thread):
    r = run_cell(0, "mlp", 16, steps=50, margin=0.2)
    assert 0 <= r["mse_edge"] < 1 and "mse_edge" not in run_cell(0, "mlp", 16, steps=5)


def test_the_switch_sweep_runs_every_seed_at_every_rate_for_both_expert_kinds():
    cells = sweep_switch().cells
    assert len(SWITCH_RATES) >= 3
    # The grid grew by one step past the registered top (fixed before those runs).
    from phaselib.branching_runs import SWITCH_ADDED_RATES, SWITCH_REGISTERED_RATES
    assert SWITCH_RATES[:len(SWITCH_REGISTERED_RATES)] == SWITCH_REGISTERED_RATES
    assert SWITCH_ADDED_RATES == (3e-2,)
    from phaselib.branching_runs import SWITCH_EDGE_RATE
    edge = [c for c in cells if c["lr"] == SWITCH_EDGE_RATE]
    assert {(c["seed"], c["factored"]) for c in edge} == {(s, False) for s in SWITCH_SEEDS}
    assert SWITCH_EDGE_RATE == 0.09 and len(cells) == 2 * len(SWITCH_SEEDS) * len(
        SWITCH_RATES) + len(SWITCH_SEEDS)
    assert {(c["seed"], c["factored"], c["lr"]) for c in cells if c["lr"] in SWITCH_RATES
            } == {(s, f, lr) for s in SWITCH_SEEDS for f in (False, True)
                  for lr in SWITCH_RATES}
    # Its parts are judged like the straight-through router's (same unit and threshold).
    from phaselib.claims import load_claims
    old = load_claims()["f8-moe-soft-gate"].rules["experts factored"]
    for rule in SWITCH_RULES["f8-moe-soft-gate"].values():
        assert (rule["unit"], rule["threshold"], rule["direction"]) == (
            old["unit"], old["threshold"], old["direction"])


def test_a_switch_router_cell_records_the_weight_on_its_chosen_expert(one_thread):
    r = run_cell(0, "switch_router", 4, steps=30, factored=True)
    assert r["one_expert_share"] == 1.0 and 1 <= r["experts_used"] <= 4
    assert 0.25 <= r["p_chosen"] < 1.0
    # The straight-through router of the same seed: one-hot, so no weight to record,
    # and an output that is not the Switch router's.
    t = run_cell(0, "top1_router", 4, steps=30, factored=True)
    assert "p_chosen" not in t and t["mse"] != r["mse"]
