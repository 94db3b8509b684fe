"""The "lm" sweep: its cells, the time-budget conversion, one tiny cell end to end."""

import json
from pathlib import Path

import pytest
import torch

from phaselib import lm_sweep
from phaselib.sweep import get_spec
from phaselib.train import evaluate_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cells_cover_every_variant_block_and_seed_and_the_transformer_is_the_time_reference():
    spec = get_spec("lm", seeds=(0, 1))
    cells = spec.cells
    for v in lm_sweep.MAIN + lm_sweep.ABLATIONS:
        for block in lm_sweep.BLOCKS:
            for seed in (0, 1):
                steps = [c for c in cells if c["variant"] == v and c["block"] == block
                         and c["seed"] == seed and c["base_steps"] == lm_sweep.STEPS[block]]
                budgets = sorted(c["budget"] for c in steps)
                assert budgets == (["steps"] if v == "transformer" else ["steps", "time"])
    short = [c for c in cells if c["base_steps"] == lm_sweep.STEPS[c["block"]]]
    assert short[0]["block"] == 64 and short[-1]["block"] == 1024
    assert {c["variant"] for c in cells[:5]} <= set(lm_sweep.MAIN)
    # Last, the rate check completed: every long model at seed 0 and equal steps at
    # each rate of RATES it did not have yet (the rotary baseline had only LONG_LR),
    # so that with the cells before them each long model is tried at every rate.
    rates = [c for c in cells if c["base_steps"] == lm_sweep.LONG_STEPS.get(c["block"])
             and c.get("lr") not in (lm_sweep.LR, lm_sweep.LONG_LR)
             or (c["variant"] in lm_sweep.BASELINES and c.get("lr") == lm_sweep.LR
                 and c["base_steps"] != lm_sweep.STEPS[c["block"]])]
    assert len(lm_sweep.RATES) >= 3 and cells[-len(rates):] == rates
    assert all(c["seed"] == 0 and c["budget"] == "steps" for c in rates)
    cells = cells[:-len(rates)]
    long_models = lm_sweep.MAIN + lm_sweep.BASELINES + lm_sweep.LONG_ABLATIONS
    for b in lm_sweep.LONG_STEPS:
        for v in long_models:
            if v in lm_sweep.BASELINES and b not in lm_sweep.BASELINE_LONG_BLOCKS:
                continue
            tried = {c["lr"] for c in cells + rates if c["variant"] == v
                     and c["block"] == b and c["seed"] == 0 and c["budget"] == "steps"
                     and c["base_steps"] == lm_sweep.LONG_STEPS[b]}
            assert tried == set(lm_sweep.RATES), (v, b, tried)
    # Before them, the long runs of the ablations that say what the pyramid adds beyond
    # the window: both budgets at every seed at LONG_LR, and the first seed at LR.
    long_abl = [c for c in cells if c["variant"] in lm_sweep.LONG_ABLATIONS
                and c["base_steps"] == lm_sweep.LONG_STEPS.get(c["block"])]
    assert cells[-len(long_abl):] == long_abl
    assert sorted((c["block"], c["variant"], c["seed"], c["budget"], c["lr"])
                  for c in long_abl) == sorted(
        [(b, v, s, bud, lm_sweep.LONG_LR) for b in lm_sweep.LONG_STEPS
         for v in lm_sweep.LONG_ABLATIONS for s in (0, 1) for bud in ("steps", "time")]
        + [(b, v, 0, "steps", lm_sweep.LR) for b in lm_sweep.LONG_STEPS
           for v in lm_sweep.LONG_ABLATIONS])
    cells = cells[:-len(long_abl)]
    # Before them, the second baseline: equal steps at every block and seed, long runs
    # at its blocks, where its time cells read their own speed file.
    base = [c for c in cells if c["variant"] in lm_sweep.BASELINES]
    assert cells[-len(base):] == base
    steps = [c for c in base if c["budget"] == "steps"]
    time_ = [c for c in base if c["budget"] == "time"]
    assert len(steps) == len(lm_sweep.BASELINES) * 2 * (
        len(lm_sweep.BLOCKS) + len(lm_sweep.BASELINE_LONG_BLOCKS))
    assert len(time_) == len(lm_sweep.BASELINES) * 2 * len(lm_sweep.BASELINE_LONG_BLOCKS)
    assert all(c["speed_path"] == lm_sweep.BASELINE_SPEED_PATH
               and c["base_steps"] == lm_sweep.LONG_STEPS[c["block"]] for c in time_)
    assert all("speed_path" not in c for c in steps)
    assert lm_sweep.variant_model("transformer-rope", 11, 64).wpe is None
    cells = cells[:-len(base)]
    # The long runs of the main models come next: at their blocks, both budgets.
    long_ = [c for c in cells if c["base_steps"] != lm_sweep.STEPS[c["block"]]]
    assert cells[-len(long_):] == long_
    assert {(c["block"], c["base_steps"]) for c in long_} == set(lm_sweep.LONG_STEPS.items())
    assert {c["variant"] for c in long_} == set(lm_sweep.MAIN)
    at_long_lr = [c for c in long_ if c["lr"] == lm_sweep.LONG_LR]
    check = [c for c in long_ if c["lr"] == lm_sweep.LR]
    # every seed, both budgets (the transformer's time cell is its steps cell) ...
    assert len(at_long_lr) == len(lm_sweep.LONG_STEPS) * 2 * (2 * len(lm_sweep.MAIN) - 1)
    # ... and the first seed of every main model at the short runs' rate, steps only
    assert sorted((c["block"], c["variant"], c["seed"], c["budget"]) for c in check) == \
        sorted((b, v, 0, "steps") for v in lm_sweep.MAIN for b in lm_sweep.LONG_STEPS)
    assert all("lr" not in c for c in short)  # the short cells keep their keys
    assert len({json.dumps(c, sort_keys=True) for c in cells}) == len(cells)  # no twins


def _speed(tmp_path, rows):
    path = tmp_path / "speed.json"
    path.write_text(json.dumps({"rows": rows, "provenance": {"git_commit": "abc"}}))
    return path


def test_time_budget_scales_the_steps_by_the_per_step_times(tmp_path):
    path = _speed(tmp_path, [
        {"variant": "transformer", "block": 64, "cpu_s_per_step": 0.1},
        {"variant": "phase", "block": 64, "cpu_s_per_step": 0.4},
        {"variant": "phase", "block": 256, "cpu_s_per_step": 0.05}])
    steps, rec = lm_sweep.time_budget_steps("phase", 64, 500, path)
    assert steps == 125 and rec["speed_commit"] == "abc"
    with pytest.raises(ValueError, match="no per-step time for \\['transformer'\\]"):
        lm_sweep.time_budget_steps("phase", 256, 500, path)


def test_held_out_loss_equals_evaluate_loss_and_positions_have_one_entry_each():
    torch.manual_seed(0)
    model = lm_sweep.variant_model("phase-window", 7, 16).eval()
    data = torch.randint(7, (200,), generator=torch.Generator().manual_seed(1))
    val, pos = lm_sweep._held_out(model, data, 16)
    assert val == pytest.approx(evaluate_loss(model, data, 16), abs=1e-5)
    assert len(pos) == 16 and all(p > 0 for p in pos)


def test_a_tiny_cell_runs_with_its_steps_and_records_what_the_table_needs(
        tmp_path, monkeypatch):
    text = "".join(chr(97 + (i * 7) % 5) for i in range(3000))
    tok = type("T", (), {"vocab_size": 5})()
    ids = torch.tensor([ord(c) - 97 for c in text])
    monkeypatch.setattr(lm_sweep, "load_corpus", lambda: (tok, ids[:2500], ids[2500:]))
    monkeypatch.setattr(lm_sweep, "SHAPE", dict(n_layer=1, n_embd=16, n_head=2))
    path = _speed(tmp_path, [
        {"variant": "transformer", "block": 64, "cpu_s_per_step": 0.1},
        {"variant": "window-only", "block": 64, "cpu_s_per_step": 0.2}])
    r = lm_sweep.run_cell("window-only", 64, 0, "time", 6, speed_path=path)
    assert r["steps"] == 3 and r["batch"] == 16 and r["eval_tokens"] == 499
    assert len(r["position_losses"]) == 64 and r["val_loss"] > 0
    with pytest.raises(ValueError, match="budget must be"):
        lm_sweep.run_cell("phase", 64, 0, "wall", 6)


def test_merge_keeps_every_cell_of_the_parallel_parts(tmp_path):
    def part(seed, loss):
        cell = {"key": f"k{seed}", "params": {"seed": seed}, "status": "done",
                "result": {"val_loss": loss}, "git_commit": "c"}
        doc = {"format": "phaselib-sweep-v1", "sweep": "lm", "description": "d",
               "cells": [cell], "provenance": {"command": f"run {seed}"}}
        (tmp_path / f"p{seed}.json").write_text(json.dumps(doc))
        return tmp_path / f"p{seed}.json"
    out = lm_sweep.merge_results([part(0, 2.0), part(1, 3.0)], tmp_path / "lm.json")
    doc = json.loads(out.read_text())
    assert [c["result"]["val_loss"] for c in doc["cells"]] == [2.0, 3.0]
    assert doc["provenance"]["seeds"] == [0, 1] and "run 1" in doc["provenance"]["command"]
    with pytest.raises(ValueError, match="sweep 'lm'"):
        lm_sweep.merge_results([], tmp_path / "x.json")


def test_merge_keeps_the_legacy_dirty_record_with_its_cells(tmp_path):
    """Cells flagged dirty before the guard keep the file's reason through a merge."""
    old = {"key": "k0", "params": {"seed": 0}, "status": "done", "git_commit": "c",
           "git_dirty": True, "created": "2026-11-30T00:00:00+00:00",
           "result": {"val_loss": 2.0}}
    new = {"key": "k1", "params": {"seed": 1}, "status": "done", "git_commit": "d",
           "git_dirty": False, "created": "2026-12-04T00:00:00+00:00",
           "result": {"val_loss": 3.0}}
    paths = []
    for i, (cells, extra) in enumerate((([old], {"legacy_dirty": {"reason": "r",
                                                                   "cells": 1}}),
                                        ([new], {}))):
        doc = {"format": "phaselib-sweep-v1", "sweep": "lm", "description": "d",
               "cells": cells, "provenance": {"command": f"run {i}"}} | extra
        paths.append(tmp_path / f"p{i}.json")
        paths[-1].write_text(json.dumps(doc))
    doc = json.loads(lm_sweep.merge_results(paths, tmp_path / "lm.json").read_text())
    assert doc["legacy_dirty"] == {"reason": "r", "cells": 1}
    doc = json.loads(lm_sweep.merge_results(paths[1:], tmp_path / "b.json").read_text())
    assert "legacy_dirty" not in doc


def test_the_rotary_time_cells_have_both_times_from_one_measurement():
    root = Path(__file__).resolve().parents[2]
    doc = json.loads((root / lm_sweep.BASELINE_SPEED_PATH).read_text(encoding="utf-8"))
    have = {(r["variant"], r["block"]) for r in doc["rows"]}
    for block in lm_sweep.BASELINE_LONG_BLOCKS:
        assert {("transformer", block), ("transformer-rope", block)} <= have
        steps, rec = lm_sweep.time_budget_steps(
            "transformer-rope", block, 1000, root / lm_sweep.BASELINE_SPEED_PATH)
        assert 500 < steps < 2000 and rec["speed_commit"] == doc["provenance"]["git_commit"]


def test_merge_command_joins_parts_of_any_sweep_and_refuses_another_sweeps_file(
        tmp_path, capsys):
    from phaselib.sweep import main

    def part(i, sweep="remedies"):
        cell = {"key": f"k{i}", "params": {"seed": i}, "status": "done",
                "result": {"acc": i / 10}, "git_commit": "c"}
        doc = {"format": "phaselib-sweep-v1", "sweep": sweep, "description": "d",
               "cells": [cell], "provenance": {"command": f"run {i}"}}
        (tmp_path / f"{sweep}{i}.json").write_text(json.dumps(doc))
        return str(tmp_path / f"{sweep}{i}.json")
    out = tmp_path / "merged.json"
    assert main(["merge", "remedies", part(0), part(1), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["sweep"] == "remedies" and [c["key"] for c in doc["cells"]] == ["k0", "k1"]
    assert "merge remedies" in doc["provenance"]["command"]
    with pytest.raises(SystemExit):
        main(["merge", "remedies", part(2), part(3, "lm"), "--out", str(out)])
    assert "results files of sweep 'remedies'" in capsys.readouterr().err


def test_verify_skips_time_cells_budgeted_from_an_earlier_speed_file():
    """A time cell budgeted from a speed file re-measured since gets other steps at
    HEAD, so `verify` must not pick it; one budgeted from today's file, and every
    equal-steps cell, it may."""
    import json as _json

    from phaselib.lm_sweep import SPEED_PATH, budget_current
    from phaselib.results_files import results_path
    from phaselib.sweep.verify import cheapest_cells

    now = _json.loads(results_path(SPEED_PATH).read_text())["provenance"]["git_commit"]
    steps = {"params": {"budget": "steps"}, "result": {}, "status": "done", "seconds": 9}
    old = {"params": {"budget": "time"}, "result": {"speed_commit": "0" * 40},
           "status": "done", "seconds": 1}
    cur = {"params": {"budget": "time"}, "result": {"speed_commit": now},
           "status": "done", "seconds": 5}
    assert budget_current(steps) and budget_current(cur) and not budget_current(old)
    doc = {"cells": [dict(c, key=str(i)) for i, c in enumerate((steps, old, cur))]}
    assert [c["key"] for c in cheapest_cells(doc, 2, budget_current)] == ["2", "0"]
    assert cheapest_cells(doc, 1)[0]["key"] == "1"
