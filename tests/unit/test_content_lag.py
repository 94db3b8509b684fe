"""Tests for phaselib.content_lag: one trained cell of the lag task, and its sweep."""

import pytest

from phaselib.content_lag import LAG_DEFAULTS, LAG_KINDS, run_lag, sweep


def test_run_lag_scores_a_trained_selector_on_held_out_sequences(one_thread):
    small = dict(T=40, steps=3, n_test=16, batch=8)
    r = run_lag(0, "softmax", **small)
    assert set(r) == {"acc", "right_lag", "entropy", "cpu_seconds"}
    assert 0 <= r["acc"] <= 1 and 0 <= r["right_lag"] <= 1
    # a softmax over 5 lags: entropy between 0 and ln 5
    assert 0 < r["entropy"] <= 1.6095
    # the straight-through choice puts all its weight on one lag: no entropy
    assert run_lag(0, "hard_st", **small)["entropy"] == pytest.approx(0, abs=1e-6)
    # the same seed and settings give the same model; another seed another one
    again = run_lag(0, "softmax", **small)
    assert {k: again[k] for k in ("acc", "entropy")} == {k: r[k] for k in ("acc",
                                                                             "entropy")}
    assert run_lag(1, "softmax", **small)["entropy"] != r["entropy"]


def test_run_lag_names_an_unknown_setting():
    with pytest.raises(ValueError, match="hp must be among"):
        run_lag(0, "softmax", period=4)


def test_the_lag_sweep_has_every_kind_per_seed_at_the_chapters_settings():
    spec = sweep(seeds=(0, 1, 2))
    assert spec.name == "selection-lag"
    assert spec.out == "book/part4/results/selection_lag.json"
    assert sorted((c["kind"], c["seed"]) for c in spec.cells) == sorted(
        (k, s) for k in LAG_KINDS for s in (0, 1, 2))
    assert LAG_DEFAULTS["steps"] == 150 and LAG_DEFAULTS["T"] == 128
