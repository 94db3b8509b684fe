"""Each arm at its best rate by validation: the choice, the cells and the stored read."""

import pytest

from phaselib.rates import (at_best, best_rows, mean_best_rate, rates_then_best,
                            step_past, stored_best_rate)
from phaselib.sweep import SweepSpec, load_sweep, run_sweep

RATES = (1e-3, 3e-3, 1e-2)


def _rows(model, vals, test):
    return [{"model": model, "seed": 0, "lr": lr, "val": v, "test": t}
            for lr, v, t in zip(RATES, vals, test)]


def test_the_best_row_is_chosen_on_validation_not_on_the_reported_score():
    rows = _rows("a", (0.5, 0.2, 0.3), (0.0, 9.0, 9.0)) + _rows("b", (0.1, 0.4, 0.1),
                                                                 (9.0, 0.0, 9.0))
    low = best_rows(rows, "model", "val", RATES)
    assert low["a"]["lr"] == 3e-3                  # not 1e-3, the best test score
    assert low["b"]["lr"] == 1e-3                  # a tie goes to the smaller rate
    high = best_rows(rows, ("model", "seed"), "val", RATES, higher=True)
    assert set(high) == {("a", 0), ("b", 0)}
    assert high["a", 0]["lr"] == 1e-3 and high["b", 0]["lr"] == 3e-3


def test_a_diverged_rate_ranks_after_every_finite_one():
    # A results file stores NaN as null; either must lose, whichever way is better.
    for bad in (None, float("nan"), float("inf")):
        rows = _rows("a", (bad, 0.4, 0.3), (0, 0, 0))
        assert best_rows(rows, "model", "val", RATES)["a"]["lr"] == 1e-2
        assert best_rows(rows, "model", "val", RATES, higher=True)["a"]["lr"] == 3e-3
    rows = _rows("a", (0.3, 0.4, float("nan")), (0, 0, 0))
    assert best_rows(rows, "model", "val", RATES, higher=True)["a"]["lr"] == 3e-3


def test_a_model_missing_or_repeating_a_rate_is_refused():
    rows = _rows("a", (0.5, 0.2, 0.3), (0, 0, 0))
    with pytest.raises(ValueError, match="'model': 'a'.*each rate of"):
        best_rows(rows[:2], "model", "val", RATES)
    with pytest.raises(ValueError, match="each rate of"):
        best_rows(rows + rows[:1], "model", "val", RATES)
    with pytest.raises(ValueError, match="rates must be two or more positive floats"):
        best_rows(rows, "model", "val", (1e-3,))
    with pytest.raises(ValueError, match="rates must be"):
        best_rows(rows, "model", "val", (1e-3, 0))


def test_at_best_keeps_each_models_chosen_seed_zero_row_and_its_other_seeds():
    rows = _rows("a", (0.5, 0.2, 0.3), (1, 2, 3)) + _rows("b", (0.1, 0.4, 0.1), (4, 5, 6))
    rows += [{"model": "a", "seed": s, "lr": 3e-3, "val": 0.0, "test": 10 + s}
             for s in (2, 1)]
    rows += [{"model": "b", "seed": 1, "lr": 1e-3, "val": 0.0, "test": 20}]
    got = at_best(rows, "model", "val", RATES)
    assert [(r["seed"], r["test"]) for r in got["a"]] == [(0, 2), (1, 11), (2, 12)]
    assert [(r["seed"], r["test"]) for r in got["b"]] == [(0, 4), (1, 20)]
    zero = [r for r in rows if r["seed"] == 0]
    two = at_best(zero, ("model", "seed"), "val", RATES, higher=True)   # higher wins
    assert set(two) == {("a", 0), ("b", 0)} and two["a", 0][0]["lr"] == 1e-3
    moved = [r for r in rows if not (r["model"] == "a" and r["seed"] == 1)]
    moved += [{"model": "a", "seed": 1, "lr": 1e-2, "val": 0.0, "test": 0}]
    with pytest.raises(ValueError, match=r"chooses rate 0.003.*\(1, 0.01\)"):
        at_best(moved, "model", "val", RATES)
    with pytest.raises(ValueError, match="appears twice"):
        at_best(rows + rows[-1:], "model", "val", RATES)


def test_rate_cells_come_first_and_other_seeds_ask_for_the_best():
    cells = rates_then_best([{"model": "a"}, {"model": "b"}], RATES, (0, 1, 2), "r.json")
    assert [c["lr"] for c in cells[:6]] == list(RATES) * 2
    assert all(c["seed"] == 0 for c in cells[:6])
    assert cells[6:] == [{"model": m, "lr": "best", "seed": s, "out": "r.json"}
                         for m in "ab" for s in (1, 2)]


def _toy(out):
    # Validation score: model "a" is best at 3e-3, model "b" at 1e-2.
    best = {"a": 3e-3, "b": 1e-2}

    def run(model, seed, lr, out=None):
        if lr == "best":
            lr = stored_best_rate(out, "val", RATES, model=model)
        return {"lr": lr, "val": abs(lr - best[model]) + 0.1 * seed}

    return SweepSpec(name="toy", out=str(out), run=run,
                     cells=rates_then_best([{"model": "a"}, {"model": "b"}], RATES,
                                           (0, 1), str(out)))


def test_a_best_cell_reads_seed_zeros_best_rate_from_the_results_file(tmp_path):
    out = tmp_path / "r.json"
    spec = _toy(out)
    run_sweep(spec, out=out, log=lambda m: None)
    rows = load_sweep(out).results(seed=1)
    assert {r["model"]: r["lr"] for r in rows} == {"a": 3e-3, "b": 1e-2}
    assert stored_best_rate(str(out), "val", RATES, higher=True, model="a") == 1e-2


def test_a_best_cell_before_its_rate_cells_is_refused(tmp_path):
    out = tmp_path / "r.json"
    spec = _toy(out)
    spec.cells = spec.cells[:2] + spec.cells[6:]    # model a lacks its third rate
    summary = run_sweep(spec, out=out, log=lambda m: None)
    assert summary["failed"]
    failed = load_sweep(out).failed()
    assert any("not all finished" in str(c.get("error", "")) for c in failed)


def test_a_cell_that_leaves_a_parameter_out_ran_at_its_default(tmp_path):
    # Two sweeps share a results file's cell function: one names `steps`, one does not.
    # With defaults, the cells without `steps` count as steps=100 and no others do.
    out = tmp_path / "r.json"
    best = {100: 3e-3, 400: 1e-3}

    def run(seed, lr, steps=100, out=None):
        return {"lr": lr, "val": abs(lr - best[steps])}

    cells = ([{"seed": 0, "lr": r} for r in RATES]
             + [{"seed": 0, "lr": r, "steps": 400} for r in RATES])
    run_sweep(SweepSpec(name="toy", out=str(out), run=run, cells=cells), out=out,
              log=lambda m: None)
    d = {"steps": 100}
    assert stored_best_rate(str(out), "val", RATES, steps=100, defaults=d) == 3e-3
    assert stored_best_rate(str(out), "val", RATES, steps=400, defaults=d) == 1e-3
    with pytest.raises(RuntimeError, match="not all finished"):
        stored_best_rate(str(out), "val", RATES, steps=100)    # no default: no cells


def test_resolve_rate_passes_a_rate_and_refuses_anything_else():
    from phaselib.rates import resolve_rate

    assert resolve_rate(3e-3, None, "val", RATES) == 3e-3
    with pytest.raises(ValueError, match="needs out"):
        resolve_rate("best", None, "val", RATES)
    for bad in (0.0, -1e-3, 3, "fast"):
        with pytest.raises(ValueError, match="positive float or 'best'"):
            resolve_rate(bad, None, "val", RATES)


def _grid_rows(best_of):
    """Seed 0's rows of models "a" and "b" at every rate, each scoring best (lowest
    loss) at the rate `best_of` names for it."""
    rates = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    return [{"model": m, "lr": lr, "val_loss": abs(rates.index(lr)
                                                   - rates.index(best_of[m])) + 0.5}
            for m in best_of for lr in rates]


def test_grid_growth_says_which_models_pushed_the_grid_and_which_moved():
    from phaselib.rates import grid_growth

    rows = _grid_rows({"a": 1e-4, "b": 1e-3})
    g = grid_growth(rows, "model", "val_loss", (1e-3, 3e-3, 1e-2), (3e-4,), 1e-4)
    assert g.direction == "down" and g.edge == 1e-3 and g.far == 3e-4
    assert sorted(g.at_edge) == ["a", "b"]          # both chose the registered bottom
    assert g.at_far == ["a"]                        # only a then took the new bottom
    assert g.final["a"]["lr"] == 1e-4 and g.moved == ["a"]


def test_grid_growth_refuses_a_step_the_rule_would_not_have_taken():
    from phaselib.rates import grid_growth

    rows = _grid_rows({"a": 1e-3, "b": 3e-3})
    with pytest.raises(ValueError, match="adds no next_rate"):
        grid_growth(rows, "model", "val_loss", (1e-3, 3e-3, 1e-2), (3e-4,), 1e-4)
    with pytest.raises(ValueError, match="past the ends"):
        grid_growth(rows, "model", "val_loss", (1e-3, 1e-2), (3e-3,))
    with pytest.raises(ValueError, match="on a side the grid grew"):
        grid_growth(rows, "model", "val_loss", (1e-3, 3e-3, 1e-2), (3e-4,), 1e-2)
    # Rows at a rate the growth does not name are refused, not read past.
    with pytest.raises(ValueError, match="each rate of"):
        grid_growth(rows, "model", "val_loss", (1e-3, 3e-3, 1e-2), (3e-4,))


def test_a_grid_that_grew_both_ways_names_each_side():
    from phaselib.rates import grid_growth

    rows = _grid_rows({"a": 1e-2, "b": 3e-4})
    registered = (3e-4, 1e-3, 3e-3)
    g = grid_growth(rows, "model", "val_loss", registered, (1e-4, 1e-2))
    assert g.direction == "both" and g.edges == (3e-4, 3e-3) and g.ends == (1e-4, 1e-2)
    assert sorted(g.at_edge) == ["a", "b"] and g.at_far == ["a"] and g.moved == ["a"]
    with pytest.raises(ValueError, match="both ways"):
        g.far


def test_the_mean_over_seeds_chooses_the_rate_and_ties_go_to_the_smaller():
    rows = [{"lr": 1e-3, "val": 3.0}, {"lr": 1e-3, "val": 3.4},
            {"lr": 1e-2, "val": 3.1}, {"lr": 1e-2, "val": 3.2},
            {"lr": 3e-2, "val": 3.2}]
    assert mean_best_rate(rows, "val") == 1e-2          # means 3.2, 3.15, 3.2
    assert mean_best_rate(rows[:2] + rows[4:], "val") == 1e-3   # 3.2 and 3.2: smaller
    # Higher is better: the means rank the other way round.
    assert mean_best_rate(rows, "val", higher=True) == 1e-3
    # One diverged seed sends its rate after every rate whose runs all finished.
    assert mean_best_rate(rows[:2] + [{"lr": 1e-2, "val": None},
                                      {"lr": 1e-2, "val": 0.1}], "val") == 1e-3
    with pytest.raises(ValueError, match="rows"):
        mean_best_rate([], "val")


def test_one_step_past_a_grid_uses_the_ratio_at_that_end():
    assert step_past((1e-3, 3e-3, 1e-2), "high") == 3e-2      # 1e-2 * 10/3, one digit
    assert step_past((1e-2, 1e-3, 3e-3), "low") == 3e-4       # the order does not matter
    assert step_past((1e-4, 1e-3), "high") == 1e-2
    with pytest.raises(ValueError, match="edge"):
        step_past((1e-3, 1e-2), "up")
    with pytest.raises(ValueError, match="rates"):
        step_past((1e-3,), "high")
