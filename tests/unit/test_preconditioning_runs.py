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
    assert sorted({c["seed"] for c in sweep().cells}) == [0, 1, 2, 3, 4]   # the default
    assert {(c["depth"], c["variant"]) for c in spec.cells} >= {(8, "slots"), (2, "input")}


def test_erasure_of_the_tag_costs_accuracy_and_a_sham_erasure_does_not(one_thread):
    import pytest

    from phaselib.preconditioning import measure_tag
    from phaselib.preconditioning_runs import erased_accuracy, train_tagged

    model, perms, hist = train_tagged(0, 1, "input", steps=150, T=8)
    # run_cell is train_tagged then measure_tag: the same model, the same numbers.
    assert run_cell(0, 1, "input", steps=150, T=8)["loss"] == pytest.approx(
        measure_tag(model, perms, T=8, seed=10_000)["loss"], abs=1e-6)
    plain = erased_accuracy(model, perms, 1, T=8)           # layer = depth: no erasure
    assert plain > 0.6
    # One block: it needs the tag, so erasing it at its input drops to the blind ceiling.
    assert erased_accuracy(model, perms, 0, T=8) < 0.45
    assert erased_accuracy(model, perms, 0, sham=True, T=8) > plain - 0.05
    with pytest.raises(ValueError, match="layer must be in"):
        erased_accuracy(model, perms, 2, T=8)
