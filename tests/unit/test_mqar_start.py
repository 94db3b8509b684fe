"""The LayerScale gain started smaller: the sweep's cells and the rule."""

import pytest
import torch

from phaselib.remedies.mqar import LAYER_SCALE, LRS, PHASE_MODELS, build_mqar_model
from phaselib.remedies.mqar_start import START_MODELS, START_OUT, START_RULE, start
from phaselib.remedies.mqar_sweeps import (ABLATION_MODELS, ABLATION_OUT, ABLATION_RULE,
                                          EDGE_RATES, RECALL_PHASE_MODELS, ablation,
                                          edges)
from phaselib.remedies.recall import ablation as judge_ablation


def test_the_start_sweep_repeats_the_ablation_with_only_the_start_changed():
    seeds = tuple(range(START_RULE["seeds"]))
    cells = [c for c in start().cells if c["model"] in START_MODELS]
    abl = [c for c in ablation(seeds).cells if c["model"] == "phase-window-ls-conv"]

    def rest(c):
        return {k: v for k, v in c.items() if k not in ("model", "out")}
    assert [rest(c) for c in cells] == [rest(c) for c in abl]
    assert {c["seed"] for c in cells} == set(seeds) and len(seeds) == 5
    assert sorted(c["lr"] for c in cells if c["seed"] == 0) == sorted(LRS)
    assert {c["out"] for c in cells if c["lr"] == "best"} == {START_OUT}


def test_the_start_sweep_runs_the_ablations_arm_only_at_the_seeds_it_lacks():
    """The amendment: seeds 3 and 4 of "start"'s other arm, exactly as the ablation's
    own sweep would run them (its rate chosen in its own file), after the rest."""
    cells = start().cells
    other = START_RULE["comparisons"]["start"][1]
    added = [c for c in cells if c["model"] != START_MODELS[0]]
    assert added == cells[-len(added):] and {c["model"] for c in added} == {other}
    assert [c["seed"] for c in added] == [3, 4]
    wanted = [c for c in ablation(range(5)).cells
              if c["model"] == other and c["seed"] in (3, 4)]
    assert added == wanted
    assert {c["out"] for c in added} == {ABLATION_OUT} and ABLATION_OUT != START_OUT
    assert START_RULE["threshold"] == ABLATION_RULE["threshold"]
    small = dict(PHASE_MODELS["phase-window-ls-small-conv"])
    ls = dict(PHASE_MODELS["phase-window-ls-conv"])
    assert small.pop("layer_scale") == LAYER_SCALE / 10 and ls.pop("layer_scale")
    assert small == ls                         # the start is the only difference


def test_the_edges_check_takes_the_smaller_start_past_the_grid_after_the_others():
    cells = edges().cells
    first = RECALL_PHASE_MODELS + ABLATION_MODELS
    n = len(first) * len(EDGE_RATES)
    assert {c["model"] for c in cells[:n]} == set(first)
    added = [c for c in cells[n:] if c["model"] in START_MODELS]
    assert added == cells[n:n + len(added)]            # right after the first models
    assert sorted(c["lr"] for c in added) == sorted(EDGE_RATES)
    # Then the table's rows at an edge of their grid, each one step past that edge
    # only: below it for a best at the bottom of LRS, above it for one at the top.
    from phaselib.remedies.mqar_sweeps import RECALL_EDGE
    rows = cells[n + len(added):]
    assert {c["model"]: c["lr"] for c in rows} == RECALL_EDGE and len(rows) == 3
    assert all(lr in EDGE_RATES for lr in RECALL_EDGE.values())
    assert max(LRS) < max(EDGE_RATES) and min(EDGE_RATES) < min(LRS)
    same = [k for k in cells[0] if k not in ("model", "lr")]
    assert all(c[k] == cells[0][k] for c in added for k in same)


def test_the_smaller_start_is_a_tenth_of_every_gain():
    torch.manual_seed(0)
    small = dict(build_mqar_model("phase-window-ls-small-conv", 32, 64)
                 .named_parameters())
    big = dict(build_mqar_model("phase-window-ls-conv", 32, 64).named_parameters())
    gains = [n for n in small if "gain_" in n]
    assert len(gains) == 4 and gains == [n for n in big if "gain_" in n]
    for n in gains:
        assert torch.allclose(10 * small[n].detach(), big[n].detach(), rtol=1e-6)
        assert float(big[n].detach()[0]) == pytest.approx(LAYER_SCALE)


class _Cell:
    """A finished sweep cell as `load_sweep(...).cells()` gives it."""
    dirty = False

    def __init__(self, model, seed, lr, near):
        self.params = {"model": model, "seed": seed, "lr": lr if seed == 0 else "best"}
        self.result = {"acc_near": near, "acc_far": 0.0, "val_acc": near, "lr": lr}


def _cells(model, near):
    """Seed 0 at every rate of LRS (the middle one best), seeds 1, 2 at that rate."""
    best = LRS[1]
    out = [_Cell(model, 0, lr, near[0] if lr == best else near[0] / 4) for lr in LRS]
    return out + [_Cell(model, s, best, a) for s, a in enumerate(near) if s]


def test_the_rule_judges_the_smaller_start_beside_the_ablation():
    rec = (_cells("window-only-conv", [0.71, 0.70, 0.72])
           + _cells("phase-window-conv", [0.22, 0.20, 0.24]))
    abl = _cells("phase-window-ls-conv", [0.60, 0.62, 0.58])
    same = _cells("phase-window-ls-small-conv", [0.61, 0.60, 0.59])
    out = judge_ablation([], rec, abl + same, START_RULE)
    assert out["start"][2].verdict == "refuted"          # no better than the ablation's
    assert out["gain-small"][2].verdict == "supported"   # and still gives the lookup
    better = _cells("phase-window-ls-small-conv", [0.80, 0.79, 0.81])
    assert judge_ablation([], rec, abl + better, START_RULE)["start"][2].verdict == (
        "supported")
    lost = _cells("phase-window-ls-small-conv", [0.23, 0.21, 0.22])
    assert judge_ablation([], rec, abl + lost, START_RULE)["gain-small"][2].verdict == (
        "refuted")
    # without the small start's runs nothing is judged
    assert judge_ablation([], rec, abl, START_RULE)["start"] is None


def test_start_pairs_five_seeds_where_both_arms_ran_them_and_the_rest_keep_three():
    rec = (_cells("window-only-conv", [0.71, 0.70, 0.72])
           + _cells("phase-window-conv", [0.22, 0.20, 0.24]))
    abl = _cells("phase-window-ls-conv", [0.60, 0.62, 0.58])
    more = [_Cell("phase-window-ls-conv", s, LRS[1], a) for s, a in ((3, 0.2), (4, 0.3))]
    small = _cells("phase-window-ls-small-conv", [0.61, 0.60, 0.59, 0.70, 0.69])
    out = judge_ablation([], rec, abl + more + small, START_RULE)
    assert out["start"][0].n == 5 and out["gain-small"][0].n == 3
    assert out["start"][1].n == out["gain-small"][1].n == 3
    # the two added seeds move the effect: seeds 3 and 4 are read, not dropped
    assert out["start"][0].mean == pytest.approx((0.01 - 0.02 + 0.01 + 0.5 + 0.39) / 5)
