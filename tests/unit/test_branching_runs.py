"""Tests for phaselib.branching_runs: one trained cell of F8 end to end, and the sweep."""

from phaselib.branching import KINDS, MLP, expert_width_for_budget, n_params
from phaselib.branching_runs import run_cell, sweep


def test_run_cell_learns_the_task_and_mlp_blends(one_thread):
    r = run_cell(0, "mlp", 16, steps=300)
    assert r["params"] == 353    # 3*16 + 16 + 16*16 + 16 + 16*1 + 1, counted from the shapes
    assert r["mse"]["1.0"] < 0.05                  # far better than predicting 0 (1/3)
    assert r["transition"] > 10 * r["grid_step"]   # a continuous rise, not a step
    assert r["slope_bound"] > 0.8 * 0.5 / r["transition"]   # |a - b| >= 0.5
    assert r["mse"]["0.01"] > r["mse"]["1.0"]      # the error sits at the boundary
    assert set(KINDS) == {"mlp", "soft_gate", "hard_gate", "top1_router"}


def test_the_f8_sweep_has_every_mlp_and_factored_gate_cell_per_seed():
    spec = sweep(seeds=(0, 1))
    assert spec.name == "f8" and spec.out == "book/part2/results/f8.json"
    mlp = [c for c in spec.cells if c["kind"] == "mlp"]
    gate = [c for c in spec.cells if c["kind"] == "hard_gate"]
    assert len(mlp) == 2 * 2 * 4 and len(gate) == 2 * 3 and len(spec.cells) == 22
    w = expert_width_for_budget(n_params(MLP(32)), "hard_gate", factored=True)
    assert all(c["width"] == w and c["factored"] for c in gate)


def test_run_cell_with_a_margin_scores_next_to_the_margin(one_thread):
    r = run_cell(0, "mlp", 16, steps=50, margin=0.2)
    assert 0 <= r["mse_edge"] < 1 and "mse_edge" not in run_cell(0, "mlp", 16, steps=5)
