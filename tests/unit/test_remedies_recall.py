"""The recall column: best rates, paired effects, the rule's verdicts, the table."""

import numpy as np
import pytest

from phaselib.remedies.mqar import LRS
from phaselib.remedies.mqar_sweeps import (ABLATION_MODELS, ABLATION_RULE, BINDING_GRIDS,
                                           LONG_MODELS, LONG_RULE, REACH_RULE,
                                           RECALL_RULE)
from phaselib.remedies.recall import (COLUMN, PHASE_ENTRANT, ROW_ENTRANT, ablation,
                                      at_steps, best_rate_results, long_budget, rate_edges,
                                      reach, recall_column, recall_rows)
from phaselib.remedies.table import load_table, table_html, with_column
from phaselib.sweep.store import StoredCell


def _cell(model, seed, lr, acc, val_acc=None, dirty=False, far=None, near=None):
    return StoredCell({"model": model, "seed": seed, "lr": lr if seed == 0 else "best"},
                      {"lr": lr, "acc": acc, "val_acc": acc if val_acc is None
                       else val_acc, "acc_far": acc if far is None else far,
                       "acc_near": acc if near is None else near},
                      "abc1234", dirty, "2026-12-06T00:00:00", {})


def _entrant(model, accs, best=3e-3, other=0.25, far=None, near=None, rates=LRS):
    """Seed 0 at every rate of `rates` (the best one scores accs[0]), seeds 1.. at the
    best; `far`, `near`: the far- and near-query accuracy per seed (default: accs)."""
    far = accs if far is None else far
    near = accs if near is None else near
    cells = [_cell(model, 0, lr, accs[0] if lr == best else other,
                   far=far[0] if lr == best else other,
                   near=near[0] if lr == best else other) for lr in rates]
    return cells + [_cell(model, s, best, a, far=far[s], near=near[s])
                    for s, a in enumerate(accs) if s]


BINDING = (_entrant("fused-conv", [0.99, 0.98, 0.99])
           + _entrant("fused", [0.25, 0.26, 0.25], best=1e-3, other=0.2,
                      rates=BINDING_GRIDS["fused"])
           + _entrant("linear-conv", [0.48, 0.22, 0.25], best=1e-2,
                      rates=BINDING_GRIDS["linear-conv"]))


def test_best_rate_results_take_each_entrant_at_its_seed0_best_rate():
    runs = best_rate_results(BINDING + [_cell("half", 0, 1e-3, 0.9)], BINDING_GRIDS)
    assert runs["fused-conv"][2]["acc"] == 0.99 and runs["fused-conv"][0]["lr"] == 3e-3
    assert runs["linear-conv"][0]["lr"] == 1e-2 and runs["fused"][0]["lr"] == 1e-3
    assert "half" not in runs                     # one rate of three: not chosen yet
    # mqar-binding's cells are each model at its best of its own grid (BINDING_GRIDS);
    # read against LRS alone, a model whose grid grew is not chosen yet.
    plain = best_rate_results(BINDING)
    assert "fused" not in plain and plain.keys() < runs.keys()
    with pytest.raises(ValueError, match="clean tree"):
        best_rate_results([_cell("fused", 0, 1e-3, 0.3, dirty=True)])


def test_rows_are_judged_by_the_registered_rule_against_the_reference():
    recall = (_entrant("mqa-conv", [0.98, 0.99, 0.97])        # keeps it
              + _entrant("ssm-conv", [0.25, 0.24, 0.26], other=0.2)   # loses it
              + _entrant("window-conv", [0.95, 0.30, 0.60])   # straddles
              + _entrant("gqa-conv", [0.9, 0.9]))             # seed 2 missing
    rows = recall_rows(BINDING, recall)
    assert set(rows) == set(ROW_ENTRANT)
    np.testing.assert_allclose(rows["ssm"].effect.values, [0.74, 0.74, 0.73])
    assert rows["ssm"].judgement.verdict == "supported"
    assert [r["acc"] for r in rows["ssm"].runs] == [0.25, 0.24, 0.26]
    assert rows["mqa"].judgement.verdict == "refuted"
    assert rows["window"].judgement.verdict == "inconclusive"
    assert not rows["gqa"].measured and not rows["sinks"].measured
    assert rows["fused"].judgement is None and rows["fused"].measured
    col = recall_column(rows)
    assert col["ssm"].verdict == "makes worse" and col["mqa"].verdict == "no effect"
    assert col["window"].verdict == "inconclusive"
    assert col["gqa"].verdict == "not measured"
    assert col["fused"].basis == "construction"
    assert "0.25 of the queries against attention's 0.99" in col["ssm"].note
    assert RECALL_RULE["cells"]["supported"] == "makes worse"


def test_a_failed_control_leaves_a_kept_recall_inconclusive():
    weak = [c for c in BINDING if c.params["model"] != "fused"]
    weak += _entrant("fused", [0.95, 0.96, 0.97],     # no planted loss to detect
                     rates=BINDING_GRIDS["fused"])
    rows = recall_rows(weak, _entrant("mqa-conv", [0.98, 0.99, 0.97]))
    assert rows["mqa"].judgement.verdict == "inconclusive"
    with pytest.raises(ValueError, match="reference"):
        recall_rows([], _entrant("mqa-conv", [0.98, 0.99, 0.97]))


def test_the_column_joins_the_table_and_renders():
    t = load_table()
    rows = recall_rows(BINDING, _entrant("ssm-conv", [0.25, 0.24, 0.26], other=0.2))
    t2 = with_column(t, *COLUMN, recall_column(rows))
    assert list(t2.cols)[-1] == "R" and len(t2.cells) == len(t.cells) + len(t.rows)
    h = table_html(t2, "book/part3/remedies")
    assert h.count('data-verdict="makes worse"') >= 1 + sum(
        c.verdict == "makes worse" for c in t.cells.values())
    with pytest.raises(ValueError, match="new column"):
        with_column(t2, *COLUMN, recall_column(rows))
    col = recall_column(rows)
    del col["ssm"]
    with pytest.raises(ValueError, match=r"missing \['ssm'\]"):
        with_column(t, *COLUMN, col)


def test_the_column_links_to_a_section_of_the_chapter():
    from pathlib import Path

    from phaselib.remedies.recall import CHAPTER, LABEL

    nb = Path(__file__).resolve().parents[2] / f"{CHAPTER}.ipynb"
    assert f"({LABEL})=" in nb.read_text(encoding="utf-8")


def test_phase_models_are_judged_by_the_same_rule_and_the_reach_by_its_own():
    recall = (_entrant("window-only-conv", [0.6, 0.62, 0.58], far=[0.02, 0.03, 0.02])
              + _entrant("phase-window-conv", [0.8, 0.78, 0.83], far=[0.5, 0.45, 0.55]))
    rows = recall_rows(BINDING, recall, entrants=PHASE_ENTRANT)
    assert set(rows) == set(PHASE_ENTRANT) and not rows["phase"].measured
    assert rows["window-only"].judgement.verdict == "supported"   # loses recall
    assert reach(BINDING, recall[:6]) is None                    # an arm not run yet
    effect, control, j = reach(BINDING, recall)
    np.testing.assert_allclose(effect.values, [0.48, 0.42, 0.53])
    np.testing.assert_allclose(control.values, [0.97, 0.95, 0.97])
    assert j.verdict == "supported" and REACH_RULE["entrant"] == "phase-window-conv"
    # the pyramid adding nothing beyond the window: refuted, the control passing
    flat = (_entrant("window-only-conv", [0.6, 0.62, 0.58], far=[0.02, 0.03, 0.02])
            + _entrant("phase-window-conv", [0.6, 0.6, 0.6], far=[0.03, 0.02, 0.04]))
    assert reach(BINDING, flat)[2].verdict == "refuted"


def test_the_ablation_judges_each_part_against_the_cost_it_takes_apart():
    """The pyramid alone costs the near lookup, the slots alone do not, the gain gives
    it back, and with the gain the far queries are no better than the window's."""
    far = dict(far=[0.02, 0.03, 0.02], other=0.05)
    recall = (_entrant("window-only-conv", [0.4, 0.4, 0.4], near=[0.7, 0.72, 0.71], **far)
              + _entrant("phase-window-conv", [0.15] * 3, near=[0.22, 0.2, 0.23], **far))
    abl = (_entrant("phase-window-noslots-conv", [0.2] * 3, near=[0.25, 0.2, 0.3], **far)
           + _entrant("window-slots-conv", [0.4] * 3, near=[0.7, 0.71, 0.72], **far)
           + _entrant("phase-window-ls-conv", [0.4] * 3, near=[0.69, 0.72, 0.7], **far))
    res = ablation(BINDING, recall, abl)
    assert set(res) == set(ABLATION_RULE["comparisons"])
    verdicts = {k: v[2].verdict for k, v in res.items()}
    assert verdicts == {"pyramid": "supported", "slots": "refuted", "gain": "supported",
                        "reach": "refuted"}, verdicts
    np.testing.assert_allclose(res["pyramid"][0].values, [0.45, 0.52, 0.41])
    np.testing.assert_allclose(res["gain"][1].values, [0.48, 0.52, 0.48])  # the control
    np.testing.assert_allclose(res["reach"][1].values, [0.97, 0.95, 0.97])
    # an arm not run yet: that comparison has no verdict, the others keep theirs
    part = ablation(BINDING, recall, [c for c in abl
                                      if c.params["model"] != "window-slots-conv"])
    assert part["slots"] is None and part["pyramid"][2].verdict == "supported"
    # the cost gone from the full model: nothing left to take apart, no verdict
    gone = recall[:5] + _entrant("phase-window-conv", [0.4] * 3, near=[0.7, 0.72, 0.71],
                                 other=0.05)
    assert ablation(BINDING, gone, abl)["slots"][2].verdict == "inconclusive"
    every = {m for c in ABLATION_RULE["comparisons"].values() for m in c[:2]}
    assert set(ABLATION_MODELS) <= every


def test_rate_edges_flag_a_rate_past_the_grid_that_does_better():
    grid = (_entrant("window-only-conv", [0.4] * 3, best=1e-2, other=0.1)
            + _entrant("phase-conv", [0.15] * 3, best=1e-3, other=0.05))
    edge = [_cell("window-only-conv", 0, 3e-2, 0.7), _cell("window-only-conv", 0, 3e-4, 0.1),
            _cell("phase-conv", 0, 3e-4, 0.2), _cell("phase-conv", 0, 3e-2, 0.0),
            _cell("not-in-grid", 0, 3e-4, 0.9)]
    res = rate_edges(grid, edge)
    assert set(res) == {"window-only-conv", "phase-conv"}
    w, p = res["window-only-conv"], res["phase-conv"]
    assert (w.best_lr, w.best_val, w.beyond) == (1e-2, 0.4, {3e-2: 0.7, 3e-4: 0.1})
    assert not w.bracketed                      # 0.7 > 0.4 + 0.10
    assert p.bracketed                          # 0.2 is within the margin of 0.15
    with pytest.raises(ValueError, match="clean tree"):
        rate_edges(grid, [_cell("phase-conv", 0, 3e-4, 0.2, dirty=True)])


def _long(model, near, far=None, lr=3e-3):
    return [StoredCell({"model": model, "seed": s, "lr": "best", "steps": 1200},
                       {"lr": lr, "acc": n, "val_acc": n, "acc_near": n,
                        "acc_far": n if far is None else far[s]},
                       "abc1234", False, "2026-12-06T00:00:00", {})
            for s, n in enumerate(near)]


def test_twice_the_steps_is_judged_against_the_cost_at_the_first_budget():
    """Given twice the steps the plain model catches up (cost refuted), so the gain's
    effect is gone; the gained model keeps a gap; nothing reaches past the window."""
    far = dict(far=[0.02, 0.03, 0.02], other=0.05)
    recall = (_entrant("window-only-conv", [0.4] * 3, near=[0.7, 0.72, 0.71], **far)
              + _entrant("phase-window-conv", [0.15] * 3, near=[0.22, 0.2, 0.23], **far))
    abl = _entrant("phase-window-ls-conv", [0.4] * 3, near=[0.57, 0.6, 0.55], **far)
    long = (_long("window-only-conv", [0.9, 0.92, 0.91], lr=1e-2)
            + _long("phase-window-conv", [0.88, 0.9, 0.9])
            + _long("phase-window-ls-conv", [0.6, 0.62, 0.58]))
    res = long_budget(BINDING, recall, abl, long)
    assert set(res) == set(LONG_RULE["comparisons"])
    verdicts = {k: v[2].verdict for k, v in res.items()}
    assert verdicts == {"cost": "refuted", "gain": "refuted",
                        "remaining": "supported", "reach": "refuted",
                        "reach-plain": "refuted"}, verdicts
    np.testing.assert_allclose(res["remaining"][0].values, [0.3, 0.3, 0.33])
    np.testing.assert_allclose(res["cost"][1].values, [0.48, 0.52, 0.48])  # 600 steps
    assert "at 1200 steps" in res["cost"][0].name
    assert long_budget(BINDING, recall, abl, long[:8])["reach"] is None   # a seed missing
    assert set(at_steps(long + abl, 1200)) == {f"{m}@1200" for m in LONG_MODELS}
    mixed = long + [StoredCell({"model": "phase-window-conv", "seed": 3, "steps": 1200},
                               {"lr": 1e-2}, "abc1234", False, "", {})]
    with pytest.raises(ValueError, match="more than one rate"):
        at_steps(mixed, 1200)
    dirty = [StoredCell({"model": "phase-window-conv", "seed": 0, "steps": 1200},
                        {"lr": 1e-2}, "abc1234", True, "", {})]
    with pytest.raises(ValueError, match="clean tree"):
        at_steps(dirty, 1200)


def test_the_long_budget_judges_every_seed_its_arms_ran():
    """Five seeds at the longer budget against a control of three: the effect is paired
    over all five; two seeds of an arm are not enough."""
    far = dict(far=[0.02, 0.03, 0.02], other=0.05)
    recall = (_entrant("window-only-conv", [0.4] * 3, near=[0.7, 0.72, 0.71], **far)
              + _entrant("phase-window-conv", [0.15] * 3, near=[0.22, 0.2, 0.23], **far))
    abl = _entrant("phase-window-ls-conv", [0.4] * 3, near=[0.57, 0.6, 0.55], **far)
    long = (_long("window-only-conv", [0.9, 0.92, 0.91, 0.9, 0.88], lr=1e-2)
            + _long("phase-window-conv", [0.3, 0.2, 0.25, 0.22, 0.21])
            + _long("phase-window-ls-conv", [0.8, 0.8, 0.79, 0.81, 0.8]))
    res = long_budget(BINDING, recall, abl, long)
    assert res["cost"][0].n == 5 and res["cost"][1].n == 3
    np.testing.assert_allclose(res["remaining"][0].values, [0.1, 0.12, 0.12, 0.09, 0.08])
    two = [c for c in long if c.params["seed"] < 2]
    assert long_budget(BINDING, recall, abl, two)["cost"] is None
