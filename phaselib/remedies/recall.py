"""The recall column of the remedies table, judged from mqar-binding and mqar-recall.

Book: Part III, "The remedies, measured", section "What each remedy keeps of recall".
Each row of the table is trained on Zoology's MQAR with the short convolution in front
(`mqar_sweeps.RECALL_MODELS`; linear attention's and attention's own runs are in
`mqar-binding`). A row's effect is the reference's test accuracy (attention with the
convolution) minus the row's, paired per seed on the same test sequences, each entrant
at its seed-0 best rate by validation accuracy. `RECALL_RULE` turns it into the table's
cell: a loss beyond the threshold *makes worse*, one short of it *no effect* (with the
positive control, attention with its convolution minus without it), else
*inconclusive*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..claims.rule import Effect, Judgement, Rule, judge
from ..rates import best_rows
from .mixers import MIXER_LABELS
from .mqar import LRS
from .mqar_sweeps import (ABLATION_RULE, BINDING_GRIDS, EDGE_RULE, LONG_RULE,
                          REACH_RULE, RECALL_RULE)
from .table import Cell

__all__ = ["ROW_ENTRANT", "PHASE_ENTRANT", "COLUMN", "LABEL", "RowRecall",
           "best_rate_results", "recall_rows", "recall_column", "reach", "ablation",
           "RateEdge", "rate_edges", "at_steps", "long_budget"]

# Each row of the remedies table and the entrant that measures its recall.
ROW_ENTRANT = {"fused": "fused-conv", "mqa": "mqa-conv", "gqa": "gqa-conv",
               "window": "window-conv", "sinks": "sinks-conv",
               "landmark": "block-mean-conv", "linear": "linear-conv",
               "fmm": "fmm-band-conv", "cluster": "centroids-conv", "ssm": "ssm-conv"}
# Part IV's models in the same sweep, judged by the same rule (not rows of the table of
# remedies, which are Part III's).
PHASE_ENTRANT = {"phase": "phase-conv", "phase-window": "phase-window-conv",
                 "window-only": "window-only-conv"}
COLUMN = ("R", "Recall (MQAR)")
LABEL = "remedies-recall"          # the section of the chapter that shows the evidence
CHAPTER = "book/part3/remedies"


def best_rate_results(cells, grids: dict | None = None) -> dict:
    """{entrant: {seed: result}} from sweep cells (`Sweep.cells()`), each entrant at
    its seed-0 best rate by validation accuracy of its grid in `grids` ({entrant:
    rates}; BINDING_GRIDS for mqar-binding's cells), else of LRS; an entrant whose
    seed-0 rates are not all finished is left out. Refuses a cell from a dirty tree."""
    cells = list(cells)
    dirty = [c.params for c in cells if c.dirty]
    if dirty:
        raise ValueError(f"cells must come from a clean tree; dirty: {dirty}")
    seed0 = [{**c.params, **c.result} for c in cells if c.params["seed"] == 0]
    out = {}
    for model in sorted({r["model"] for r in seed0}):
        rows = [r for r in seed0 if r["model"] == model]
        grid = (grids or {}).get(model, LRS)
        if sorted(r["lr"] for r in rows) != sorted(grid):
            continue
        lr = best_rows(rows, "model", "val_acc", grid, higher=True)[model]["lr"]
        out[model] = {c.params["seed"]: c.result for c in cells
                      if c.params["model"] == model and c.result["lr"] == lr}
    return out


def _runs(binding_cells, *other_cells) -> dict:
    """{entrant: {seed: result}} of mqar-binding's cells (each model on its own grid,
    BINDING_GRIDS) and of the other MQAR sweeps' cells (on LRS), each entrant at its
    seed-0 best rate; a later sweep's entrant replaces an earlier one of that name."""
    runs = best_rate_results(binding_cells, BINDING_GRIDS)
    for cells in other_cells:
        runs |= best_rate_results(cells)
    return runs


@dataclass(frozen=True)
class RowRecall:
    """One row's recall: its entrant, the seeds, its test accuracy and the
    reference's per seed (arrays), the paired effect and its judgement (None for the
    reference itself, whose effect is zero by construction, and for a row not run),
    and the entrant's result per seed (`runs`, empty for a row not run)."""

    row: str
    entrant: str
    seeds: tuple
    acc: np.ndarray | None
    ref: np.ndarray
    effect: Effect | None
    judgement: Judgement | None
    runs: tuple = ()

    @property
    def measured(self) -> bool:
        return self.acc is not None


def _label(entrant: str) -> str:
    """The entrant's label; "<model>@<steps>" (an arm of mqar-long) names its steps."""
    model, _, steps = entrant.partition("@")
    label = MIXER_LABELS.get(model, model)
    return f"{label} at {steps} steps" if steps else label


def recall_rows(binding_cells, recall_cells, rule: dict = RECALL_RULE,
                entrants: dict = ROW_ENTRANT) -> dict:
    """{row: RowRecall} for every row of `entrants` ({row: entrant}: ROW_ENTRANT, or
    PHASE_ENTRANT for Part IV's models), judged by `rule`. The reference and the
    control come from `binding_cells`; a row whose entrant has not run on every seed of
    the reference is returned unmeasured."""
    runs = _runs(binding_cells, recall_cells)
    ref_name, (ctl, ctl0) = rule["reference"], rule["control"]
    if ref_name not in runs or ctl0 not in runs:
        raise ValueError(f"binding_cells must hold the reference {ref_name!r} and "
                         f"{ctl0!r} at every rate of seed 0")
    seeds = tuple(sorted(runs[ref_name]))
    if len(seeds) < 3:
        raise ValueError(f"the reference must have at least 3 seeds, got {seeds}")
    ref = np.array([runs[ref_name][s]["acc"] for s in seeds])
    control = Effect(f"{_label(ctl)} minus {_label(ctl0)}",
                     tuple(ref - np.array([runs[ctl0][s]["acc"] for s in seeds])),
                     "accuracy")
    out = {}
    for row, entrant in entrants.items():
        have = runs.get(entrant, {})
        if entrant == ref_name or not all(s in have for s in seeds):
            mine = entrant == ref_name
            out[row] = RowRecall(row, entrant, seeds, ref if mine else None, ref, None,
                                 None, tuple(have[s] for s in seeds) if mine else ())
            continue
        acc = np.array([have[s]["acc"] for s in seeds])
        eff = Effect(f"{_label(ref_name)} minus {_label(entrant)}",
                     tuple(ref - acc), "accuracy")
        out[row] = RowRecall(row, entrant, seeds, acc, ref, eff,
                             judge(eff, Rule(rule["threshold"]), control),
                             tuple(have[s] for s in seeds))
    return out


def recall_column(rows: dict, rule: dict = RECALL_RULE) -> dict:
    """{row: Cell} of the recall column from `recall_rows`' result."""
    out = {}
    key = COLUMN[0]
    for row, r in rows.items():
        if r.judgement is not None:
            lo, hi = r.effect.interval()
            verdict = rule["cells"][r.judgement.verdict]
            note = (f"{r.acc.mean():.2f} of the queries against attention's "
                    f"{r.ref.mean():.2f}, with the same short convolution; loss "
                    f"{r.effect.mean:+.2f} ({lo:+.2f} to {hi:+.2f})")
            out[row] = Cell(row, key, verdict, "measured", CHAPTER, LABEL, note)
        elif r.measured:
            out[row] = Cell(row, key, "no effect", "construction", CHAPTER, LABEL,
                            "the same function as the reference: exact attention")
        else:
            out[row] = Cell(row, key, "not measured", "measured", CHAPTER, LABEL,
                            f"{r.entrant} has not run on every seed yet: python -m "
                            f"phaselib.sweep mqar-recall --only model={r.entrant}")
    return out


def _paired(runs: dict, a: str, b: str, metric: str, seeds) -> Effect:
    """a's `metric` minus b's, paired per seed."""
    what = {"acc_far": "far-query accuracy", "acc_near": "near-query accuracy",
            "acc": "accuracy"}[metric]
    return Effect(f"{what}, {_label(a)} minus {_label(b)}",
                  tuple(runs[a][s][metric] - runs[b][s][metric] for s in seeds),
                  "accuracy")


def _judged(runs: dict, effect: tuple, control: tuple, threshold: float):
    """(effect, control, judgement) of two (a, b, metric) comparisons, each paired over
    the seeds both its models ran (the effect's may be more than the control's), or
    None while the control has fewer than 3 seeds or the effect's models have not run
    on every seed of the control."""
    if any(n not in runs for n in {*effect[:2], *control[:2]}):
        return None
    c_seeds = sorted(set(runs[control[0]]) & set(runs[control[1]]))
    e_seeds = sorted(set(runs[effect[0]]) & set(runs[effect[1]]))
    if len(c_seeds) < 3 or not set(c_seeds) <= set(e_seeds):
        return None
    e, c = _paired(runs, *effect, e_seeds), _paired(runs, *control, c_seeds)
    return e, c, judge(e, Rule(threshold), c)


def reach(binding_cells, recall_cells, rule: dict = REACH_RULE):
    """Does the pyramid carry the window's recall beyond its reach? (effect, control,
    judgement) by `rule` (REACH_RULE): the far-query accuracy of rule["entrant"]
    minus rule["baseline"]'s, paired per seed, each at its seed-0 best rate, with the
    control rule["control"] (a minus b) on the same queries. None while an entrant has
    not run on every seed."""
    runs = _runs(binding_cells, recall_cells)
    return _judged(runs, (rule["entrant"], rule["baseline"], "acc_far"),
                   (*rule["control"], "acc_far"), rule["threshold"])


def ablation(binding_cells, recall_cells, ablation_cells,
             rule: dict = ABLATION_RULE) -> dict:
    """Which part of the windowed phase model costs the window its near lookup?
    {name: (effect, control, judgement) or None while an arm has not run on every
    seed} for each comparison of `rule` (ABLATION_RULE), from the cells of
    mqar-binding, mqar-recall and mqar-ablation."""
    runs = _runs(binding_cells, recall_cells, ablation_cells)
    return {name: _judged(runs, comp, rule["controls"][name], rule["threshold"])
            for name, comp in rule["comparisons"].items()}


def at_steps(cells, steps: int) -> dict:
    """{"<model>@<steps>": {seed: result}} of the cells run for `steps` steps (each
    model at one rate, as in mqar-long). Refuses a cell from a dirty tree, and a model
    whose cells ran at more than one rate."""
    cells = [c for c in cells if c.params.get("steps") == steps]
    if any(c.dirty for c in cells):
        raise ValueError("cells must come from a clean tree")
    out = {}
    for c in cells:
        runs = out.setdefault(f"{c.params['model']}@{steps}", {})
        runs[c.params["seed"]] = c.result
    for name, runs in out.items():
        if len({r["lr"] for r in runs.values()}) > 1:
            raise ValueError(f"{name} ran at more than one rate: "
                             f"{sorted({r['lr'] for r in runs.values()})}")
    return out


def long_budget(binding_cells, recall_cells, ablation_cells, long_cells,
                rule: dict = LONG_RULE) -> dict:
    """The windowed model's lookup at twice the steps: {name: (effect, control,
    judgement) or None while an arm has not run on every seed} for each comparison of
    `rule` (LONG_RULE), the arms at rule["steps"] from `long_cells` (mqar-long), the
    controls from the 600-step cells of the other three sweeps."""
    runs = (_runs(binding_cells, recall_cells, ablation_cells)
            | at_steps(long_cells, rule["steps"]))
    return {name: _judged(runs, comp, rule["controls"][name], rule["threshold"])
            for name, comp in rule["comparisons"].items()}


@dataclass(frozen=True)
class RateEdge:
    """One model's rates on seed 0: its best rate of LRS and that rate's validation
    accuracy, the validation accuracy at each rate past the grid (`beyond`: {lr: acc}),
    and whether the grid brackets its rate (no rate beyond it better by more than the
    margin of EDGE_RULE)."""

    model: str
    best_lr: float
    best_val: float
    beyond: dict
    bracketed: bool


def rate_edges(grid_cells, edge_cells, rule: dict = EDGE_RULE) -> dict:
    """{model: RateEdge} for every model of `edge_cells` (mqar-edges) whose seed-0 rates
    of LRS are all in `grid_cells` (mqar-recall and mqar-ablation together). Refuses a
    cell from a dirty tree."""
    best = {m: runs[0] for m, runs in best_rate_results(grid_cells).items() if 0 in runs}
    edge = list(edge_cells)
    if any(c.dirty for c in edge):
        raise ValueError("edge_cells must come from a clean tree")
    out = {}
    for m in sorted({c.params["model"] for c in edge} & set(best)):
        beyond = {c.params["lr"]: c.result["val_acc"] for c in edge
                  if c.params["model"] == m and c.params["seed"] == 0}
        b = best[m]
        out[m] = RateEdge(m, b["lr"], b["val_acc"], beyond,
                          all(v <= b["val_acc"] + rule["margin"] for v in beyond.values()))
    return out
