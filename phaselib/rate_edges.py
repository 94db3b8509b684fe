"""Did each rate grid bracket the rate it chose? (`python -m phaselib.sweep
rate-edges`).

Book: Part V, "The claims ledger", section "Rates at the grid's edge", and the chapters
whose comparisons rest on a rate grid. The rule (`phaselib.claims`, `phaselib.rates`)
gives each compared model its best of at least three learning rates, chosen on a
validation split. A best rate at an end of the grid is not shown to be the best: a rate
one grid step past that end might do better, and a comparison would then hold the model
below its best.

`audit` reads a rate-choosing sweep's seed-0 cells and finds, per model (its parameters
other than the rate and the seed), the best rate and whether it lies at an edge of the
grid. Sweep `rate-edges` runs, for every model whose best lay at an edge when PLAN was
fixed (2026-12-07, stop 49, before its runs), that model's seed 0 at one grid step past
the edge, with the cell function of the model's own sweep. `checks` sets each such
model's rate past the edge beside its grid's best: a model is bracketed when the rate
past the edge does no better on the sweep's validation score. A check of the grid on
one seed, not a verdict. Part III's MQAR models have their own check (`mqar-edges`,
EXTERNAL), which `checks` reads the same way; F8's product task extended its grid in
place, and so did F1's and F3's, slots-rates, the selection sweeps, F7's tag and
chain sweeps and Part III's binding test after their checks here (GROWN); the
language-model sweep `lm` and the GPU probe `mqar-probe` (its checks run on the CPU)
joined PLAN later, and so did F8's two router sweeps, `f8-switch` and `f8-balance`
(each row's comment dates it; PLAN_ADDED is the latest).
"""

from __future__ import annotations

from dataclasses import dataclass

from .rates import step_past

__all__ = ["AUDITED", "EXTERNAL", "CHAPTERS", "PLAN", "PLAN_FIXED", "PLAN_ADDED",
           "GROWN", "TAKEN_IN",
           "RATE_EDGES_OUT",
           "GridModel", "EdgeCheck", "SweepEdges", "audit", "checks", "past_edge",
           "run_cell", "sweep", "sweep_edges", "model_words"]

RATE_EDGES_OUT = "book/part5/results/rate_edges.json"

# Each rate-choosing sweep: (its validation score, higher is better). The chapters
# choose rates on the same scores (`rates.stored_best_rate` or `rates.best_rows`).
AUDITED = {
    "f1-rates": ("val_score", True),
    "f3": ("val_loss", False),
    "f4": ("val_loss", False),
    "f7": ("val_loss", False),
    "f7-lookup": ("val_loss", False),
    "f7-delay": ("val_loss", False),
    "f7-chain": ("val_loss", False),
    "f7-chain-depth": ("val_loss", False),
    "f8": ("val_mse", False),
    "f8-switch": ("val_mse", False),
    "f8-balance": ("val_mse", False),
    "slots-rates": ("val_acc", True),
    "selection-rates": ("val_acc", True),
    "selection-anneal": ("val_acc", True),
    "long-range": ("val_late", False),
    "lm": ("val_loss", False),
    "mqar-binding": ("val_acc", True),
    "mqar-probe": ("val_acc", True),
    "mqar-recall": ("val_acc", True),
    "mqar-ablation": ("val_acc", True),
    "mqar-start": ("val_acc", True),
}
SCORE_WORDS = {"val_score": "the validation score", "val_loss": "validation loss",
               "val_mse": "validation error", "val_acc": "validation accuracy",
               "val_late": "validation loss late in the sequence"}
# Sweeps whose models are checked past the grid by a sweep of their own.
EXTERNAL = {"mqar-recall": "mqar-edges", "mqar-ablation": "mqar-edges",
            "mqar-start": "mqar-edges"}

PLAN_FIXED = "2026-12-07"
# Sweeps whose grid grew in place after PLAN, taking in the rate PLAN ran past its edge
# (registered in the sweep's module): their PLAN runs stand as the check that prompted
# it, and `checks` no longer reads them (a rate inside the grid is no check of it).
GROWN = ("f1-rates", "f3", "slots-rates", "selection-rates", "selection-anneal",
         "f7-chain", "f7", "mqar-binding")
# PLAN rows whose rate one model's grid then took in (every seed of that model ran at
# it), where the sweep is not in GROWN: its other models' grids did not grow.
TAKEN_IN = (("f8-switch", 0.09),)


def _at(sweep: str, lr: float, models) -> tuple:
    """PLAN's rows: each of `models` (parameters) of `sweep`, seed 0, at rate `lr`."""
    return tuple((sweep, {**m, "seed": 0, "lr": lr}) for m in models)


_SETS = ([1, 3, 12], [1, 4, 16])
_CHAIN = {"depth": 8, "steps": 10000}
_MQAR = {"width": 64, "T": 64, "n_pairs": 4, "steps": 600, "batch": 256}
_PROBE = {"width": 64, "T": 64, "n_pairs": 4, "steps": 2000, "batch": 256,
          "curve_every": 200}
# Fixed before the runs (2026-12-07, stop 49), from the results files at that commit:
# (sweep, the model's parameters with seed 0 and the rate one grid step past the edge
# its best lay at).
PLAN: tuple[tuple[str, dict], ...] = (
    *_at("f1-rates", 0.0007, [{"task": "presence", "tokenization": "characters"},
                              {"task": "reversal", "tokenization": "BPE"},
                              {"task": "reversal", "tokenization": "characters"}]),
    *_at("f3", 0.03, [{"scales": s, "model": m, "steps": 600}
                      for m in ("centroid", "level0", "pyramid", "shift", "transformer")
                      for s in _SETS]),
    *_at("f7", 0.03, [{"depth": d, "variant": v} for d in (2, 4, 8)
                      for v in ("every", "input", "slots")]),
    *_at("f7-delay", 0.0003, [{"depth": 8, "variant": "slots", "steps": 2000,
                               "withhold": 0}]),
    *_at("f7-chain", 0.0003, [{**_CHAIN, "variant": v, "withhold": w}
                              for v, w in (("every", 5000), ("every", 7500),
                                           ("input", 0), ("slots", 0))]),
    *_at("slots-rates", 0.03, [{"variant": v, "task": "first"}
                               for v in ("GRU, matched params",
                                         "hard slots, open start", "window")]),
    *_at("slots-rates", 0.0003, [{"variant": "window + sink", "task": "first"},
                                 {"variant": "window", "task": "switch"}]),
    *_at("slots-rates", 0.03, [{"variant": v, "task": "switch"}
                               for v in ("full attention", "hard slots, open start",
                                         "window + hard slots")]),
    *_at("selection-rates", 0.03, [{"kind": k} for k in ("entmax15", "hard_st",
                                                         "softmax", "sparsemax")]),
    *_at("selection-anneal", 0.03, [{"kind": "softmax", "anneal": a}
                                    for a in ("late_entropy", "temperature")]),
    *_at("long-range", 0.03, [{"variant": "no-slots"}]),
    *_at("long-range", 0.0003, [{"variant": "window-only"}]),
    *_at("mqar-binding", 0.0003, [{"model": "fused", **_MQAR}]),
    *_at("mqar-binding", 0.03, [{"model": m, **_MQAR}
                                for m in ("linear", "linear-conv")]),
    # Added 2026-12-07 (stop 51), before their runs: the language-model sweep's two
    # models at an edge, once left out as too slow (a cell takes four CPU-minutes).
    *_at("lm", 0.0003, [{"variant": v, "budget": "steps", "block": b,
                         "base_steps": 2000}
                        for v, b in (("transformer", 1024), ("phase", 64))]),
    # Added 2026-12-07 (stop 52), before their runs: the GPU probe's three models at an
    # edge, run on the CPU (a cell takes 8 to 25 CPU-minutes). The probe's grid ran on
    # an H200: the same model, data, steps and seed, other arithmetic, so a difference
    # within a run's noise past the edge says little either way.
    *_at("mqar-probe", 0.0003, [{**_PROBE, "model": m} for m in ("fused",
                                                                 "phase-window")]),
    *_at("mqar-probe", 0.03, [{**_PROBE, "model": "linear-conv"}]),
    # Added 2026-12-07 (stop 54), before its run: f8-switch's free arm, whose choice
    # lay at the top of its grown grid (3e-2; its chapter reads that and says so).
    *_at("f8-switch", 0.09, [{"factored": False}]),
    # Added 2026-12-07 (stop 54), before its run: the free arm's grid then grew to 0.09
    # on every seed (its chapter chooses by the mean over seeds, 3e-2, inside it), and
    # seed 0's own choice lies at that new top; one step past it, for this audit.
    *_at("f8-switch", 0.3, [{"factored": False}]),
    # Added 2026-12-08 (stop 55), before their runs: f8-balance's two arms, whose seed-0
    # choices (and the chapter's, by the mean over seeds) lie at the top of the grid,
    # 0.09; its registration took no further step, so this is the audit's check only.
    *_at("f8-balance", 0.3, [{"router": "switch", "factored": f}
                             for f in (False, True)]),
)
# The day the latest row joined PLAN (each added row's comment dates it).
PLAN_ADDED = "2026-12-08"


@dataclass(frozen=True)
class GridModel:
    """One model of a rate-choosing sweep on seed 0: its parameters without the rate,
    the rates tried, the best by the sweep's validation score and its score, and the
    edge it lies at ("low", "high" or None)."""

    sweep: str
    params: dict
    rates: tuple
    best_lr: float
    best_score: float
    edge: str | None


@dataclass(frozen=True)
class EdgeCheck:
    """A model at an edge beside its run one grid step past it: the rate and score
    there, by how much that score beats the grid's best (positive: better past the
    edge) and whether the grid brackets the rate (no better past the edge)."""

    model: GridModel
    past_lr: float
    past_score: float
    gain: float
    bracketed: bool


def _key(params: dict) -> str:
    """A model's identity: its cell key without the rate, the seed and the sweep."""
    from .sweep import cell_key
    return cell_key({k: v for k, v in params.items()
                     if k not in ("lr", "seed", "out", "sweep")})


def audit(name: str, path=None) -> list[GridModel]:
    """Every model of sweep `name` (one of AUDITED) that tried three or more rates on
    seed 0 in its results file (`path`, else the sweep's own), with its best rate and
    the edge it lies at. A cell from a dirty tree raises ValueError."""
    from .rates import rank
    from .sweep import get_spec, load_sweep

    if name not in AUDITED:
        raise ValueError(f"name must be one of {sorted(AUDITED)}, got {name!r}")
    score, higher = AUDITED[name]
    cells = [c for c in load_sweep(path or get_spec(name).out).cells(seed=0)
             if isinstance(c.params.get("lr"), float)]
    if any(c.dirty for c in cells):
        raise ValueError(f"sweep {name!r}: a seed-0 rate cell comes from a dirty tree")
    groups: dict = {}
    for c in cells:
        groups.setdefault(_key(c.params), []).append(c)
    out = []
    for rows in groups.values():
        rates = tuple(sorted(c.params["lr"] for c in rows))
        if len(rates) < 3 or len(set(rates)) != len(rates):
            continue
        best = min(rows, key=lambda c: (rank(c.result.get(score), higher),
                                        c.params["lr"]))
        lr = best.params["lr"]
        edge = "low" if lr == rates[0] else "high" if lr == rates[-1] else None
        params = {k: v for k, v in best.params.items() if k not in ("lr", "out")}
        out.append(GridModel(name, params, rates, lr, float(best.result[score]), edge))
    return sorted(out, key=lambda m: _key(m.params))


def past_edge(model: GridModel) -> float:
    """One grid step past the edge `model`'s best rate lies at (`rates.step_past`)."""
    if model.edge is None:
        raise ValueError(f"model must lie at an edge of its grid, got {model}")
    return step_past(model.rates, model.edge)


def run_cell(sweep: str, **params) -> dict:
    """One cell of `rate-edges`: the model of sweep `sweep` with `params` (seed 0 and a
    rate past its grid), run by that sweep's own cell function."""
    from .sweep import get_spec

    if sweep not in AUDITED:
        raise ValueError(f"sweep must be one of {sorted(AUDITED)}, got {sweep!r}")
    return get_spec(sweep).run(**params)


def sweep(seeds=(0,)):
    """Sweep `rate-edges`: the cells of PLAN (seed 0 only; `seeds` must be (0,))."""
    from .sweep import SweepSpec

    if tuple(seeds) != (0,):
        raise ValueError(f"seeds must be (0,): the check runs seed 0, got {seeds!r}")
    cells = [{"sweep": name, **params} for name, params in PLAN]
    return SweepSpec(name="rate-edges", out=RATE_EDGES_OUT, cells=cells, run=run_cell,
                     description="Every rate-choosing sweep's models whose best rate "
                                 "lay at an edge of the grid, seed 0, one grid step "
                                 "past it")


def checks(name: str, path=None, edge_path=None, models=None) -> list[EdgeCheck]:
    """The models of sweep `name` at an edge of their grid that have a run past it (in
    `rate-edges`, or the sweep named in EXTERNAL), each beside its grid's best.
    `models`: the sweep's `audit`, when the caller has it."""
    from .sweep import get_spec, load_sweep
    from .results_files import results_path

    score, higher = AUDITED[name]
    other = EXTERNAL.get(name)
    src = edge_path or (get_spec(other).out if other else RATE_EDGES_OUT)
    try:
        found = results_path(src)
    except FileNotFoundError:
        return []
    past = [c for c in load_sweep(found).cells(seed=0)
            if (other or c.params.get("sweep") == name)]
    if any(c.dirty for c in past):
        raise ValueError(f"the checks of {name!r} must come from a clean tree")
    by_key: dict = {}
    for c in past:
        by_key.setdefault(_key(c.params), []).append(c)
    out = []
    for m in audit(name, path) if models is None else models:
        if m.edge is None:
            continue
        for c in by_key.get(_key(m.params), []):
            lr = c.params["lr"]
            past_top = lr > m.rates[-1]
            if past_top != (m.edge == "high") or m.rates[0] <= lr <= m.rates[-1]:
                continue
            s = c.result.get(score)
            s = float("nan") if s is None else float(s)
            gain = (s - m.best_score) if higher else (m.best_score - s)
            out.append(EdgeCheck(m, lr, s, gain, not gain > 0))
    return out


# The chapter that reads each audited sweep (for the ledger's links).
CHAPTERS = {
    "f1-rates": "book/part2/f1-tokenization", "f3": "book/part2/f3-multiscale",
    "f4": "book/part2/f4-partitions", "f7": "book/part2/f7-preconditioning",
    "f7-lookup": "book/part2/f7-preconditioning",
    "f7-delay": "book/part2/f7-preconditioning",
    "f7-chain": "book/part2/f7-preconditioning",
    "f7-chain-depth": "book/part2/f7-preconditioning",
    "f8": "book/part2/f8-continuous-decoders",
    "f8-switch": "book/part2/f8-continuous-decoders",
    "f8-balance": "book/part2/f8-continuous-decoders", "slots-rates": "book/part4/slots",
    "selection-rates": "book/part4/selection",
    "selection-anneal": "book/part4/selection",
    "long-range": "book/part4/phase-lm", "lm": "book/part4/phase-lm",
    "mqar-binding": "book/part3/remedies", "mqar-probe": "book/part3/remedies",
    "mqar-recall": "book/part3/remedies",
    "mqar-ablation": "book/part3/remedies", "mqar-start": "book/part3/remedies"}


def model_words(params: dict, keys=None) -> str:
    """A model's parameters as words, without the seed and the rate (only `keys` when
    given): "depth 8, variant every"."""
    return ", ".join(f"{k} {v}" for k, v in params.items()
                     if k not in ("seed", "lr", "out", "sweep")
                     and (keys is None or k in keys))


SHOWN = 3           # the models a sentence names, those better past the edge by most


def _apart(a: float, b: float) -> tuple[str, str]:
    """a and b with the fewest significant digits (four at least) that tell them
    apart."""
    for digits in range(4, 10):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb:
            break
    return sa, sb


def _pair(c: EdgeCheck) -> str:
    """The score past the edge against the grid's best, each with its rate."""
    past, best = _apart(c.past_score, c.model.best_score)
    return f"{past} at {c.past_lr:g} against {best} at {c.model.best_lr:g}"


@dataclass(frozen=True)
class SweepEdges:
    """One audited sweep: its models on seed 0, those at an edge, their checks past it
    and which of those the grid does not bracket."""

    sweep: str
    models: tuple
    at_edge: tuple
    checks: tuple

    @property
    def loose(self) -> tuple:
        return tuple(c for c in self.checks if not c.bracketed)

    @property
    def varying(self) -> tuple:
        """The parameters that tell this sweep's models apart (all, for one model)."""
        keys = {k for m in self.models for k in m.params}
        vary = tuple(sorted(k for k in keys
                            if len({str(m.params.get(k)) for m in self.models}) > 1))
        return vary or tuple(sorted(keys))

    def sentence(self) -> str:
        """What the check says, in one sentence a chapter can glue."""
        n, e, k = len(self.models), len(self.at_edge), len(self.checks)
        if not e:
            return (f"On seed 0, each of the {n} models' best rates lies inside its "
                    "grid, so the grid brackets them all.")
        who = ("the one model" if n == 1 else "both models" if e == n == 2
               else f"all {n} models" if e == n else f"{e} of the {n} models")
        head = f"On seed 0, {who} chose a rate at an edge of the grid; "
        if not k:
            return head + "no rate past the edge was tried for " + (
                "them." if e > 1 else "it.")
        unit = SCORE_WORDS[AUDITED[self.sweep][0]]
        by = EXTERNAL.get(self.sweep, "rate-edges")
        if not self.loose:
            return head + (f"one grid step past it (`{by}`), "
                           + ("none did better" if k > 1 else "it did no better")
                           + f" on {unit}"
                           + (", so the grid brackets "
                              + ("its rate." if k == 1 else "their rates.")
                              if k == e else
                              f" ({e - k} not run), so the grid brackets the rates of "
                              "those run."))
        shown = sorted(self.loose, key=lambda c: -c.gain)[:SHOWN]
        loose = "; ".join(f"{model_words(c.model.params, self.varying)}: {_pair(c)}"
                          for c in shown)
        if len(self.loose) > len(shown):
            loose += f"; and {len(self.loose) - len(shown)} more, by less"
        who = ("it" if k == 1 else f"all {k}" if len(self.loose) == k
               else f"{len(self.loose)} of the {k}")
        which = "those" if len(self.loose) > 1 else "that one"
        return head + (f"one grid step past it (`{by}`), {who} did better on {unit} "
                       f"({loose}), so for {which} the grid does not bracket the rate "
                       "and the comparisons may hold it below its best.")


def sweep_edges(name: str, path=None, edge_path=None) -> SweepEdges:
    """`audit` and `checks` of sweep `name` together."""
    models = audit(name, path)
    return SweepEdges(name, tuple(models), tuple(m for m in models if m.edge),
                      tuple(checks(name, path, edge_path, models)))
