"""results_path: a chapter's `results/...` is the file beside it in the repository,
else the copy shipped with phaselib, else a FileNotFoundError that says where it looked
and how the file is made."""

import json
from pathlib import Path

import pytest

import phaselib
from phaselib import results_files as rf
from phaselib.results_provenance import provenance_line
from phaselib.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[2]


def _sweep(name="toy", command="python -m phaselib.sweep toy", seed=0):
    return {"format": "phaselib-sweep-v1", "sweep": name,
            "provenance": {"command": command},
            "cells": [{"key": "k", "params": {"seed": seed}, "status": "done",
                       "result": {"acc": 0.5}, "git_commit": "1" * 40,
                       "git_dirty": False, "created": "2026-12-05T00:00:00+00:00"}]}


def _write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A wheel's layout: _results/part2/f5.json, _results/part4/cli/run.json; the
    working folder an empty one (no repository around it)."""
    pkg = tmp_path / "site" / "phaselib" / "_results"
    _write(pkg / "part2" / "f5.json", _sweep("f5", "python -m phaselib.sweep f5", 5))
    _write(pkg / "part4" / "cli" / "run.json", {"command": "python -m phaselib.train"})
    monkeypatch.setattr(rf, "PACKAGED", pkg)
    monkeypatch.setattr(rf, "CHECKOUT", tmp_path / "no-checkout" / "book")
    reader = tmp_path / "reader"
    reader.mkdir()
    monkeypatch.chdir(reader)
    return pkg


def test_it_is_exported_from_the_package():
    assert phaselib.results_path is rf.results_path
    assert "results_path" in phaselib.__all__


def test_a_file_beside_the_chapter_wins_and_keeps_its_relative_path(shipped, tmp_path):
    _write(Path("results/f5.json"), _sweep("f5", seed=7))
    assert rf.results_path("results/f5.json") == Path("results/f5.json")
    assert [r["seed"] for r in load_sweep("results/f5.json").results()] == [7]


def test_a_missing_file_is_read_from_the_shipped_copy(shipped):
    f5 = shipped / "part2" / "f5.json"
    assert rf.results_path("results/f5.json") == f5
    assert rf.results_path(Path("results") / "f5.json") == f5
    assert rf.results_path("../part2/results/f5.json") == f5   # another part's file
    assert rf.results_path("book/part2/results/f5.json") == f5  # from the repo root
    assert rf.results_path("results/f5.json", part="part2") == f5
    sw = load_sweep("results/f5.json")
    assert sw.path == f5 and [r["seed"] for r in sw.results()] == [5]
    assert "`f5.json`" in provenance_line("results/f5.json")
    assert "python -m phaselib.sweep f5" in provenance_line("results/f5.json")


def test_folders_and_nested_files_resolve_too(shipped):
    cli = shipped / "part4" / "cli"
    assert rf.results_path("results/cli") == cli
    assert rf.results_path("results/cli/run.json") == cli / "run.json"
    assert [f.name for f in rf.results_path("results/cli").glob("*.json")] == \
        ["run.json"]


def test_the_part_in_the_path_or_in_part_decides(shipped):
    with pytest.raises(FileNotFoundError, match="results of \\['part2'\\] hold it"):
        rf.results_path("../part4/results/f5.json")
    with pytest.raises(FileNotFoundError, match="part4"):
        rf.results_path("results/f5.json", part="part4")
    with pytest.raises(ValueError, match="part must be one of"):
        rf.results_path("results/f5.json", part="part9")


def test_a_file_in_two_parts_needs_the_part(shipped):
    _write(shipped / "part4" / "f5.json", _sweep("f5", seed=4))
    with pytest.raises(ValueError, match=r"\['part2', 'part4'\].*part="):
        rf.results_path("results/f5.json")
    assert rf.results_path("results/f5.json", part="part4") == \
        shipped / "part4" / "f5.json"
    assert rf.results_path("../part2/results/f5.json") == shipped / "part2" / "f5.json"


def test_a_file_found_nowhere_says_where_it_looked_and_what_writes_it(shipped):
    with pytest.raises(FileNotFoundError) as e:
        rf.results_path("results/f6.json")
    msg = str(e.value)
    assert msg.startswith("results/f6.json does not exist")
    assert str(Path.cwd() / "results" / "f6.json") in msg   # beside the chapter
    assert str(shipped / "*" / "f6.json") in msg             # the shipped copy
    assert "python -m phaselib.sweep f6" in msg              # what writes it
    with pytest.raises(FileNotFoundError, match="run the sweep that writes it"):
        load_sweep("results/unknown.json")
    # The command of a copy under another part, from its provenance.
    with pytest.raises(FileNotFoundError, match="`python -m phaselib.train`"):
        rf.results_path("results/cli/run.json", part="part2")


def test_missing_ok_gives_the_path_back_for_a_read_if_present(shipped):
    got = rf.results_path("results/f6.json", missing_ok=True)
    assert got == Path("results/f6.json")
    assert "not been computed" in provenance_line("results/f6.json")


def test_a_path_without_a_results_folder_is_not_looked_up(shipped, tmp_path):
    _write(shipped / "part2" / "nope.json", _sweep())
    with pytest.raises(FileNotFoundError, match="no shipped copy is looked for"):
        rf.results_path(tmp_path / "nope.json")


def test_without_any_shipped_results_the_error_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(rf, "PACKAGED", tmp_path / "none")
    monkeypatch.setattr(rf, "CHECKOUT", tmp_path / "none-either" / "book")
    monkeypatch.chdir(tmp_path)
    assert rf.shipped_results() == {}
    with pytest.raises(FileNotFoundError, match="ships no results"):
        rf.results_path("results/f5.json", part="part2")


def test_a_checkout_ships_its_book_results(tmp_path, monkeypatch):
    """Editable install: no _results in the package, book/<part>/results/ read."""
    if rf.PACKAGED.is_dir():
        pytest.skip("phaselib is installed from a wheel here")
    assert rf.CHECKOUT == ROOT / "book"
    parts = rf.shipped_results()
    assert {"part2", "part3", "part4", "part5"} <= set(parts)
    assert parts["part2"] == ROOT / "book" / "part2" / "results"
    monkeypatch.chdir(tmp_path)
    f5 = ROOT / "book" / "part2" / "results" / "f5.json"
    assert rf.results_path("results/f5.json") == f5
    assert load_sweep("results/f5.json").path == f5


def test_every_results_file_of_the_book_resolves_from_an_empty_folder(tmp_path,
                                                                      monkeypatch):
    """No two parts share a file name, so `results/<name>` alone finds each one."""
    if rf.PACKAGED.is_dir():
        pytest.skip("phaselib is installed from a wheel here")
    monkeypatch.chdir(tmp_path)
    files = sorted((ROOT / "book").glob("*/results/**/*.json"))
    assert files
    for f in files:
        rel = Path(*f.relative_to(ROOT / "book").parts[1:])   # results/...
        assert rel.parts[0] == "results"
        assert rf.results_path(rel) == f, rel
