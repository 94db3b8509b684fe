"""`verify` re-runs stored cells and finds the field that moved; a dirty tree cannot
write into the book."""

import json

import pytest
import torch

from phaselib import provenance as pv
from phaselib import sweep as sw
from phaselib.sweep import SweepSpec, compare_results, run_sweep, verify_sweep


def _spec(shift=0.0, rtol=0.0, note=""):
    def run(seed, width):
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(width, generator=g)
        return {"loss": float(w.square().mean()) + shift, "curve": w.tolist(),
                "threads": torch.get_num_threads(), "seconds": 0.1 * (seed + 1)}
    return SweepSpec(name="toy", out="unused.json", run=run, rtol=rtol,
                     tolerance_note=note,
                     cells=[{"seed": s, "width": 5} for s in (0, 1, 2)])


def test_equal_results_have_no_mismatch_and_zero_difference():
    doc = {"a": 1.5, "b": [1, 2.0, None], "c": {"d": "x", "e": True}}
    assert compare_results(doc, json.loads(json.dumps(doc))) == ([], 0.0)
    assert compare_results({"n": 3}, {"n": 3.0}) == ([], 0.0)


def test_a_moved_number_is_named_by_its_path_with_its_size():
    mism, largest = compare_results({"c": {"curve": [0.5, 0.25]}},
                                    {"c": {"curve": [0.5, 0.25 + 1e-12]}})
    assert [m.path for m in mism] == ["c.curve[1]"]
    assert mism[0].diff == pytest.approx(1e-12, rel=1e-3)
    assert largest == mism[0].diff
    assert "c.curve[1]" in str(mism[0])


def test_a_tolerance_accepts_what_is_within_it_only():
    assert compare_results({"x": 1.0}, {"x": 1.0 + 1e-7}, rtol=1e-6)[0] == []
    assert len(compare_results({"x": 1.0}, {"x": 1.0 + 1e-5}, rtol=1e-6)[0]) == 1


def test_missing_keys_other_lengths_types_and_nan_are_mismatches():
    paths = lambda a, b: [m.path for m in compare_results(a, b)[0]]
    assert paths({"a": 1, "b": 2}, {"a": 1}) == ["b"]
    added = []
    assert compare_results({"a": 1}, {"a": 1, "n": {"b": 2}}, added=added) == ([], 0.0)
    assert added == ["n"]                        # recorded since: not a stored number
    assert paths({"a": [1, 2]}, {"a": [1]}) == ["a.length"]
    assert paths({"a": "1"}, {"a": 1}) == ["a"]
    assert paths({"a": True}, {"a": 1}) == ["a"]
    assert paths({"a": 1.0}, {"a": None}) == ["a"]
    assert paths({"a": 1.0}, {"a": float("nan")}) == ["a"]


def test_skipped_keys_are_not_compared_at_any_depth():
    a = {"seconds": 1.0, "inner": {"seconds": 2.0, "x": 1}}
    b = {"seconds": 9.0, "inner": {"seconds": 7.0, "x": 1}}
    assert compare_results(a, b, skip=("seconds",)) == ([], 0.0)
    assert len(compare_results(a, b)[0]) == 2


def test_verify_reproduces_a_deterministic_sweep_and_skips_the_timings(tmp_path):
    out = tmp_path / "r.json"
    run_sweep(_spec(), out=out, log=lambda m: None)
    doc = json.loads(out.read_text())
    for c, cost in zip(doc["cells"], (3.0, 1.0, 2.0)):
        c["result"]["seconds"] = 123.0            # a timing that differs on a re-run
        c["seconds"] = cost                       # what the cell took when stored
    out.write_text(json.dumps(doc))
    msgs = []
    checks = verify_sweep(_spec(), path=out, cells=2, log=msgs.append)
    assert [c.ok for c in checks] == [True, True]
    assert all(c.largest == 0.0 for c in checks)
    # the cheapest cells by the seconds they took when stored
    assert [json.loads(c.key)["seed"] for c in checks] == [1, 2]
    assert sum("equal to the bit" in m for m in msgs) >= 2


def test_verify_names_the_cell_and_field_that_moved(tmp_path):
    out = tmp_path / "r.json"
    run_sweep(_spec(), out=out, log=lambda m: None)
    msgs = []
    checks = verify_sweep(_spec(shift=1e-9), path=out, cells=1, log=msgs.append)
    assert not checks[0].ok
    assert [m.path for m in checks[0].mismatches] == ["loss"]
    assert any("DIFFERS" in m for m in msgs) and any("loss: stored" in m for m in msgs)
    # the same shift passes a sweep that states a tolerance, and why it needs one
    ok = verify_sweep(_spec(shift=1e-9, rtol=1e-6, note="float atomics"), path=out,
                      log=lambda m: None)
    assert ok[0].ok and 0 < ok[0].largest < 1e-8


def test_verify_runs_each_cell_with_the_thread_count_it_recorded(tmp_path):
    out = tmp_path / "r.json"
    run_sweep(_spec(), out=out, log=lambda m: None)
    doc = json.loads(out.read_text())
    doc["cells"][0]["machine"]["threads"] = 1
    doc["cells"][0]["result"]["threads"] = 1
    out.write_text(json.dumps(doc))
    before = torch.get_num_threads()
    checks = verify_sweep(_spec(), path=out, cells=1, log=lambda m: None)
    assert checks[0].ok                     # the run saw 1 thread, as recorded
    assert torch.get_num_threads() == before


def test_verify_command_exits_1_when_a_stored_number_no_longer_reproduces(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "r.json"
    run_sweep(_spec(), out=out, log=lambda m: None)
    monkeypatch.setitem(sw.core.SWEEPS, "toy", "unused:unused")
    monkeypatch.setattr(sw.cli, "get_spec", lambda name, *a: _spec())
    assert sw.cli.main(["verify", "toy", "--out", str(out), "--cells", "3"]) == 0
    doc = json.loads(out.read_text())
    doc["cells"][2]["result"]["curve"][3] += 0.5
    out.write_text(json.dumps(doc))
    assert sw.cli.main(["verify", "toy", "--out", str(out), "--cells", "3"]) == 1
    text = capsys.readouterr().out
    assert "curve[3]" in text and "no longer reproduce" in text
    assert sw.cli.main(["verify", "toy", "--out", str(out), "--only", "seed=0"]) == 0


def test_a_tolerance_without_its_reason_is_refused():
    with pytest.raises(ValueError, match="tolerance_note"):
        _spec(rtol=1e-6)


def _dirty(monkeypatch):
    fake = lambda root=None: {"commit": "a" * 40, "dirty": True}
    monkeypatch.setattr(pv, "git_commit", fake)
    monkeypatch.setattr(sw.core, "git_commit", fake)


def test_a_dirty_tree_cannot_write_into_the_book(monkeypatch):
    _dirty(monkeypatch)
    target = pv._ROOT / "book" / "part2" / "results" / "toy-never-written.json"
    calls = []
    spec = _spec()
    spec.run, run = (lambda **k: calls.append(k) or {}), spec.run
    with pytest.raises(pv.DirtyTreeError, match="--allow-dirty"):
        run_sweep(spec, out=target, log=lambda m: None)
    assert calls == [] and not target.exists()


def test_allow_dirty_writes_and_marks_every_cell(monkeypatch, tmp_path):
    _dirty(monkeypatch)
    monkeypatch.setattr(pv, "_ROOT", tmp_path)       # so tmp_path/book is the book
    target = tmp_path / "book" / "part2" / "results" / "toy.json"
    with pytest.raises(pv.DirtyTreeError):
        run_sweep(_spec(), out=target, log=lambda m: None)
    run_sweep(_spec(), out=target, allow_dirty=True, log=lambda m: None)
    cells = json.loads(target.read_text())["cells"]
    assert len(cells) == 3
    assert all(c["git_dirty"] is True and c["allow_dirty"] is True for c in cells)


def test_a_dirty_cell_is_stale_once_the_tree_is_clean():
    cell = {"git_commit": "a" * 40, "git_dirty": True}
    assert sw.is_stale(cell, {"commit": "a" * 40, "dirty": False})
    assert not sw.is_stale(cell, {"commit": "a" * 40, "dirty": True})
    assert sw.is_stale({"git_commit": "b" * 40, "git_dirty": False},
                       {"commit": "a" * 40, "dirty": False})
    assert not sw.is_stale({"git_commit": "a" * 40, "git_dirty": False},
                           {"commit": "a" * 40, "dirty": False})


def test_re_running_legacy_cells_keeps_the_legacy_record_true(tmp_path):
    out = tmp_path / "r.json"
    run_sweep(_spec(), out=out, log=lambda m: None)
    doc = json.loads(out.read_text())
    for c in doc["cells"][:2]:
        c.update(git_dirty=True, created="2026-11-30T00:00:00+00:00")
        c.pop("allow_dirty", None)
    doc["legacy_dirty"] = {"reason": "computed before the guard", "cells": 2}
    out.write_text(json.dumps(doc))
    spec = sw.select_cells(_spec(), {"seed": "0"})
    run_sweep(spec, out=out, force=True, log=lambda m: None)
    assert json.loads(out.read_text())["legacy_dirty"]["cells"] == 1
    run_sweep(sw.select_cells(_spec(), {"seed": "1"}), out=out, force=True,
              log=lambda m: None)
    assert "legacy_dirty" not in json.loads(out.read_text())


def test_verify_all_skips_a_sweep_with_no_results_yet_but_verify_by_name_fails(
        monkeypatch, tmp_path, capsys):
    from phaselib.sweep import SweepSpec, cli

    spec = SweepSpec(name="gpu-only", out=str(tmp_path / "none.json"),
                     cells=[{"seed": 0}], run=lambda seed: {"x": 1.0})
    monkeypatch.setattr(cli, "SWEEPS", {"gpu-only": "unused:unused"})
    monkeypatch.setattr(cli, "get_spec", lambda name, *a, **k: spec)
    assert cli.main(["verify", "all"]) == 0
    assert "no results file" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        cli.main(["verify", "gpu-only"])


def test_cells_computed_on_a_gpu_are_not_re_run_on_the_cpu(tmp_path):
    spec = _spec()
    path = tmp_path / "toy.json"
    run_sweep(spec, out=path, log=lambda s: None)
    doc = json.loads(path.read_text())
    for c in doc["cells"]:
        c["machine"]["device"] = "cuda"
        c["result"]["loss"] += 1.0          # would differ if it were re-run
    path.write_text(json.dumps(doc))
    said = []
    assert verify_sweep(spec, path=path, log=said.append) == []
    assert "GPU" in said[-1]
    doc["cells"][2]["machine"]["device"] = "cpu"
    path.write_text(json.dumps(doc))
    checks = verify_sweep(spec, path=path, log=lambda s: None)
    assert [c.ok for c in checks] == [False]    # the one CPU cell is re-run, and differs


def _verify_doc(out, doc) -> int:
    """Write `doc` to `out` and verify its three cells through the command line."""
    out.write_text(json.dumps(doc))
    return sw.cli.main(["verify", "toy", "--out", str(out), "--cells", "3"])


def _toy_sweep(tmp_path, monkeypatch):
    """(results file, its document) of the toy sweep, run here and known to the CLI."""
    out = tmp_path / "r.json"
    run_sweep(_spec(), out=out, log=lambda m: None)
    monkeypatch.setitem(sw.core.SWEEPS, "toy", "unused:unused")
    monkeypatch.setattr(sw.cli, "get_spec", lambda name, *a: _spec())
    return out, json.loads(out.read_text())


def _reported_not_counted(out, doc, capsys, field, other):
    """With the first cell's machine[field] set to `other`, then removed (computed
    before it was kept), its difference is reported as OTHER CPU and not counted."""
    doc["cells"][0]["machine"][field] = other
    assert _verify_doc(out, doc) == 0
    text = capsys.readouterr().out
    assert "OTHER CPU" in text and other in text and "not counted" in text
    del doc["cells"][0]["machine"][field]
    assert _verify_doc(out, doc) == 0
    assert "unrecorded" in capsys.readouterr().out


def test_a_cell_from_a_cpu_of_another_capability_is_reported_not_failed(
        tmp_path, monkeypatch, capsys):
    """Bit-exact holds on a CPU of the cell's vector capability; a cell computed on
    another (or before the capability was recorded) that differs is reported as such
    and not counted, while the same difference on this capability fails."""
    out, doc = _toy_sweep(tmp_path, monkeypatch)
    assert all(c["machine"]["cpu_capability"] for c in doc["cells"])
    doc["cells"][0]["result"]["curve"][0] += 0.5
    assert _verify_doc(out, doc) == 1
    _reported_not_counted(out, doc, capsys, "cpu_capability", "SOME-OTHER-CPU")


def test_a_time_budget_skips_a_sweep_whose_cheapest_cell_is_too_slow(tmp_path):
    out = tmp_path / "r.json"
    run_sweep(_spec(), out=out, log=lambda m: None)
    doc = json.loads(out.read_text())
    for c, cost in zip(doc["cells"], (300.0, 150.0, 200.0)):
        c["seconds"] = cost
    out.write_text(json.dumps(doc))
    msgs = []
    assert verify_sweep(_spec(), path=out, max_seconds=120, log=msgs.append) == []
    assert "took 150 s when stored" in msgs[-1] and "verify toy" in msgs[-1]
    checks = verify_sweep(_spec(), path=out, max_seconds=160, log=msgs.append)
    assert [json.loads(c.key)["seed"] for c in checks] == [1] and checks[0].ok


def test_a_cell_from_another_cpu_model_is_reported_not_failed(tmp_path, monkeypatch,
                                                               capsys):
    """Same vector capability, another CPU model (an Intel against an AMD): the
    difference is reported, with whether it lies within a millionth, and not counted;
    the same difference on this very model fails."""
    from phaselib.provenance import cpu_model
    from phaselib.sweep.verify import OTHER_MODEL_RTOL

    out, doc = _toy_sweep(tmp_path, monkeypatch)
    assert doc["cells"][0]["machine"]["cpu_model"] == cpu_model()
    value = doc["cells"][0]["result"]["curve"][0]
    doc["cells"][0]["result"]["curve"][0] = value * (1 + OTHER_MODEL_RTOL / 10)
    assert _verify_doc(out, doc) == 1
    assert "DIFFERS" in capsys.readouterr().out
    _reported_not_counted(out, doc, capsys, "cpu_model", "SOME-OTHER-MODEL")
    doc["cells"][0]["machine"]["cpu_model"] = "SOME-OTHER-MODEL"
    assert _verify_doc(out, doc) == 0
    assert "within a relative" in capsys.readouterr().out
    doc["cells"][0]["result"]["curve"][0] = value * (1 + OTHER_MODEL_RTOL * 10)
    assert _verify_doc(out, doc) == 0
    text = capsys.readouterr().out
    assert "beyond a relative" in text and "not counted" in text and "DIFFERS" not in text
    doc["cells"][0]["machine"]["cpu_model"] = cpu_model()
    assert _verify_doc(out, doc) == 1
    assert "DIFFERS" in capsys.readouterr().out
    # A model never recorded (a cell stored before it was kept): beyond the millionth
    # it fails, as before.
    del doc["cells"][0]["machine"]["cpu_model"]
    assert _verify_doc(out, doc) == 1
    assert "DIFFERS" in capsys.readouterr().out


def test_the_summary_counts_the_sweeps_compared_on_this_cpu(tmp_path, monkeypatch,
                                                           capsys):
    out, doc = _toy_sweep(tmp_path, monkeypatch)
    assert _verify_doc(out, doc) == 0
    assert "1 of the 1 sweeps re-run compared a cell computed on this CPU" in (
        capsys.readouterr().out)
    for c in doc["cells"]:
        c["machine"]["cpu_model"] = "SOME-OTHER-MODEL"
    assert _verify_doc(out, doc) == 0
    text = capsys.readouterr().out
    assert "0 of the 1 sweeps" in text and "other (or unrecorded) CPUs: toy" in text


def test_cells_computed_on_this_cpu_are_chosen_first_within_the_budget():
    """Only this CPU re-runs a cell to the bit: the cheapest cell computed here (its
    capability and model) within the time budget comes before cheaper ones from
    another CPU; over the budget, or with none from here, the cheapest comes first."""
    from phaselib.provenance import cpu_capability, cpu_model
    from phaselib.sweep.verify import cheapest_cells, stored_here

    here = {"device": "cpu", "cpu_capability": cpu_capability(), "cpu_model": cpu_model()}
    other = {**here, "cpu_model": "SOME-OTHER-MODEL"}
    cells = [{"key": k, "status": "done", "seconds": t, "machine": m}
             for k, t, m in (("a", 5.0, other), ("b", 50.0, here), ("c", 80.0, here),
                             ("d", 1.0, {**here, "device": "cuda:0"}))]
    doc = {"cells": cells}
    assert [stored_here(c) for c in cells] == [False, True, True, False]
    assert [c["key"] for c in cheapest_cells(doc, 1)] == ["b"]
    assert [c["key"] for c in cheapest_cells(doc, 3, max_seconds=60)] == ["b", "a", "c"]
    assert [c["key"] for c in cheapest_cells(doc, 1, max_seconds=30)] == ["a"]
    assert [c["key"] for c in cheapest_cells({"cells": cells[:1]}, 1)] == ["a"]


def test_a_stored_cell_knows_whether_it_was_computed_on_this_cpu(tmp_path):
    """StoredCell.here: this CPU's capability and model, on the CPU; not a GPU's cell,
    another model's or one whose model was not recorded."""
    from phaselib.provenance import computed_here
    from phaselib.sweep import load_sweep

    out = tmp_path / "r.json"
    run_sweep(_spec(), out=out, log=lambda m: None)
    cell = load_sweep(out).cells()[0]
    assert cell.here
    m = dict(cell.machine)
    for change in ({"cpu_model": "SOME-OTHER-MODEL"}, {"cpu_capability": "AVX2"},
                   {"device": "cuda:0"}):
        assert not computed_here({**m, **change}), change
    assert not computed_here({k: v for k, v in m.items() if k != "cpu_model"})
    with pytest.raises(TypeError, match="machine"):
        computed_here(None)
