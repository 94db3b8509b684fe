"""F9 to the held-out minimum: the re-spelling, the cut-context accuracy, one run."""

import math

import pytest
import torch
from torch import nn

from phaselib.erosion_minimum import (ARMS, MINIMUM_RULE, cut_context_accuracy,
                                      cut_context_loss, respell, run_minimum, sweep)


def test_respell_moves_vowels_inside_words_only():
    assert respell("banana Apple idea, Ou!") == "benene Appli idie, Oa!"
    assert respell("a i") == "a i"                       # first letters are kept
    assert respell(respell(respell(respell(respell("education"))))) == "education"
    with pytest.raises(TypeError, match="text must be a str"):
        respell(b"abc")


class NextId(nn.Module):
    """Predicts id + 1 from the last input id; records the context lengths it saw."""

    def __init__(self, V):
        super().__init__()
        self.V, self.w, self.seen = V, nn.Parameter(torch.zeros(1)), []

    def forward(self, x):
        self.seen.append(x.shape[1])
        return torch.nn.functional.one_hot((x + 1) % self.V, self.V).float(), None


def test_cut_context_accuracy_scores_in_word_positions_from_the_last_cut_ids():
    letters = torch.tensor([True, True, True, True, False])     # id 4 is a space
    ids = torch.tensor([0, 1, 2, 4, 0, 3, 1, 2, 3, 4, 4])
    m = NextId(5)
    hits = cut_context_accuracy(m, ids, letters, cut=2)
    # in-word pairs from position 1 on: (1,2) hit, (0,3) miss, (3,1) miss, (1,2) hit,
    # (2,3) hit; pairs with the space are not scored
    assert hits.tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]
    assert set(m.seen) == {2}
    with pytest.raises(ValueError, match="at least cut"):
        cut_context_accuracy(m, ids[:2], letters, cut=2)
    with pytest.raises(TypeError, match="1-D long"):
        cut_context_accuracy(m, ids.float(), letters, cut=2)


def test_cut_context_loss_averages_every_prediction_from_the_last_cut_ids():
    ids = torch.tensor([0, 1, 2, 4, 0, 3])
    m = NextId(5)
    hit, miss = math.log(math.e + 4) - 1, math.log(math.e + 4)
    # from position 1: (1->2) hit, (2->4) miss, (4->0) hit, (0->3) miss
    assert cut_context_loss(m, ids, cut=2) == pytest.approx((2 * hit + 2 * miss) / 4)
    assert set(m.seen) == {2}
    with pytest.raises(ValueError, match="at least cut"):
        cut_context_loss(m, ids[:2], cut=2)


def test_both_arms_run_and_report_the_minimum():
    out = {a: run_minimum(0, a, steps=40, eval_every=20, small_chars=4000,
                          held_chars=1024) for a in ARMS}
    for a, r in out.items():
        assert r["step"] == [0, 20, 40] and len(r["loss"]) == 3
        assert math.isnan(r["cut_paired_se"][0]) and r["cut_paired_se"][1] > 0
        assert r["loss"][-1] < r["loss"][0]
        assert r["rise"] == pytest.approx(r["loss"][-1] - r["min_loss"])
        assert r["cut_loss"][-1] > 0 and r["plain_loss"][-1] > 0
    assert out["natural"]["loss"] == out["natural"]["plain_loss"]
    assert out["planted"]["loss"][-1] != out["planted"]["plain_loss"][-1]
    assert out["planted"]["switch_step"] == 20 and out["natural"]["switch_step"] is None
    # the first half of both arms trains on the same batches from the same start
    assert out["planted"]["cut_acc"][:2] == out["natural"]["cut_acc"][:2]
    with pytest.raises(ValueError, match="arm must be one of"):
        run_minimum(0, "other")


def test_the_sweep_runs_both_arms_for_every_seed_under_a_registered_rule():
    spec = sweep(seeds=(0, 1))
    assert sorted((c["seed"], c["arm"]) for c in spec.cells) == [
        (0, "natural"), (0, "planted"), (1, "natural"), (1, "planted")]
    assert MINIMUM_RULE["control"] == "planted" and MINIMUM_RULE["threshold"] > 0


def _row(seed, arm, erosion, rise=0.3, gain=0.4):
    return {"seed": seed, "arm": arm, "erosion": erosion, "rise": rise, "min_step": 100,
            "step": [0, 100, 200], "cut_loss": [4.0, 2.0 + gain, 2.5],
            "plain_loss": [4.0, 2.0, 2.3]}


def test_judge_minimum_applies_the_rule_and_both_conditions():
    from phaselib.claims.rule import Rule
    from phaselib.erosion_minimum import judge_minimum, long_gain

    rule = Rule(0.02)
    assert long_gain(_row(0, "natural", 0.0, gain=0.4)) == pytest.approx(0.4)
    rows = [_row(s, "natural", e) for s, e in enumerate((0.005, 0.008, 0.006))]
    rows += [_row(s, "planted", e) for s, e in enumerate((0.25, 0.24, 0.26))]
    j, read = judge_minimum(rows, rule)
    assert j.verdict == "refuted" and read["past_minimum"] and read["learns_beyond"]
    # a natural seed that never went past its minimum: inconclusive, and said why
    j2, read2 = judge_minimum([dict(r, rise=0.0) if r["seed"] == 1 else r
                               for r in rows], rule)
    assert j2.verdict == "inconclusive" and "not trained past it" in j2.reason
    assert not read2["past_minimum"]
    # a model that learns nothing beyond the last characters: inconclusive too
    flat = [dict(r, cut_loss=[4.0, 2.01, 2.5]) if r["arm"] == "natural" else r
            for r in rows]
    j3, read3 = judge_minimum(flat, rule)
    assert j3.verdict == "inconclusive" and "no broader regularity" in j3.reason
    # an erosion beyond the threshold in every seed is supported, conditions met
    big = [dict(r, erosion=0.1 + 0.01 * r["seed"]) if r["arm"] == "natural" else r
           for r in rows]
    assert judge_minimum(big, rule)[0].verdict == "supported"
    with pytest.raises(ValueError, match="at least 3 seeds"):
        judge_minimum(rows[:2] + rows[3:5], rule)
