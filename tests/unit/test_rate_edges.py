"""phaselib.rate_edges: which models' best rate lies at an edge of the grid, the runs
past it, and whether the grid brackets the rate."""

import json

import pytest

from phaselib.rate_edges import (AUDITED, EXTERNAL, GROWN, PLAN, TAKEN_IN, audit, checks,
                                 past_edge, sweep, sweep_edges)
from phaselib.sweep import get_spec
from phaselib.sweep.store import FORMAT


def _file(path, name, cells):
    """A results file of sweep `name` holding `cells` ((params, result) pairs), each
    finished at a clean commit."""
    doc = {"format": FORMAT, "sweep": name, "description": "", "commits": ["abc"],
           "cells": [{"key": json.dumps(p, sort_keys=True), "params": p, "status": "done",
                      "result": r, "git_commit": "abc", "git_dirty": False,
                      "created": "2026-12-07T00:00:00", "machine": {}}
                     for p, r in cells]}
    path.write_text(json.dumps(doc))
    return path


RATES = (1e-3, 3e-3, 1e-2)


def _grid(kind, losses, seed=0):
    return [({"kind": kind, "lr": lr, "seed": seed}, {"val_acc": v})
            for lr, v in zip(RATES, losses)]


def test_audit_finds_the_edge_each_models_best_lies_at(tmp_path):
    path = _file(tmp_path / "s.json", "selection-rates",
                 _grid("a", (0.1, 0.2, 0.9)) + _grid("b", (0.8, 0.2, 0.1))
                 + _grid("c", (0.1, 0.9, 0.2)) + _grid("a", (0.9, 0.1, 0.1), seed=1)
                 + [({"kind": "d", "lr": 1e-3, "seed": 0}, {"val_acc": 1.0})])
    found = {m.params["kind"]: m for m in audit("selection-rates", path)}
    # Seed 1's cells are not seed 0's; a model with one rate is no grid.
    assert set(found) == {"a", "b", "c"}
    assert (found["a"].edge, found["a"].best_lr) == ("high", 1e-2)
    assert (found["b"].edge, found["b"].best_lr) == ("low", 1e-3)
    assert found["c"].edge is None and found["c"].best_score == 0.9
    assert past_edge(found["a"]) == 3e-2 and past_edge(found["b"]) == 3e-4
    with pytest.raises(ValueError, match="edge"):
        past_edge(found["c"])


def test_a_lower_score_is_better_where_the_sweep_says_so(tmp_path):
    cells = [({"depth": 2, "variant": "x", "lr": lr, "seed": 0}, {"val_loss": v})
             for lr, v in zip(RATES, (0.5, 0.7, 0.9))]
    (m,) = audit("f7", _file(tmp_path / "f7.json", "f7", cells))
    assert m.edge == "low" and m.best_lr == 1e-3 and AUDITED["f7"] == ("val_loss", False)


def test_a_diverged_rate_is_audited_as_the_worst(tmp_path):
    # NaN is stored as null: the model is still audited, its best among finite scores.
    cells = [({"depth": 2, "variant": "x", "lr": lr, "seed": 0}, {"val_loss": v})
             for lr, v in zip(RATES, (0.5, 0.2, None))]
    (m,) = audit("f7", _file(tmp_path / "f7.json", "f7", cells))
    assert m.edge is None and m.best_lr == 3e-3 and m.best_score == 0.2


def test_audit_refuses_a_dirty_cell_and_an_unknown_sweep(tmp_path):
    path = _file(tmp_path / "s.json", "selection-rates", _grid("a", (0.1, 0.2, 0.9)))
    doc = json.loads(path.read_text())
    doc["cells"][0]["git_dirty"] = True
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="dirty"):
        audit("selection-rates", path)
    with pytest.raises(ValueError, match="one of"):
        audit("nonesuch", path)


def test_checks_set_the_rate_past_the_edge_beside_the_grids_best(tmp_path):
    grid = _file(tmp_path / "s.json", "selection-rates",
                 _grid("a", (0.1, 0.2, 0.6)) + _grid("b", (0.1, 0.2, 0.6))
                 + _grid("c", (0.1, 0.2, 0.6)))
    past = _file(tmp_path / "e.json", "rate-edges", [
        ({"sweep": "selection-rates", "kind": "a", "lr": 3e-2, "seed": 0},
         {"val_acc": 0.8}),                     # better past the edge: not bracketed
        ({"sweep": "selection-rates", "kind": "b", "lr": 3e-2, "seed": 0},
         {"val_acc": 0.5}),                     # worse: bracketed
        ({"sweep": "selection-rates", "kind": "c", "lr": 3e-2, "seed": 0},
         {"val_acc": None}),                    # diverged: no better, bracketed
        ({"sweep": "f3", "kind": "a", "lr": 3e-2, "seed": 0}, {"val_acc": 1.0})])
    got = {c.model.params["kind"]: c for c in checks("selection-rates", grid, past)}
    assert set(got) == {"a", "b", "c"}
    assert not got["a"].bracketed and got["a"].gain == pytest.approx(0.2)
    assert got["b"].bracketed and got["b"].gain == pytest.approx(-0.1)
    assert got["c"].bracketed and got["c"].past_lr == 3e-2


def test_the_plan_runs_seed_0_of_audited_sweeps_past_their_grid():
    spec = sweep()
    assert spec.name == "rate-edges" and len(spec.cells) == len(PLAN) > 0
    for name, params in PLAN:
        assert name in AUDITED and name not in EXTERNAL and name != "f8"
        assert params["seed"] == 0
        grid = {c["lr"] for c in get_spec(name).cells
                if c.get("seed") == 0 and isinstance(c.get("lr"), float)}
        assert len(grid) >= 3
        if name in GROWN or (name, params["lr"]) in TAKEN_IN:   # grew to take it in
            assert params["lr"] in grid, (name, params)
        else:
            assert params["lr"] > max(grid) or params["lr"] < min(grid), (name, params)
        # The model itself is one of its sweep's: the same parameters but the rate.
        rest = {k: v for k, v in params.items() if k != "lr"}
        assert any({k: v for k, v in c.items() if k not in ("lr", "out")} == rest
                   for c in get_spec(name).cells), (name, params)
    with pytest.raises(ValueError, match="seed"):
        sweep(seeds=(0, 1))



def test_every_model_at_an_edge_of_the_stored_grids_has_its_run_past_it_planned():
    """Each audited sweep's models at an edge of the book's grid (but for those checked
    elsewhere, or whose grid grew in place) have a PLAN row one grid step past it: the
    GPU probe's too, planned on the CPU."""
    from phaselib.rate_edges import _key, past_edge
    planned = {(name, _key(p), p["lr"]) for name, p in PLAN}
    missing = [(m.sweep, m.params, past_edge(m)) for name in AUDITED
               if name not in EXTERNAL and name not in GROWN and name != "f8"
               for m in audit(name) if m.edge
               and (name, _key(m.params), past_edge(m)) not in planned]
    assert not missing, missing
    assert sum(name == "mqar-probe" for name, _ in PLAN) == 3


def test_the_sentence_says_what_the_check_found(tmp_path):
    grid = _file(tmp_path / "s.json", "selection-rates",
                 _grid("a", (0.1, 0.2, 0.6)) + _grid("b", (0.1, 0.7, 0.6)))
    past = tmp_path / "e.json"

    def said(score):
        _file(past, "rate-edges", [({"sweep": "selection-rates", "kind": "a",
                                     "lr": 3e-2, "seed": 0}, {"val_acc": score})])
        return sweep_edges("selection-rates", grid, past)

    held = said(0.5)
    assert len(held.models) == 2 and len(held.at_edge) == 1 and not held.loose
    assert "it did no better on validation accuracy" in held.sentence()
    loose = said(0.9)
    assert [c.model.params["kind"] for c in loose.loose] == ["a"]
    text = loose.sentence()
    assert "kind a: 0.9 at 0.03 against 0.6 at 0.01" in text
    assert "does not bracket" in text
    inside = sweep_edges("selection-rates",
                         _file(tmp_path / "i.json", "selection-rates",
                               _grid("b", (0.1, 0.7, 0.6))), past)
    assert not inside.at_edge and "inside its grid" in inside.sentence()
    untried = sweep_edges("selection-rates", grid, tmp_path / "missing.json")
    assert not untried.checks and "no rate past the edge was tried" in untried.sentence()


def test_every_sweep_that_chooses_among_rates_is_audited():
    # A sweep whose stored seed-0 cells hold some model at three or more rates chooses
    # a rate, so the audit must read it (the checks past the edge are not such sweeps).
    from phaselib.sweep import SWEEPS, load_sweep

    choosing = set()
    for name in SWEEPS:
        if name in ("rate-edges", "mqar-edges"):
            continue
        try:
            cells = load_sweep(get_spec(name).out).cells(seed=0)
        except FileNotFoundError:
            continue
        grids = {}
        for c in cells:
            if isinstance(c.params.get("lr"), float):
                rest = json.dumps({k: v for k, v in c.params.items() if k != "lr"},
                                  sort_keys=True)
                grids.setdefault(rest, set()).add(c.params["lr"])
        if any(len(g) >= 3 for g in grids.values()):
            choosing.add(name)
    assert len(choosing) >= 10 and choosing <= set(AUDITED), choosing - set(AUDITED)


def test_the_sentence_names_the_models_better_past_the_edge_by_most(tmp_path):
    kinds = "abcde"
    grid = _file(tmp_path / "s.json", "selection-rates",
                 [row for k in kinds for row in _grid(k, (0.1, 0.2, 0.5))])
    past = _file(tmp_path / "e.json", "rate-edges", [
        ({"sweep": "selection-rates", "kind": k, "lr": 3e-2, "seed": 0},
         {"val_acc": 0.5 + 0.05 * (j + 1)}) for j, k in enumerate(kinds)])
    text = sweep_edges("selection-rates", grid, past).sentence()
    assert "all 5 did better" in text and "and 2 more, by less" in text
    assert "kind e:" in text and "kind c:" in text and "kind b:" not in text
