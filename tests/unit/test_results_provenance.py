"""Each results file says where it came from; nothing in the book is irreproducible
without saying why."""

import json
import subprocess
from pathlib import Path

import pytest

from phaselib import results_provenance as rp

ROOT = Path(__file__).resolve().parents[2]
C1, C2 = "1" * 40, "2" * 40


def _sweep(cells):
    return {"format": "phaselib-sweep-v1", "sweep": "toy",
            "provenance": {"command": "python -m phaselib.sweep toy"},
            "cells": [{"status": "done", "git_commit": c, "git_dirty": d, "created": t,
                       "machine": {"processor": "x86_64", "threads": 1,
                                   "torch": "2.13.0"}} for c, d, t in cells]}


def _write(tmp_path, doc, name="r.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_the_line_names_commit_date_command_and_machine(tmp_path):
    p = _write(tmp_path, _sweep([(C1, False, "2026-12-05T10:00:00+00:00")] * 3))
    line = rp.provenance_line(p)
    for part in ("r.json", "3 results", "`1111111`", "2026-12-05",
                 "python -m phaselib.sweep toy", "x86_64 CPU, 1 thread", "torch 2.13.0"):
        assert part in line, (part, line)
    assert "uncommitted" not in line


def test_the_line_counts_commits_days_and_dirty_results(tmp_path):
    p = _write(tmp_path, _sweep([(C1, True, "2026-11-01T00:00:00+00:00"),
                                 (C2, False, "2026-11-03T00:00:00+00:00")]))
    line = rp.provenance_line(p)
    assert "2 commits" in line and "2026-11-01 to 2026-11-03" in line
    assert "1 of them from uncommitted code" in line
    doc = _sweep([(C1, True, "2026-11-01T00:00:00+00:00")] * 2)
    doc["legacy_dirty"] = {"reason": "slow", "cells": 2}
    assert "2 of them flagged dirty before the guard" in rp.provenance_line(
        _write(tmp_path, doc))


def test_a_benchmark_and_a_command_line_run_are_read_too(tmp_path):
    bench = {"benchmark": "x", "created": "2026-12-05T00:00:00+00:00", "machine": {},
             "rows": [], "provenance": {"command": "python -m phaselib.bench x",
                                        "git_commit": C1, "git_dirty": False,
                                        "created": "2026-12-05T00:00:00+00:00",
                                        "machine": {"threads": 2}}}
    run = {"format": "phaselib-lm-results-v1", "command": "python -m phaselib.train",
           "git_commit": C2, "git_dirty": False, "created": "2026-12-06T00:00:00+00:00"}
    assert [r["commit"] for r in rp.records(bench)] == [C1]
    assert [r["command"] for r in rp.records(run)] == ["python -m phaselib.train"]
    assert "python -m phaselib.bench x" in rp.provenance_line(_write(tmp_path, bench))


def test_a_missing_file_is_said_not_computed(tmp_path):
    assert "not been computed" in rp.provenance_line(tmp_path / "gpu_check.json")


def test_a_commit_outside_main_and_a_missing_commit_are_problems(tmp_path):
    p = _write(tmp_path, _sweep([(C1, False, "2026-12-05T00:00:00+00:00"),
                                 (None, False, "2026-12-05T00:00:00+00:00")]))
    problems = rp.reproducibility(p, in_main=lambda c: False)
    assert any("not in main's history" in m for m in problems)
    assert any("no git commit" in m for m in problems)
    p = _write(tmp_path, _sweep([(C1, False, "2026-12-05T00:00:00+00:00")]))
    assert rp.reproducibility(p, in_main=lambda c: True) == []


def test_dirty_results_pass_only_as_declared_legacy(tmp_path):
    old = "2026-11-30T00:00:00+00:00"
    doc = _sweep([(C1, True, old), (C1, True, old), (C1, False, old)])
    p = _write(tmp_path, doc)
    assert any("no legacy_dirty record" in m for m in rp.reproducibility(p, lambda c: True))
    doc["legacy_dirty"] = {"reason": "a 16-hour sweep", "cells": 2}
    assert rp.reproducibility(_write(tmp_path, doc), lambda c: True) == []
    doc["legacy_dirty"]["cells"] = 3                  # a stale count is caught
    assert any("says 3" in m for m in rp.reproducibility(_write(tmp_path, doc),
                                                         lambda c: True))
    doc["legacy_dirty"] = {"reason": " ", "cells": 2}
    assert any("needs a reason" in m for m in rp.reproducibility(_write(tmp_path, doc),
                                                                 lambda c: True))


def test_a_dirty_result_after_the_guard_is_never_legacy(tmp_path):
    doc = _sweep([(C1, True, "2026-12-10T00:00:00+00:00")])
    doc["legacy_dirty"] = {"reason": "convenient", "cells": 1}
    problems = rp.reproducibility(_write(tmp_path, doc), lambda c: True)
    assert any("after the guard" in m for m in problems)


def test_one_cells_record_is_legacy_only_when_dirty_before_the_guard_undeclared():
    cell = {"git_commit": C1, "git_dirty": True, "created": "2026-11-30T00:00:00+00:00",
            "status": "done"}
    r = rp.cell_record(cell, "python -m phaselib.sweep x")
    assert (r["commit"], r["dirty"], r["command"], r["machine"]) == (
        C1, True, "python -m phaselib.sweep x", {})
    assert rp.is_legacy(r)
    assert not rp.is_legacy(rp.cell_record(cell | {"allow_dirty": True}))
    assert not rp.is_legacy(rp.cell_record(cell | {"git_dirty": False}))
    assert not rp.is_legacy(rp.cell_record(cell | {"created": "2026-12-10T00:00:00"}))


def _git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def test_every_results_file_in_the_book_is_reproducible_from_main():
    if _git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout (an installed package): no history to check")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone does not hold main's history")
    files = sorted(ROOT.glob("book/*/results/**/*.json"))
    assert len(files) >= 15, files
    in_main = lambda c: _git("merge-base", "--is-ancestor", c, "HEAD").returncode == 0
    problems = [m for f in files for m in rp.reproducibility(f, in_main)]
    assert not problems, "\n".join(problems)
