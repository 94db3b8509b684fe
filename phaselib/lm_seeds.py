"""More seeds for the one part of a Part IV verdict that three left unsettled:
`python -m phaselib.sweep lm-seeds`.

Book: Part IV, "The phase-transport language model", the verdict on "without quadratic
attention" (claim `phase-lm-without-attention`). Its rule has one part per length: per
seed, the stronger transformer's held-out loss (table or rotary, whichever is lower in
that seed) minus the attention-free phase model's, after `LONG_STEPS` steps at
`LONG_LR`, equal steps; the control is the windowed phase model on the same instrument.
At T = 1024 the interval over the lm sweep's three seeds straddles the threshold once
the rotary baseline's cells were re-run from a clean commit, so that part is
inconclusive. The rule for that case is to run more seeds or to say inconclusive.

AMENDMENT, fixed before any of its runs: the T = 1024 part is judged on five seeds,
the lm sweep's 0, 1, 2 and this sweep's `SEEDS`, with the same effect, threshold and
control; the four models the part reads run at those seeds with the lm sweep's cell
function and parameters (its results file stays as it is). Whatever the five-seed
verdict, it stands: no further seeds under this amendment. The T = 64 part keeps its
three seeds (its interval lies short of the threshold by more than its width).
"""

from __future__ import annotations

from .lm_sweep import LONG_LR, LONG_STEPS, run_cell

__all__ = ["SEEDS", "MODELS", "BLOCK", "OUT", "AMENDMENT", "cells", "sweep"]

SEEDS = (3, 4)
BLOCK = 1024
# The two transformers (the stronger one per seed is the baseline), the attention-free
# phase model (the claim) and the windowed one (the control).
MODELS = ("transformer", "transformer-rope", "phase", "phase-window")
OUT = "book/part4/results/lm_seeds.json"
AMENDMENT = {"claim": "phase-lm-without-attention", "part": f"T = {BLOCK}",
             "seeds": (0, 1, 2) + SEEDS, "registered": "2026-12-07"}


def cells(seeds=SEEDS) -> list[dict]:
    """The sweep's cells: each of MODELS at BLOCK, LONG_STEPS[BLOCK] steps at LONG_LR,
    equal steps, at each of `seeds`, with the lm sweep's parameters (so a cell here
    and the lm sweep's cell of the same model at seed 0 differ by the seed alone)."""
    return [{"variant": v, "block": BLOCK, "seed": int(s), "budget": "steps",
             "lr": LONG_LR, "base_steps": LONG_STEPS[BLOCK]}
            for s in seeds for v in MODELS]


def sweep(seeds=SEEDS):
    """Sweep `lm-seeds` (about 45 CPU-minutes: a cell takes 4 to 7 minutes on one
    thread)."""
    from .sweep import SweepSpec

    return SweepSpec("lm-seeds", OUT, cells(seeds), run_cell,
                     "Part IV: seeds 3 and 4 of the models the long-context part of "
                     "'without quadratic attention' reads")
