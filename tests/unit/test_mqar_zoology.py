"""Zoology's MQAR: what the generator promises, the baselines it is scored against, a
cell, and the sweep's rate selection."""

import json

import pytest
import torch

from phaselib.remedies.mqar import (LRS, MQAR_MIXERS, build_mqar_model, gap_probs,
                                    mqar_baselines, mqar_zoology_batch, run_cell,
                                    value_distance)
from phaselib.remedies.mqar_sweeps import sweep


def test_pairs_come_first_and_every_key_is_asked_once_for_its_value():
    g = torch.Generator().manual_seed(0)
    x, y = mqar_zoology_batch(20, T=64, n_pairs=4, vocab=256, generator=g)
    assert x.shape == y.shape == (20, 64) and x.dtype == torch.long
    assert ((y >= 0).sum(1) == 4).all()
    for b in range(20):
        keys, vals = x[b, 0:8:2].tolist(), x[b, 1:8:2].tolist()
        assert len(set(keys)) == 4 and len(set(vals)) == 4       # without replacement
        assert all(1 <= k < 128 for k in keys) and all(128 <= v < 256 for v in vals)
        qs = (y[b] >= 0).nonzero().flatten().tolist()
        assert all(t >= 8 and t % 2 == 0 for t in qs)            # 2 n_pairs + 2 g
        assert sorted(x[b, qs].tolist()) == sorted(keys)
        for t in qs:
            assert int(y[b, t]) == vals[keys.index(int(x[b, t]))]


def test_gaps_follow_the_power_law_most_near_some_far():
    p = gap_probs(28, 0.01)
    assert abs(float(p.sum()) - 1) < 1e-12 and (p[:-1] > p[1:]).all()
    g = torch.Generator().manual_seed(1)
    x, y = mqar_zoology_batch(2000, T=64, n_pairs=4, generator=g)
    d = value_distance(x, y, 4)[y >= 0]
    assert d.min() >= 1 and d.max() > 40                        # spread to the far end
    assert 0.4 < float((d < 16).float().mean()) < 0.8


def test_baselines_are_computed_on_the_data():
    g = torch.Generator().manual_seed(2)
    x, y = mqar_zoology_batch(400, T=64, n_pairs=4, generator=g)
    b = mqar_baselines(x, y, 4, window=16)
    assert b["pair_values"] == pytest.approx(0.25)              # distinct values
    # noise tokens in the value range dilute a guess among the values seen
    assert 0.08 < b["seen_values"] < 0.25 and 0.08 < b["most_frequent"] < 0.25
    assert b["queries"] == 1600
    assert b["within_window"] == pytest.approx(
        float((value_distance(x, y, 4)[y >= 0] < 16).float().mean()))
    # a task where the values repeat: most_frequent is then above 1 / n_pairs
    x2, y2 = x.clone(), y.clone()
    x2[:, 3] = x2[:, 1]
    y2[y2 == x[:, 3:4].expand_as(y2)] = -1     # drop the queries whose value is gone
    assert mqar_baselines(x2, y2, 4)["most_frequent"] > b["most_frequent"]


@pytest.mark.parametrize("kw, match", [({"T": 63}, "T must be even"),
                                       ({"T": 12}, "T must be an int >= 16"),
                                       ({"vocab": 8}, "vocab must be"),
                                       ({"power_a": 0}, "power_a must be")])
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        mqar_zoology_batch(2, **({"T": 64, "n_pairs": 4} | kw))


def test_every_entrant_builds_and_a_cell_scores_val_and_test():
    from phaselib.remedies.mixers import MIXERS, LEGACY_NAMES
    for m in MQAR_MIXERS:
        assert m in MIXERS or m in LEGACY_NAMES or m.startswith(("phase", "window"))
    net = build_mqar_model("phase-window", 16, 64)
    assert net(torch.zeros(2, 64, dtype=torch.long))[0].shape == (2, 64, 256)
    r = run_cell("fused", 16, 3e-3, 0, steps=3, batch=4)
    assert 0 <= r["acc"] <= 1 and 0 <= r["val_acc"] <= 1 and r["lr"] == 3e-3
    assert 0.3 < r["near_share"] < 0.9 and len(r["loss_curve"]) == 1
    with pytest.raises(ValueError, match="lr must be"):
        run_cell("fused", 16, -1.0, 0, steps=1, batch=2)
    with pytest.raises(ValueError, match="width must be"):
        build_mqar_model("fused", 18, 64)


def test_best_rate_is_read_from_the_seed_0_cells(tmp_path):
    out = tmp_path / "mqar.json"
    cells = [{"params": {"model": "fused", "width": 16, "T": 64, "n_pairs": 4,
                         "steps": 3, "lr": lr, "seed": 0},
              "result": {"val_acc": acc, "lr": lr}, "status": "done"}
             for lr, acc in zip(LRS, (0.2, 0.6, 0.6))]
    out.write_text(json.dumps({"format": "phaselib-sweep-v1", "cells": cells}))
    r = run_cell("fused", 16, "best", 1, steps=2, batch=2, out=str(out))
    assert r["lr"] == LRS[1]                       # the tie goes to the smaller rate
    with pytest.raises(RuntimeError, match="not all finished"):
        run_cell("linear", 16, "best", 1, steps=2, batch=2, out=str(out))


def test_sweep_lists_the_rate_cells_before_the_cells_that_need_them():
    spec = sweep()
    assert spec.name == "mqar"
    first_best = min(i for i, c in enumerate(spec.cells) if c["lr"] == "best")
    assert all(isinstance(c["lr"], float) for c in spec.cells[:first_best])
    per_model = {m: sum(c["model"] == m for c in spec.cells) for m in MQAR_MIXERS}
    assert set(per_model.values()) == {len(LRS) + 2}


def test_the_pilot_is_one_seed_one_rate_of_seven_entrants_that_all_build():
    from phaselib.remedies.mqar_sweeps import PILOT_MODELS, pilot
    spec = pilot()
    assert [c["model"] for c in spec.cells if c["steps"] == 1500] == list(PILOT_MODELS)
    assert sorted(c["model"] for c in spec.cells if c["steps"] == 6000) == [
        "fused", "linear-conv"]
    assert {(c["seed"], c["lr"], c["width"]) for c in spec.cells} == {(0, 3e-3, 64)}
    for m in PILOT_MODELS:
        assert build_mqar_model(m, 16, 64) is not None


def test_the_probe_runs_every_rate_of_six_entrants_and_records_the_curve():
    from phaselib.remedies.mqar_sweeps import PROBE_MODELS, probe
    spec = probe()
    assert spec.name == "mqar-probe"
    assert sorted((c["model"], c["lr"]) for c in spec.cells) == sorted(
        (m, lr) for m in PROBE_MODELS for lr in LRS)
    assert {(c["seed"], c["batch"], c["T"]) for c in spec.cells} == {(0, 256, 64)}
    r = spec.run(**(spec.cells[0] | {"steps": 6, "batch": 2, "curve_every": 3,
                                     "width": 16}))
    assert [k for k, _ in r["acc_curve"]] == [3, 6]
    # the last point is the validation accuracy of the model the cell reports
    assert r["acc_curve"][-1][1] == round(r["val_acc"], 4)
    assert "acc_curve" not in run_cell("fused", 16, 3e-3, 0, steps=2, batch=2)


def test_the_binding_sweep_pairs_each_entrant_with_its_short_convolution():
    from phaselib.remedies.mixers import make_mixer
    from phaselib.remedies.mqar_sweeps import (BINDING_GRIDS, BINDING_MODELS,
                                               BINDING_RULE, binding)
    spec = binding()
    assert spec.name == "mqar-binding"
    for pair in (BINDING_RULE["attention"], BINDING_RULE["control"]):
        assert set(pair) <= set(BINDING_MODELS) and pair[0] == pair[1] + "-conv"
    # every entrant's seed 0 at every rate of its grid (LRS, grown where its best lay
    # at an edge) comes before the seeds that need its best
    first_best = min(i for i, c in enumerate(spec.cells) if c["lr"] == "best")
    assert sorted((c["model"], c["lr"]) for c in spec.cells[:first_best]) == sorted(
        (m, lr) for m in BINDING_MODELS for lr in BINDING_GRIDS[m])
    assert all(set(LRS) <= set(BINDING_GRIDS[m]) for m in BINDING_MODELS)
    assert {c["seed"] for c in spec.cells[first_best:]} == {1, 2}
    # the convolution is the only difference: without it the two build alike
    conv = make_mixer("fused-conv", 16, 2, 8)
    plain = make_mixer("fused", 16, 2, 8)
    assert conv.conv is not None and plain.conv is None
    assert (sum(p.numel() for p in conv.parameters())
            - sum(p.numel() for p in plain.parameters())) == 16 * 4 + 16
