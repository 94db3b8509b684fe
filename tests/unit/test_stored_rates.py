"""The results files the book ships: every cell that ran at "best" used the rate that
seed 0's rate cells choose by validation now (a re-run of seed 0 that moved the choice,
without re-running the other seeds, fails here)."""

import pytest

from phaselib.mode_memory import RATES as SLOTS_RATES
from phaselib.multiscale_runs import F3_RATES
from phaselib.partitions_runs import F4_RATES
from phaselib.preconditioning_runs import CHAIN_RATES
from phaselib.preconditioning_runs import RATES as F7_RATES
from phaselib.rates import best_rows
from phaselib.remedies.mqar import LRS
from phaselib.remedies.mqar_sweeps import BINDING_GRIDS
from phaselib.scale_content_runs import ANNEAL_OUT
from phaselib.scale_content_runs import RATES as SELECTION_RATES
from phaselib.spelling import RATES as F1_RATES
from phaselib.sweep import load_sweep

# sweep results file, validation score, higher is better, rates tried
FILES = {"f1-rates": ("book/part2/results/f1_rates.json", "val_score", True, F1_RATES),
         "f3": ("book/part2/results/f3.json", "val_loss", False, F3_RATES),
         "f4": ("book/part2/results/f4.json", "val_loss", False, F4_RATES),
         "f7-lookup": ("book/part2/results/f7_lookup.json", "val_loss", False, F7_RATES),
         "f7-delay": ("book/part2/results/f7_delay.json", "val_loss", False, F7_RATES),
         "f7-chain": ("book/part2/results/f7_chain.json", "val_loss", False,
                      CHAIN_RATES),
         "selection-rates": ("book/part4/results/selection_rates.json", "val_acc", True,
                             SELECTION_RATES),
         "selection-anneal": (ANNEAL_OUT, "val_acc", True, SELECTION_RATES),
         "slots-rates": ("book/part4/results/slots_rates.json", "val_acc", True,
                         SLOTS_RATES),
         "mqar-binding": ("book/part3/results/mqar_binding.json", "val_acc", True,
                          BINDING_GRIDS),
         "mqar-recall": ("book/part3/results/mqar_recall.json", "val_acc", True, LRS),
         "mqar-ablation": ("book/part3/results/mqar_ablation.json", "val_acc", True,
                           LRS),
         "mqar-start": ("book/part3/results/mqar_start.json", "val_acc", True, LRS)}
NOT_MODEL = {"seed", "lr", "out", "plant"}   # plant: a measurement, not a model


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_best_cell_ran_at_seed_zeros_choice(name):
    path, score, higher, rates = FILES[name]
    cells = load_sweep(path).cells()
    best = [c for c in cells if c.params.get("lr") == "best"]
    assert best, f"{path}: no cell ran at the chosen rate"
    for c in best:
        model = {k: v for k, v in c.params.items() if k not in NOT_MODEL}
        # a cell that chose its rate in another sweep's file (`out`) is checked there
        source = cells if c.params.get("out", path) == path else load_sweep(
            c.params["out"]).cells()
        rate_rows = [{**d.params, **d.result} for d in source
                     if d.params.get("seed") == 0
                     and isinstance(d.params.get("lr"), float)
                     and all(d.params.get(k) == v for k, v in model.items())]
        grid = rates[model["model"]] if isinstance(rates, dict) else rates  # per model
        chosen = best_rows(rate_rows, "seed", score, grid, higher=higher)[0]["lr"]
        assert c.result["lr"] == chosen, (path, c.params, c.result["lr"], chosen)


@pytest.mark.parametrize("which", ["long", "guess"])
def test_every_long_cell_ran_at_its_source_sweeps_choice(which):
    """mqar-long and mqar-guess train at twice the steps at the rate each model's seed
    0 chose at the shorter budget, in the sweep its cell names (`out`)."""
    from phaselib.remedies.mqar_guess import GUESS_MODELS, GUESS_OUT
    from phaselib.remedies.mqar_sweeps import (BINDING_STEPS, LONG_MODELS, LONG_OUT,
                                               LONG_STEPS)

    out, models = {"long": (LONG_OUT, LONG_MODELS),
                   "guess": (GUESS_OUT, GUESS_MODELS)}[which]
    cells = load_sweep(out).cells()
    assert {c.params["model"] for c in cells} == set(models)
    for c in cells:
        assert c.params["steps"] == LONG_STEPS and c.params["lr"] == "best"
        assert c.params["out"] == models[c.params["model"]]
        rows = [{**d.params, **d.result} for d in load_sweep(c.params["out"]).cells()
                if d.params.get("seed") == 0 and isinstance(d.params.get("lr"), float)
                and all(d.params.get(k) == c.params[k]
                        for k in ("model", "width", "T", "n_pairs"))]
        assert {r["steps"] for r in rows} == {BINDING_STEPS}
        chosen = best_rows(rows, "seed", "val_acc", LRS, higher=True)[0]["lr"]
        assert c.result["lr"] == chosen, (c.params, c.result["lr"], chosen)
