"""phaselib.branching_product: the product task, the scored gate, budgets, the cell."""

import math

import pytest
import torch

from phaselib.branching import n_params
from phaselib.branching_product import (ADDED_RATES, AVERAGE_COST, REGISTERED_RATES,
                                        ScoredGate, budget_widths,
                                        evaluate_product, make_product_model,
                                        product_batch, product_targets,
                                        run_product_cell)
from phaselib.branching_runs import run_f8_cell, sweep


def test_targets_follow_the_sign_of_the_product():
    x = torch.tensor([[1.0, -1.0, 0.5, 0.5], [1.0, -1.0, -0.5, 0.5],
                      [1.0, -1.0, -0.5, -0.2], [2.0, 3.0, 0.0, 0.7]])
    assert product_targets(x)[:, 0].tolist() == [1.0, -1.0, 1.0, 3.0]
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        product_targets(torch.zeros(3, 3))


def test_near_batches_lie_within_eps_of_an_axis_and_the_average_costs_a_sixth():
    x, y = product_batch(20000, torch.Generator().manual_seed(0), near=0.01)
    assert (x[:, 2:].abs().min(1).values < 0.01).all()
    assert torch.equal(y, product_targets(x))
    x, y = product_batch(200000, torch.Generator().manual_seed(1))
    cost = ((y[:, 0] - x[:, :2].mean(1)) ** 2).mean().item()
    assert abs(cost - AVERAGE_COST) < 0.003
    with pytest.raises(ValueError, match="near"):
        product_batch(4, near=0.0)


def test_a_scored_gate_can_represent_the_condition_and_a_linear_one_cannot():
    # |s1 + s2| - |s1 - s2| has the sign of s1 s2: two ReLU layers can compute it
    g = ScoredGate(4, scorer_width=4)
    w1 = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    with torch.no_grad():
        g.score[0].weight.copy_(w1)
        g.score[0].bias.zero_()
        g.score[2].weight.copy_(torch.eye(4))
        g.score[2].bias.zero_()
        g.score[4].weight.copy_(torch.tensor([[1.0, 1.0, -1.0, -1.0]]))
        g.score[4].bias.zero_()
    s = torch.rand(1000, 2) * 2 - 1
    z = g.score(s)[:, 0]
    assert ((z > 0) == (s[:, 0] * s[:, 1] > 0)).all()
    assert isinstance(ScoredGate(4, scorer_width=0).score, torch.nn.Linear)
    with pytest.raises(ValueError, match="scorer_width"):
        ScoredGate(4, scorer_width=-1)


def test_budget_widths_stay_within_the_mlps_budget_and_are_the_largest():
    widths = budget_widths(32)
    budget = n_params(make_product_model("mlp", 32))
    for kind, w in widths.items():
        assert n_params(make_product_model(kind, w)) <= budget
        if kind != "mlp":
            assert n_params(make_product_model(kind, w + 1)) > budget
    with pytest.raises(ValueError, match="kind"):
        make_product_model("router", 8)


def test_one_cell_trains_and_the_gate_beats_the_linear_control():
    gate = run_product_cell(0, "scored_gate", 8, steps=600, lr=1e-2)
    linear = run_product_cell(0, "linear_gate", 8, steps=600, lr=1e-2)
    assert set(gate["mse"]) == {"1.0", "0.3", "0.1", "0.03", "0.01"}
    # the linear score cannot place the switch on two axes: near the average's cost
    assert linear["mse"]["1.0"] > 0.6 * AVERAGE_COST
    assert gate["mse"]["1.0"] < 0.5 * linear["mse"]["1.0"]
    assert math.isfinite(gate["val_mse"]) and gate["params"] == n_params(
        make_product_model("scored_gate", 8))
    assert run_f8_cell(task="product", seed=0, kind="scored_gate", width=8, steps=600,
                       lr=1e-2)["mse"] == gate["mse"]
    with pytest.raises(ValueError, match="task"):
        run_f8_cell(task="xor", seed=0)


def test_the_sweep_holds_every_product_model_rate_and_length():
    cells = [c for c in sweep(seeds=(0,), product_seeds=(0, 1)).cells
             if c.get("task") == "product"]
    assert len(cells) == 2 * 2 * 3 * 7
    assert {c["kind"] for c in cells} == {"mlp", "scored_gate", "linear_gate"}
    assert {c["lr"] for c in cells} == {1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0}
    # The registered rates' cells come first, as they were before the grid grew, and
    # the rates added past its top lie above every registered one.
    assert {c["lr"] for c in cells[:2 * 2 * 3 * 3]} == set(REGISTERED_RATES)
    assert min(ADDED_RATES) > max(REGISTERED_RATES)


def test_the_product_task_runs_ten_seeds():
    cells = [c for c in sweep(seeds=(0,)).cells if c.get("task") == "product"]
    assert sorted({c["seed"] for c in cells}) == list(range(10))
    assert len(cells) == 10 * 2 * 3 * 7


def test_evaluate_product_scores_the_exact_rule_at_zero():
    class Exact(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, y=None):
            return product_targets(x) + 0 * self.p, None

    r = evaluate_product(Exact())
    assert max(r["mse"].values()) == 0.0 and r["transition"] < 2 * r["grid_step"]
    assert r["centre"] < r["grid_step"]


def test_the_choice_readout_tells_a_right_choice_a_wrong_one_and_a_blend():
    from phaselib.branching import choice_readout
    a = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.1])
    b = torch.tensor([-1.0, -1.0, -1.0, -1.0, 0.0])          # the last: |a - b| < 0.5
    a_chosen = torch.tensor([True, True, False, True, True])
    pred = torch.tensor([0.9, 0.1, 0.8, -0.9, 5.0])           # right, blend, wrong, wrong
    r = choice_readout(pred, a, b, a_chosen)
    assert r == {"right": 0.5, "blend": 0.25, "n": 4}
    with pytest.raises(ValueError, match="one value per point"):
        choice_readout(pred[:3], a, b, a_chosen)
    with pytest.raises(ValueError, match="min_gap"):
        choice_readout(pred, a, b, a_chosen, min_gap=3.0)


def test_the_average_reads_as_a_blend_and_the_exact_rule_as_a_choice():
    x, y = product_batch(4096, torch.Generator().manual_seed(3), near=0.01)
    from phaselib.branching import choice_readout
    chosen = x[:, 2] * x[:, 3] > 0
    avg = choice_readout(x[:, :2].mean(1), x[:, 0], x[:, 1], chosen)
    exact = choice_readout(y, x[:, 0], x[:, 1], chosen)
    assert avg["blend"] == 1.0 and exact["right"] == 1.0 and exact["blend"] == 0.0
