"""The F9 experiments end to end at a tiny size: what each returns, and its checks."""

import pytest

from phaselib.erosion_runs import (MEM_COPIES, MEM_FEW_COPIES, MEM_LENGTHS,
                                   MEM_LONG_ADDED_SEEDS, MEM_LONG_AT_MOST, MEM_SIZES,
                                   run_cell, run_curves, run_memorise, sweep)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_run_curves_scores_step_zero_every_evaluation_and_the_last_step():
    res = run_curves(seed=0, steps=3, eval_every=2, n_layer=1, n_embd=16, batch=4,
                     held_chars=1024)
    assert res["step"] == [0, 2, 3]
    for key in ("loss", "real_word_share", "repetition", "association", "sample"):
        assert len(res[key]) == 3, key
    assert 0 <= res["ref"]["real_word_share"] <= 1 and res["n_params"] > 0


def test_run_memorise_measures_the_passage_and_the_control():
    res = run_memorise(seed=0, n_layer=1, n_embd=16, steps=2, copies=4, batch=4)
    assert res["max_len"] == 200 - 32 and len(res["passage"]) == 200
    assert res["passage"] != res["control"]
    for key in ("passage", "control"):
        assert 0 <= res[f"{key}_len"] <= res["max_len"] and res[f"{key}_loss"] > 0


def test_run_cell_names_the_kinds_it_knows():
    with pytest.raises(ValueError, match="'curves' or 'memorise'"):
        run_cell("nothing", seed=0)


def test_the_f9_sweep_has_one_curve_and_every_memorisation_cell_per_seed():
    spec = sweep(seeds=(0, 1))
    assert sorted({c["seed"] for c in sweep().cells}) == sorted(      # the default
        {0, 1, 2, 3, 4, *MEM_LONG_ADDED_SEEDS})
    kinds = [c["kind"] for c in spec.cells]
    extra = len(MEM_LENGTHS) + len(MEM_FEW_COPIES) + len(MEM_LONG_AT_MOST)  # largest
    added = len(MEM_LONG_ADDED_SEEDS) * len(MEM_LONG_AT_MOST)    # that cell's seeds
    assert kinds.count("curves") == 2
    assert kinds.count("memorise") == 2 * (3 * 2 + extra) + added
    assert spec.out == "book/part2/results/f9.json"
    longer = [c for c in spec.cells if "passage_chars" in c]
    fewer = [c for c in longer if c["copies"] == MEM_COPIES[0]]
    assert sorted(c["passage_chars"] for c in fewer) == sorted(MEM_LENGTHS * 2)
    # The longer passage at the most copies: the positive control's copies, 4x its length.
    most = [c for c in longer if c["copies"] == MEM_COPIES[-1]]
    assert sorted(c["seed"] for c in most) == [0, 1, *MEM_LONG_ADDED_SEEDS]
    assert {c["passage_chars"] for c in most} == set(MEM_LONG_AT_MOST)
    assert len(fewer) + len(most) == len(longer)
    big = MEM_SIZES[-1]
    assert all((c["n_layer"], c["n_embd"]) == big for c in longer)
    few = [c for c in spec.cells if c.get("copies") in MEM_FEW_COPIES]
    assert len(few) == 2 * len(MEM_FEW_COPIES) and "passage_chars" not in few[0]


def test_run_curves_gives_a_paired_noise_floor_after_step_zero():
    import math

    res = run_curves(seed=0, steps=3, eval_every=2, n_layer=1, n_embd=16, batch=4,
                     held_chars=1024)
    se = res["in_word_paired_se"]
    assert math.isnan(se[0]) and all(0 <= v < 0.5 for v in se[1:])
