"""Seed sweeps that pick up where they stopped, and a check that they still reproduce:
`python -m phaselib.sweep NAME` and `python -m phaselib.sweep verify NAME`.

A sweep is a list of cells (dicts of parameters, each with a seed) and a function that
runs one cell and returns a JSON-able dict of results. The chapters' sweeps are named in
`SWEEPS`; each maps to a function `sweep(seeds=...) -> SweepSpec` in the module that owns
the experiment. Running a sweep writes its results file after every cell (atomically),
so an interrupted run loses at most the cell in progress. Running the same command again
skips the finished cells, re-runs the failed and missing ones, and says which; a cell
computed at another git commit (or from a dirty tree) is flagged, and re-run with
--rerun-stale (or, for the cells a file's legacy_dirty record counts, --rerun-legacy),
never mixed in silently. A results file in the book is written only from
a clean working tree (or with --allow-dirty, which marks the cells). `verify` re-runs
the cheapest cells at HEAD and compares them with the stored numbers. Chapters read the
file with `load_sweep(path).results(...)`.

    python -m phaselib.sweep --list
    python -m phaselib.sweep f6 [--seeds 0 1 2] [--out FILE] [--rerun-stale] [--force]
    python -m phaselib.sweep all
    python -m phaselib.sweep verify f6 [--cells K] [--only KEY=VALUE]
    python -m phaselib.sweep verify all          # one cell of every sweep (CI)
    python -m phaselib.sweep merge NAME PART.json ... [--out FILE]   # parallel parts

Modules: `core` (cells, running), `store` (the results file: reading back, merging),
`verify` (re-run and compare), `cli`.
"""

from .cli import main
from .core import (SWEEPS, TIMING_KEYS, SweepSpec, cell_key, get_spec, is_stale,
                   run_sweep, select_cells)
from .store import FORMAT, StoredCell, SweepResults, load_sweep, merge_sweep_files
from .verify import CellCheck, Mismatch, cheapest_cells, compare_results, verify_sweep

__all__ = ["SweepSpec", "SWEEPS", "FORMAT", "TIMING_KEYS", "get_spec", "select_cells",
           "run_sweep", "load_sweep", "merge_sweep_files", "SweepResults", "StoredCell",
           "cell_key", "is_stale",
           "compare_results", "cheapest_cells", "verify_sweep", "CellCheck", "Mismatch",
           "main"]
