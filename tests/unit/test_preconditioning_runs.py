"""Tests for phaselib.preconditioning_runs: one trained cell of F7 end to end, and the
sweep."""

from phaselib.preconditioning_runs import run_cell, sweep


def test_trained_model_uses_the_tag(one_thread):
    res = run_cell(0, 1, "input", steps=150, T=8)
    assert len(res["probe"]) == 2 and len(res["share"]) == 2
    # Without the tag no model can beat 1 / n_tags = 0.25 on this task.
    assert res["acc"] > 0.6
    assert res["probe"][0] > 0.95  # the tag is in x_0 by construction
    # The answer needs the previous token, which x_0 at t does not hold; the top does.
    assert res["probe_answer"][-1] > 0.3 > res["probe_answer"][0]  # chance: 1/16


def test_sweep_cells_cover_seeds_depths_variants():
    spec = sweep(seeds=(0, 1))
    assert spec.out == "book/part2/results/f7.json"
    assert len(spec.cells) == 2 * 3 * 3
    assert {(c["depth"], c["variant"]) for c in spec.cells} >= {(8, "slots"), (2, "input")}
