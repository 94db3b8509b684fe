"""Tests for phaselib.branching_balance: the load-balanced Switch router's sweep and one
short cell of it."""

import pytest

from phaselib.branching import MLP, n_params
from phaselib.branching_balance import (BALANCE, BALANCE_RATES, BALANCE_RULES,
                                        BALANCE_SEEDS, run_balance_cell, sweep_balance)
from phaselib.branching_runs import LR, SWITCH_RATES, SWITCH_RULES


def test_the_balance_sweep_runs_every_seed_at_every_rate_and_the_control():
    spec = sweep_balance()
    assert spec.name == "f8-balance" and spec.out == "book/part2/results/f8_balance.json"
    sw = [c for c in spec.cells if c["router"] == "switch"]
    assert len(BALANCE_RATES) >= 3 and len(BALANCE_SEEDS) >= 5
    assert {(c["seed"], c["factored"], c["lr"]) for c in sw} == {
        (s, f, lr) for s in BALANCE_SEEDS for f in (False, True) for lr in BALANCE_RATES}
    assert len(sw) == 2 * len(BALANCE_SEEDS) * len(BALANCE_RATES)
    # f8-switch's grid and the step its free arm took past it.
    assert BALANCE_RATES[:len(SWITCH_RATES)] == SWITCH_RATES and BALANCE_RATES[-1] == 0.09
    control = [c for c in spec.cells if c["router"] == "top1"]
    assert {(c["seed"], c["factored"], c["lr"]) for c in control} == {
        (s, True, LR) for s in BALANCE_SEEDS}
    assert BALANCE == 0.01      # Switch Transformers' weight


def test_the_width_parts_are_judged_like_the_unbalanced_router():
    old = SWITCH_RULES["f8-moe-soft-gate"]["Switch scaling, experts factored"]
    parts = BALANCE_RULES["f8-moe-soft-gate"]
    widths = [r for name, r in parts.items() if name.startswith("Switch with")]
    purity = [r for name, r in parts.items() if name.startswith("routing is learned")]
    assert len(widths) == 2 and len(purity) == 2
    for r in widths:
        assert (r["unit"], r["threshold"], r["direction"]) == (
            old["unit"], old["threshold"], old["direction"])
    for r in purity:
        assert r["threshold"] == 0.9 and r["direction"] == 1


def test_a_short_balanced_cell_spreads_its_load_and_reports_its_purity(one_thread):
    r = run_balance_cell(0, "switch", True, 1e-2, steps=60)
    assert r["balance"] == BALANCE and r["params"] <= n_params(MLP(32))
    assert 0.5 <= r["route_purity"] <= 1 and r["val_mse"] > 0
    assert len(r["load"]) == 4 and sum(r["load"]) == pytest.approx(1)
    assert r["load"] == sorted(r["load"], reverse=True)
    t = run_balance_cell(0, "top1", True, LR, steps=60)
    assert t["balance"] == 0 and t["mse"] != r["mse"]
    with pytest.raises(ValueError, match="router"):
        run_balance_cell(0, "soft", True, LR, steps=5)
