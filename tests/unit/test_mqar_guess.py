"""Recall past the window against a guess: the sweep's cells, the guess, the rule."""

import pytest

from phaselib.remedies.mqar import NEAR, mqar_baselines, mqar_test_batch, value_distance
from phaselib.remedies.mqar_guess import (GUESS_MODELS, GUESS_OUT, GUESS_RULE, GUESSES,
                                          beyond_guess, far_guess, guess)
from phaselib.remedies.mqar_sweeps import LONG_RULE, LONG_STEPS, longer


def test_the_guess_sweep_runs_new_seeds_at_the_long_budget():
    cells = guess().cells
    assert {c["model"] for c in cells} == set(GUESS_RULE["comparisons"].values())
    assert {(c["model"], c["out"]) for c in cells} == set(GUESS_MODELS.items())
    assert {c["steps"] for c in cells} == {LONG_STEPS} == {GUESS_RULE["steps"]}
    assert {c["lr"] for c in cells} == {"best"}
    # seeds no MQAR sweep had run: mqar-long's were 0..4, every other one's fewer
    assert not set(GUESS_RULE["seeds"]) & {c["seed"] for c in longer().cells}
    assert len(GUESS_RULE["seeds"]) >= 3 and len(cells) == 2 * len(GUESS_RULE["seeds"])
    assert guess().out == GUESS_OUT
    # the same models, budget and batch as mqar-long
    long_cells = {(c["model"], c["batch"], c["width"], c["T"], c["n_pairs"])
                  for c in longer().cells}
    assert {(c["model"], c["batch"], c["width"], c["T"], c["n_pairs"])
            for c in cells} <= long_cells
    assert GUESS_RULE["threshold"] == LONG_RULE["threshold"]


def test_far_guess_is_the_best_guess_on_the_far_queries_only():
    # the values of the pairs are distinct, so a guess among them scores 1 / n_pairs,
    # and the best guess is at least that
    assert far_guess(5, guesses=("pair_values",)) == pytest.approx(0.25)
    assert far_guess(5) >= 0.25 - 1e-12
    # the seen-values guess differs between all queries and the far ones (a far query
    # has seen more of the sequence), so the restriction is real
    x, y = mqar_test_batch(5)
    assert (value_distance(x, y, 4)[y >= 0] < NEAR).any()    # near queries exist
    seen_all = mqar_baselines(x, y, 4)["seen_values"]
    assert far_guess(5, guesses=("seen_values",)) != pytest.approx(seen_all, abs=1e-4)
    with pytest.raises(ValueError, match="guesses"):
        far_guess(5, guesses=("oracle",))


def _runs(far):
    return {s: {"acc_far": a} for s, a in zip(GUESS_RULE["seeds"], far)}


def test_beyond_guess_judges_each_model_against_the_guess():
    control = {0: {"acc_far": 0.99}, 1: {"acc_far": 0.97}, 2: {"acc_far": 0.98}}
    steps = GUESS_RULE["steps"]
    runs = {f"phase-window-ls-conv@{steps}": _runs([0.10, 0.08, 0.12]),   # under it
            f"phase-window-conv@{steps}": _runs([0.62, 0.66, 0.60])}      # far above
    out = beyond_guess(runs, control)
    eff, ctl, j = out["reach"]
    assert j.verdict == "refuted" and eff.mean < 0 < ctl.interval()[0]
    assert out["reach-plain"][2].verdict == "supported"
    # without its control a null is not refuted
    weak = {s: {"acc_far": 0.3} for s in range(3)}
    assert beyond_guess(runs, weak)["reach"][2].verdict == "inconclusive"
    # a model short of a seed is not judged
    runs[f"phase-window-conv@{steps}"].pop(GUESS_RULE["seeds"][-1])
    assert beyond_guess(runs, control)["reach-plain"] is None
    with pytest.raises(ValueError, match="control_runs"):
        beyond_guess(runs, {0: {"acc_far": 1.0}})
    assert set(GUESSES) == set(GUESS_RULE["guesses"])
