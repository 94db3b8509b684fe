"""Provenance records and atomic writes."""

import json
import re

import pytest
import torch

from phaselib import provenance as pv


def test_provenance_records_command_seeds_commit_date_machine():
    doc = pv.provenance("python -m phaselib.sweep f6", seeds=[0, 1, 2])
    assert doc["command"] == "python -m phaselib.sweep f6"
    assert doc["seeds"] == [0, 1, 2]
    assert doc["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", doc["git_commit"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", doc["created"])
    assert doc["machine"]["threads"] >= 1


def test_provenance_refuses_an_empty_command():
    with pytest.raises(ValueError, match="command must be"):
        pv.provenance("  ", seeds=[0])


def test_atomic_write_json_writes_strict_json(tmp_path):
    p = pv.atomic_write_json(tmp_path / "a" / "r.json", {"x": float("nan"), "y": [1.5]})
    assert json.loads(p.read_text()) == {"x": None, "y": [1.5]}


def test_json_text_puts_a_list_of_values_on_one_line_and_indents_the_rest(tmp_path):
    doc = {"curve": [0.5, 1e-05, None, 3], "profiles": {"1": [[0.25, 0.75], [1.0, 0]]},
           "cells": [{"seed": 0, "ok": True}], "empty": {}, "none": [], 7: "seven"}
    path = pv.atomic_write_json(tmp_path / "r.json", doc)
    text = path.read_text()
    assert json.loads(text) == json.loads(json.dumps(doc))     # the same content
    lines = text.splitlines()
    assert ' "curve": [0.5, 1e-05, null, 3],' in lines
    assert '   [0.25, 0.75],' in lines and '   [1.0, 0]' in lines  # one row a line
    assert '   "seed": 0,' in lines                            # objects indented
    assert ' "7": "seven"' in lines and text.endswith("}\n")
    # without lists of values it is json.dumps's own indented layout
    plain = {"a": {"b": 1, "c": "x"}, "d": [{"e": None}]}
    assert pv.json_text(plain) == json.dumps(plain, indent=1)
    assert pv.json_text(doc, None) == json.dumps(json.loads(json.dumps(doc)))
    with pytest.raises(ValueError):
        pv.json_text({"x": float("nan")})                  # strict: no NaN


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    pv.atomic_write_json(path, {"good": 1})

    class Boom:
        pass
    with pytest.raises(TypeError):
        pv.atomic_write_json(path, {"bad": Boom()})
    assert json.loads(path.read_text()) == {"good": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_torch_save_round_trips_with_weights_only(tmp_path):
    obj = {"w": torch.arange(5.0), "n": 3}
    p = pv.atomic_torch_save(obj, tmp_path / "c.pt")
    back = torch.load(p, weights_only=True)
    assert torch.equal(back["w"], torch.arange(5.0)) and back["n"] == 3


def _repo(tmp_path):
    """A git repository with a tracked source file and a tracked results file."""
    import subprocess

    def git(*a):
        subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)
    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (tmp_path / "book" / "part2" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "book" / "part2" / "results" / "f1.json").write_text("{}\n")
    git("add", "-A")
    git("commit", "-q", "-m", "init")
    return tmp_path


def test_a_changed_results_file_does_not_make_the_tree_dirty(tmp_path):
    root = _repo(tmp_path)
    (root / "book" / "part2" / "results" / "f1.json").write_text('{"a": 1}\n')
    assert pv.git_commit(root)["dirty"] is False
    (root / "code.py").write_text("x = 2\n")
    assert pv.git_commit(root)["dirty"] is True


def test_require_clean_refuses_a_dirty_tree_for_a_target_in_the_book(tmp_path):
    root = _repo(tmp_path)
    target = root / "book" / "part2" / "results" / "f1.json"
    assert pv.require_clean(target, root=root)["dirty"] is False
    (root / "code.py").write_text("x = 2\n")
    with pytest.raises(pv.DirtyTreeError, match="--allow-dirty"):
        pv.require_clean(target, root=root)
    assert pv.require_clean(target, allow_dirty=True, root=root)["dirty"] is True
    # outside the book nothing is refused
    assert pv.require_clean(tmp_path / "elsewhere.json", root=root)["dirty"] is True
