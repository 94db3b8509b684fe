"""Sweeps that pick up where they stopped: skip finished cells, re-run failed ones, flag
cells from another commit, save on Ctrl-C."""

import json

import pytest

from phaselib import sweep as sw
from phaselib.sweep import SweepSpec, load_sweep, run_sweep


def _spec(calls, fail_seeds=(), interrupt_seed=None, seeds=(0, 1, 2)):
    def run(seed, width):
        calls.append(seed)
        if seed == interrupt_seed:
            raise KeyboardInterrupt
        if seed in fail_seeds:
            raise RuntimeError(f"seed {seed} diverged")
        return {"loss": 1.0 / (seed + width)}
    return SweepSpec(name="toy", out="unused.json", run=run,
                     cells=[{"seed": s, "width": 4} for s in seeds], description="a toy")


def test_a_finished_sweep_is_not_run_again(tmp_path):
    out = tmp_path / "r.json"
    calls = []
    s1 = run_sweep(_spec(calls), out=out, log=lambda m: None)
    s2 = run_sweep(_spec(calls), out=out, log=lambda m: None)
    assert calls == [0, 1, 2]
    assert len(s1["ran"]) == 3 and len(s2["skipped"]) == 3 and not s2["ran"]
    rows = load_sweep(out).results(width=4)
    assert sorted(r["seed"] for r in rows) == [0, 1, 2]
    assert rows[0]["loss"] == pytest.approx(0.25)


def test_failed_cells_are_recorded_and_rerun_next_time(tmp_path):
    out = tmp_path / "r.json"
    calls = []
    s1 = run_sweep(_spec(calls, fail_seeds=(1,)), out=out, log=lambda m: None)
    assert len(s1["failed"]) == 1
    res = load_sweep(out)
    assert [c["params"]["seed"] for c in res.failed()] == [1]
    assert "diverged" in res.failed()[0]["error"]
    calls.clear()
    s2 = run_sweep(_spec(calls), out=out, log=lambda m: None)
    assert calls == [1] and len(s2["skipped"]) == 2
    assert not load_sweep(out).failed()


def test_new_seeds_run_only_the_missing_cells(tmp_path):
    out = tmp_path / "r.json"
    calls = []
    run_sweep(_spec(calls, seeds=(0, 1)), out=out, log=lambda m: None)
    calls.clear()
    run_sweep(_spec(calls, seeds=(0, 1, 2, 3)), out=out, log=lambda m: None)
    assert calls == [2, 3]


def test_a_cell_from_another_commit_is_flagged_and_rerun_only_when_asked(tmp_path):
    out = tmp_path / "r.json"
    calls = []
    run_sweep(_spec(calls), out=out, log=lambda m: None)
    if load_sweep(out).doc["cells"][0]["git_commit"] is None:
        pytest.skip("not running from a git checkout")
    doc = json.loads(out.read_text())
    doc["cells"][0]["git_commit"] = "0" * 40
    out.write_text(json.dumps(doc))
    calls.clear()
    msgs = []
    s = run_sweep(_spec(calls), out=out, log=msgs.append)
    assert calls == [] and len(s["stale"]) == 1
    assert any("another commit" in m for m in msgs)
    s = run_sweep(_spec(calls), out=out, rerun_stale=True, log=lambda m: None)
    assert calls == [0] and not s["stale"]


def test_rerun_legacy_reruns_only_the_cells_flagged_dirty_before_the_guard(tmp_path):
    out = tmp_path / "r.json"
    calls = []
    run_sweep(_spec(calls), out=out, log=lambda m: None)
    doc = json.loads(out.read_text())
    # Seed 1 from a dirty tree before the guard; seed 2 dirty but marked allow_dirty.
    doc["cells"][1].update(git_dirty=True, created="2026-12-01T00:00:00+00:00")
    doc["cells"][1].pop("allow_dirty", None)     # set when this test runs in a dirty tree
    doc["cells"][2].update(git_dirty=True, created="2026-12-01T00:00:00+00:00",
                           allow_dirty=True)
    doc["legacy_dirty"] = {"reason": "before the guard", "cells": 1}
    out.write_text(json.dumps(doc))
    calls.clear()
    run_sweep(_spec(calls), out=out, log=lambda m: None)
    assert calls == []
    s = run_sweep(_spec(calls), out=out, rerun_legacy=True, log=lambda m: None)
    # seed 2 counts as stale in a clean tree (a dirty cell), skipped in a dirty one
    assert calls == [1] and len(s["ran"]) == 1
    assert len(s["skipped"]) + len(s["stale"]) == 2
    doc = json.loads(out.read_text())
    assert "legacy_dirty" not in doc        # the record goes with its last cell
    assert doc["cells"][1]["created"] > "2026-12-01T00:00:00+00:00"


def test_an_interrupt_keeps_the_finished_cells_and_says_how_to_continue(tmp_path):
    out = tmp_path / "r.json"
    calls, msgs = [], []
    with pytest.raises(KeyboardInterrupt):
        run_sweep(_spec(calls, interrupt_seed=1), out=out, command="python -m x toy",
                  log=msgs.append)
    assert [r["seed"] for r in load_sweep(out).results()] == [0]
    assert any("continue with" in m and "python -m x toy" in m for m in msgs)
    calls.clear()
    run_sweep(_spec(calls), out=out, log=lambda m: None)
    assert calls == [1, 2]


def test_results_file_records_provenance(tmp_path):
    out = tmp_path / "r.json"
    run_sweep(_spec([]), out=out, command="python -m phaselib.sweep toy", log=lambda m: None)
    prov = load_sweep(out).provenance
    assert prov["command"] == "python -m phaselib.sweep toy"
    assert prov["seeds"] == [0, 1, 2]
    assert "machine" in prov and "created" in prov
    cell = load_sweep(out).doc["cells"][0]
    assert cell["seconds"] >= 0 and "git_commit" in cell


def test_cells_carry_their_provenance_and_skip_failed_ones(tmp_path):
    out = tmp_path / "r.json"
    run_sweep(_spec([], fail_seeds=(1,)), out=out, log=lambda m: None)
    doc = json.loads(out.read_text())
    doc["cells"][0].update(git_commit="abcdef0123456789", git_dirty=True,
                           created="2026-01-02T03:04:05+00:00")
    out.write_text(json.dumps(doc))
    cells = load_sweep(out).cells()
    assert [c.params["seed"] for c in cells] == [0, 2]          # the failed seed 1 left
    assert cells[0].result["loss"] == pytest.approx(0.25)
    assert cells[0].dirty is True and cells[0].date == "2026-01-02"
    assert cells[0].origin == "abcdef0 on 2026-01-02"
    assert [c.params["seed"] for c in load_sweep(out).cells(seed=2)] == [2]
    assert load_sweep(out).cells(seed=1) == []


def test_another_sweeps_file_is_refused(tmp_path):
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"format": sw.FORMAT, "sweep": "other", "cells": []}))
    with pytest.raises(ValueError, match="not the results file of sweep 'toy'"):
        run_sweep(_spec([]), out=out, log=lambda m: None)


def test_duplicate_cells_are_refused():
    with pytest.raises(ValueError, match="same parameters"):
        SweepSpec(name="d", out="x", run=lambda **k: {}, cells=[{"seed": 0}, {"seed": 0}])


def test_load_sweep_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the sweep"):
        load_sweep(tmp_path / "nope.json")


def test_cli_refuses_an_unknown_sweep(capsys):
    with pytest.raises(SystemExit) as exc:
        sw.cli.main(["nope"])
    assert exc.value.code == 2                      # argparse's usage error
    assert "unknown sweep" in capsys.readouterr().err


def test_cli_runs_a_registered_sweep_and_exits_nonzero_on_failure(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sw.cli, "get_spec",
                        lambda name, seeds, device: _spec(calls, fail_seeds=(2,)))
    monkeypatch.setitem(sw.core.SWEEPS, "toy", "unused:unused")
    out = tmp_path / "r.json"
    assert sw.cli.main(["toy", "--out", str(out)]) == 1
    assert load_sweep(out).provenance["command"] == f"python -m phaselib.sweep toy --out {out}"


def test_only_keeps_the_matching_cells_and_the_others_in_the_file(tmp_path):
    out = tmp_path / "r.json"
    calls = []
    run_sweep(_spec(calls, seeds=(0,)), out=out, log=lambda m: None)
    spec = sw.select_cells(_spec(calls, seeds=(0, 1, 2)), {"seed": "2"})
    assert [c["seed"] for c in spec.cells] == [2]
    run_sweep(spec, out=out, log=lambda m: None)
    assert calls == [0, 2]                          # seed 1 was never run
    assert sorted(r["seed"] for r in load_sweep(out).results()) == [0, 2]


def test_only_names_an_unknown_parameter_or_value():
    spec = _spec([], seeds=(0, 1))
    with pytest.raises(ValueError, match=r"no parameter 'depth'.*\['seed', 'width'\]"):
        sw.select_cells(spec, {"depth": "2"})
    with pytest.raises(ValueError, match=r"width=8 matches no cell.*\['4'\]"):
        sw.select_cells(spec, {"width": "8"})
    assert sw.select_cells(spec, {}) is spec


def test_cli_only_runs_the_selected_cells(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(sw.cli, "get_spec", lambda name, seeds, device: _spec(calls))
    monkeypatch.setitem(sw.core.SWEEPS, "toy", "unused:unused")
    out = tmp_path / "r.json"
    assert sw.cli.main(["toy", "--out", str(out), "--only", "seed=1"]) == 0
    assert calls == [1]
    with pytest.raises(SystemExit):
        sw.cli.main(["toy", "--out", str(out), "--only", "seed"])
    assert "KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):       # a second value for a key is refused, not
        sw.cli.main(["toy", "--out", str(out), "--only", "seed=0",   # dropped
                     "--only", "seed=1"])
    assert "--only seed given twice" in capsys.readouterr().err
    assert calls == [1]


def test_every_command_that_wrote_a_file_is_kept_through_a_merge(tmp_path):
    from phaselib.sweep.store import merge_sweep_files
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "m.json"
    run_sweep(_spec([], seeds=(0,)), out=a, command="toy part A", log=lambda m: None)
    run_sweep(_spec([], seeds=(0, 1)), out=a, command="toy part A2", log=lambda m: None)
    run_sweep(_spec([], seeds=(2,)), out=b, command="toy part B", log=lambda m: None)
    assert load_sweep(a).provenance["command"] == "toy part A2"
    assert load_sweep(a).provenance["commands"] == ["toy part A", "toy part A2"]
    merge_sweep_files("toy", [a, b], out)
    doc = load_sweep(out).doc
    assert doc["provenance"]["commands"] == ["toy part A", "toy part A2", "toy part B"]
    assert [c["command"] for c in doc["cells"]] == ["toy part A", "toy part A2",
                                                    "toy part B"]


def test_a_merge_takes_the_sweeps_description_as_its_module_states_it_now(tmp_path):
    from phaselib.sweep import get_spec
    from phaselib.sweep.store import merge_sweep_files
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "m.json"
    spec = get_spec("f7")
    cell = dict(spec.cells[0])
    for path, seed in ((a, 0), (b, 1)):
        toy = SweepSpec(name="f7", out="unused.json", run=lambda **p: {"loss": 1.0},
                        cells=[cell | {"seed": seed}], description="an older text")
        run_sweep(toy, out=path, command="part", log=lambda m: None)
    assert json.loads(a.read_text())["description"] == "an older text"
    merge_sweep_files("f7", [a, b], out)
    assert load_sweep(out).doc["description"] == spec.description != "an older text"
    # A sweep no module registers keeps its first file's text.
    t, tout = tmp_path / "t.json", tmp_path / "tm.json"
    run_sweep(_spec([], seeds=(0,)), out=t, command="toy", log=lambda m: None)
    merge_sweep_files("toy", [t], tout)
    assert load_sweep(tout).doc["description"] == "a toy"
