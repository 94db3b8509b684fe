"""Each compared arm at its best learning rate, chosen on a validation split.

Book: "How to read a verdict" (Part V) states the rule; every sweep that compares
trained models follows it with these functions:

- `best_rows`: of rows that hold each model at every rate tried, the row of each model
  at the rate with the best validation score (ties go to the smaller rate);
- `at_best`: what a chapter reads from such a sweep, each model's rows at seed 0's
  choice, one per seed;
- `rates_then_best`: the cells of a sweep that tries every rate on seed 0 and trains
  the other seeds at seed 0's best rate, the rate cells first;
- `stored_best_rate`: that best rate, read from the sweep's results file by a cell
  whose rate is "best"; `resolve_rate`, what a cell does with its `lr` argument (a rate,
  or "best" and the results file to read it from);
- `grid_growth`: how a grid that did not bracket its choices grew, step by registered
  step (what each chapter whose grid grew tells its reader).

The validation split is never the data a result is reported on: each sweep names its
own (`val_loss`, `val_acc`, `val_mse`) next to the test score.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["best_rows", "at_best", "rates_then_best", "stored_best_rate",
           "resolve_rate", "rank", "mean_best_rate", "step_past", "GridGrowth",
           "grid_growth"]


def _check_rates(rates) -> tuple[float, ...]:
    rates = tuple(rates)
    if len(rates) < 2 or any(not isinstance(r, float) or r <= 0 for r in rates):
        raise ValueError(f"rates must be two or more positive floats, got {rates!r}")
    return rates


def rank(score, higher: bool = False) -> float:
    """A validation score as a number to minimise: -score when higher is better, else
    the score. A rate whose score is missing (None, as a results file stores NaN) or not
    finite, e.g. a run that diverged, ranks after every finite one (inf)."""
    import math

    if score is None or not math.isfinite(float(score)):
        return math.inf
    return -float(score) if higher else float(score)


def mean_best_rate(rows, score: str, *, higher: bool = False, rate: str = "lr") -> float:
    """The rate whose `score`, averaged over the rows run at it (one per seed), is best;
    ties go to the smaller rate. A rate with a diverged run (`rank`: missing or not
    finite) ranks after every rate whose runs all finished. The choice for a chapter
    that reads every seed at one rate chosen by all of them, not by seed 0 alone."""
    by_rate: dict = {}
    for r in rows:
        by_rate.setdefault(r[rate], []).append(rank(r[score], higher))
    if not by_rate:
        raise ValueError("rows must hold at least one run")
    return min(by_rate, key=lambda lr: (sum(by_rate[lr]) / len(by_rate[lr]), lr))


def step_past(rates, edge: str) -> float:
    """One grid step past the `edge` ("high" or "low") of the grid `rates` (the ratio
    of its two rates at that end), rounded to one significant digit: where a grid grows
    when a model's best rate lies at its edge."""
    r = sorted(_check_rates(rates))
    if edge not in ("high", "low"):
        raise ValueError(f"edge must be 'high' or 'low', got {edge!r}")
    lr = r[-1] * r[-1] / r[-2] if edge == "high" else r[0] * r[0] / r[1]
    return float(f"{lr:.1g}")


def best_rows(rows, by, score: str, rates, *, higher: bool = False,
              rate: str = "lr") -> dict:
    """{key: row}: `rows` (dicts, e.g. `SweepResults.results()`) grouped by the values
    of the fields named in `by` (key: their tuple, or the value itself when `by` names
    one field); in each group the row with the best `score` (the highest with `higher`,
    else the lowest; a missing or non-finite score last, as `rank` orders them), ties to
    the smaller rate. Every group must hold each rate of
    `rates` exactly once: a model missing a rate raises ValueError."""
    rates = _check_rates(rates)
    by = (by,) if isinstance(by, str) else tuple(by)
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[f] for f in by), []).append(r)
    out = {}
    for key, rs in groups.items():
        tried = sorted(r[rate] for r in rs)
        if tried != sorted(rates):
            raise ValueError(f"rows must hold {dict(zip(by, key))} at each rate of "
                             f"{rates} once, got {tried}")
        best = min(rs, key=lambda r: (rank(r[score], higher), r[rate]))
        out[key[0] if len(by) == 1 else key] = best
    return out


def at_best(rows, by, score: str, rates, *, higher: bool = False,
            rate: str = "lr") -> dict:
    """{key: [row, ...]}: each model's rows at its chosen rate, one per seed, sorted by
    seed. `rows` are a rate sweep's (`rates_then_best`): every model at every rate of
    `rates` on seed 0, which choose its rate as `best_rows` does, and once on each other
    seed at that rate. Raises ValueError when another seed ran at a different rate (its
    cells were computed before seed 0's choice moved) or twice."""
    by = (by,) if isinstance(by, str) else tuple(by)
    rows = list(rows)
    chosen = best_rows([r for r in rows if r["seed"] == 0], by, score, rates,
                       higher=higher, rate=rate)
    out = {}
    for key, row0 in chosen.items():
        k = key if len(by) > 1 else (key,)
        others = sorted((r for r in rows if r["seed"] != 0
                         and tuple(r[f] for f in by) == k), key=lambda r: r["seed"])
        seeds = [r["seed"] for r in others]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{dict(zip(by, k))}: a seed appears twice in {seeds}")
        moved = [(r["seed"], r[rate]) for r in others if r[rate] != row0[rate]]
        if moved:
            raise ValueError(f"{dict(zip(by, k))}: seed 0 chooses rate {row0[rate]}, but "
                             f"(seed, rate) {moved} ran at another; re-run them")
        out[key] = [row0] + others
    return out


def rates_then_best(base: list[dict], rates, seeds, out: str) -> list[dict]:
    """The cells of a rate-choosing sweep: each of `base` at seed 0 and every rate of
    `rates`, then at every other seed at seed 0's best rate (`{"lr": "best", "out":
    out}`, which the cell resolves with `stored_best_rate`). The rate cells come
    first, so a run finishes them before a cell needs them."""
    rates = _check_rates(rates)
    cells = [c | {"lr": lr, "seed": 0} for c in base for lr in rates]
    return cells + [c | {"lr": "best", "seed": int(s), "out": out}
                    for c in base for s in seeds if s != 0]


def stored_best_rate(out: str, score: str, rates, *, higher: bool = False,
                     defaults: dict | None = None, **model) -> float:
    """The rate of the seed-0 cells of `model` (its parameters, e.g. model="fused",
    width=64) in the results file `out` with the best validation `score` (as
    `best_rows`). A cell that leaves out a parameter of `defaults` ran at that default
    (so a sweep whose cells name `steps` and one whose cells do not can share a cell
    function). Raises RuntimeError when those cells are not all finished."""
    from .sweep import load_sweep

    rates = _check_rates(rates)
    defaults = dict(defaults or {})
    rows = [{**c.params, **c.result} for c in load_sweep(out).cells(seed=0)
            if isinstance(c.params.get("lr"), float)
            and all((defaults | c.params).get(k) == v for k, v in model.items())]
    if sorted(r["lr"] for r in rows) != sorted(rates):
        raise RuntimeError(f"{out}: the seed-0 rate cells of {model} are not all "
                           f"finished (rates {sorted(r['lr'] for r in rows)} of "
                           f"{rates}); run them first")
    return best_rows(rows, "seed", score, rates, higher=higher)[0]["lr"]


def resolve_rate(lr, out: str | None, score: str, rates, *, higher: bool = False,
                 defaults: dict | None = None, **model) -> float:
    """A cell's learning rate: `lr` itself when it is a positive float, or for
    lr="best" the rate `stored_best_rate(out, score, rates, ...)` reads for `model`
    from the results file `out`. Raises ValueError for anything else, or "best"
    without `out`."""
    if lr == "best":
        if out is None:
            raise ValueError("lr='best' needs out, the results file of the rate cells")
        lr = stored_best_rate(out, score, rates, higher=higher, defaults=defaults,
                              **model)
    if not isinstance(lr, float) or lr <= 0:
        raise ValueError(f"lr must be a positive float or 'best', got {lr!r}")
    return lr


@dataclass(frozen=True)
class GridGrowth:
    """How a rate grid grew: the `registered` rates, the first step past them
    (`added`, fixed before it ran: past one end, or one step past each), and
    `next_rate`, the one further step the rule adds only when a model's best sits at
    the first step's end on its side (None when it did not join). `direction` is "up",
    "down" or "both". `before`, `first` and `final`: {model: row}, each model's best on
    the registered grid, on it with the first step, and on the whole grid (as
    `best_rows`)."""

    registered: tuple
    added: tuple
    next_rate: float | None
    direction: str
    before: dict
    first: dict
    final: dict

    @property
    def edges(self) -> tuple:
        """The registered grid's ends the grid grew past."""
        return tuple(e for e, d in ((min(self.registered), "down"),
                                    (max(self.registered), "up"))
                     if self.direction in (d, "both"))

    @property
    def ends(self) -> tuple:
        """The first step's new ends: a model whose best sits at one may add
        next_rate on that side."""
        return tuple(e for e, d in ((min(self.added), "down"), (max(self.added), "up"))
                     if self.direction in (d, "both"))

    @property
    def edge(self) -> float:
        """The registered grid's end the grid grew past (one direction only)."""
        return self._one(self.edges)

    @property
    def far(self) -> float:
        """The first step's far end (one direction only)."""
        return self._one(self.ends)

    def _one(self, values: tuple) -> float:
        if len(values) != 1:
            raise ValueError(f"the grid grew both ways ({values}): name the side")
        return values[0]

    @property
    def at_edge(self) -> list:
        """The models whose best on the registered grid lay at an end it grew past."""
        return [k for k, r in self.before.items() if r["lr"] in self.edges]

    @property
    def at_far(self) -> list:
        """The models whose best with the first step lay at one of its new ends (the
        reason next_rate joined, when it did)."""
        return [k for k, r in self.first.items() if r["lr"] in self.ends]

    @property
    def moved(self) -> list:
        """The models whose choice on the whole grid differs from the registered one
        (the ones whose other seeds had to run again)."""
        return [k for k, r in self.final.items() if r["lr"] != self.before[k]["lr"]]


def grid_growth(rows, by, score: str, registered, added, next_rate=None, *,
                higher: bool = False) -> GridGrowth:
    """How the grid of `rows` (seed 0's rate rows of a sweep, as `best_rows` takes them)
    grew from `registered` by the first step `added` (rates past one end of it, or
    past both) and, when given, `next_rate`. Raises ValueError when a rate of `added`
    lies inside `registered`, when next_rate is not past the first step's grid on a
    side it grew, or when next_rate is given though no model's best with the first
    step sat at that side's new end (the rule would not have added it)."""
    registered, added = _check_rates(registered), tuple(added)
    if not added or any(not isinstance(r, float) or r <= 0 for r in added):
        raise ValueError(f"added must be positive floats, got {added!r}")
    low = [r for r in added if r < min(registered)]
    high = [r for r in added if r > max(registered)]
    if len(low) + len(high) != len(added):
        raise ValueError(f"added {added} must lie past the ends of registered "
                         f"{registered}")
    direction = "both" if low and high else "up" if high else "down"
    rows = list(rows)
    grid = registered + added
    before = best_rows([r for r in rows if r["lr"] in registered], by, score,
                       registered, higher=higher)
    first = best_rows([r for r in rows if r["lr"] in grid], by, score, grid,
                      higher=higher)
    if next_rate is not None:
        side = ("up" if isinstance(next_rate, float) and next_rate > max(grid) else
                "down" if isinstance(next_rate, float) and 0 < next_rate < min(grid)
                else None)
        if side is None or direction not in (side, "both"):
            raise ValueError(f"next_rate must lie one step past {added} on a side the "
                             f"grid grew, got {next_rate!r}")
        end = max(added) if side == "up" else min(added)
        if not any(r["lr"] == end for r in first.values()):
            raise ValueError(f"no model's best sits at {end}: the rule adds no "
                             f"next_rate ({next_rate})")
        grid += (next_rate,)
    final = best_rows(rows, by, score, grid, higher=higher)
    return GridGrowth(registered, added, next_rate, direction, before, first, final)
