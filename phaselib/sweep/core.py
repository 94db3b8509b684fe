"""A sweep's cells and running them (`store` reads and merges their results files).

A sweep is a list of cells (dicts of parameters, each with a seed) and a function that
runs one cell and returns a JSON-able dict of results. Running a sweep writes its
results file after every cell (atomically), so an interrupted run loses at most the cell
in progress; running it again skips the finished cells and re-runs the failed and missing
ones. Each cell records the commit that produced it. A result written into the book must
come from a clean working tree (`provenance.require_clean`): a dirty one is refused
unless `allow_dirty`, and then the cell is marked `allow_dirty: true`. A cell computed
at another commit, or from a dirty tree, is stale: flagged, and re-run with
`rerun_stale`, never mixed in silently.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..provenance import (atomic_write_json, git_commit, machine_info, provenance,
                          require_clean)
from ..results_provenance import cell_record, is_legacy
from .store import FORMAT, _commands, _load_doc, _recount_legacy

__all__ = ["SweepSpec", "SWEEPS", "TIMING_KEYS", "get_spec", "select_cells",
           "run_sweep", "cell_key", "is_stale"]

# name: "module:function" returning a SweepSpec (imported on demand).
SWEEPS: dict[str, str] = {
    "f1": "phaselib.spelling:sweep",
    "f1-rates": "phaselib.spelling:sweep_rates",
    "f3": "phaselib.multiscale_runs:sweep",
    "f3-steps": "phaselib.multiscale_runs:sweep_steps",
    "f4": "phaselib.partitions_runs:sweep",
    "f4-same": "phaselib.partitions_runs:sweep_same",
    "f5": "phaselib.context_collapse:sweep",
    "f5-bombs": "phaselib.engineered_bombs:sweep",
    "f5-history": "phaselib.history:sweep",
    "f6": "phaselib.drift_runs:sweep",
    "f6-context": "phaselib.drift_runs:sweep_context",
    "f7": "phaselib.preconditioning_runs:sweep",
    "f7-lookup": "phaselib.preconditioning_runs:sweep_lookup",
    "f7-lookup-long": "phaselib.preconditioning_runs:sweep_lookup_long",
    "f7-delay": "phaselib.preconditioning_runs:sweep_delay",
    "f7-chain": "phaselib.preconditioning_runs:sweep_chain",
    "f7-chain-depth": "phaselib.preconditioning_runs:sweep_chain_depth",
    "f8": "phaselib.branching_runs:sweep",
    "f8-switch": "phaselib.branching_runs:sweep_switch",
    "f8-balance": "phaselib.branching_balance:sweep_balance",
    "f9": "phaselib.erosion_runs:sweep",
    "f9-minimum": "phaselib.erosion_minimum:sweep",
    "slots-rates": "phaselib.mode_memory:sweep_rates",
    "lm": "phaselib.lm_sweep:sweep",
    "lm-seeds": "phaselib.lm_seeds:sweep",
    "remedies": "phaselib.remedies.tasks:sweep",
    "mqar": "phaselib.remedies.mqar_sweeps:sweep",
    "mqar-pilot": "phaselib.remedies.mqar_sweeps:pilot",
    "mqar-probe": "phaselib.remedies.mqar_sweeps:probe",
    "mqar-binding": "phaselib.remedies.mqar_sweeps:binding",
    "mqar-recall": "phaselib.remedies.mqar_sweeps:recall",
    "mqar-ablation": "phaselib.remedies.mqar_sweeps:ablation",
    "mqar-edges": "phaselib.remedies.mqar_sweeps:edges",
    "mqar-long": "phaselib.remedies.mqar_sweeps:longer",
    "mqar-guess": "phaselib.remedies.mqar_guess:guess",
    "mqar-start": "phaselib.remedies.mqar_start:start",
    "selection": "phaselib.scale_content_runs:sweep",
    "selection-rates": "phaselib.scale_content_runs:sweep_rates",
    "selection-anneal": "phaselib.scale_content_runs:sweep_anneal",
    "selection-lag": "phaselib.content_lag:sweep",
    "long-range": "phaselib.long_range:sweep",
    "long-range-edges": "phaselib.long_range:sweep_edges",
    "predictions": "phaselib.predictions.sweep:sweep",
    "rate-edges": "phaselib.rate_edges:sweep",
}

# Result fields that are measured durations: they differ between runs of the same code,
# so `verify` does not compare them.
TIMING_KEYS = ("seconds", "cpu_seconds", "train_cpu_s", "train_wall_s", "train_s",
               "wall_time_s", "eval_s", "tokens_per_s", "wall_seconds")


@dataclass
class SweepSpec:
    """name; out: the results file (relative to the repository root when run from it);
    cells: one dict of parameters per cell (JSON-able, with a "seed"); run(**cell) -> dict;
    description: one line for --list and the results file.

    How `verify` compares a re-run with the stored result: `rtol`/`atol` (0: equal to the
    bit, for runs that are deterministic on the CPU; otherwise give the reason in
    `tolerance_note`), skipping the result fields named in `volatile` (timings);
    `rerunnable(cell)`, when given, says which stored cells HEAD still holds the inputs
    of (a cell budgeted from a file re-measured since cannot reproduce there), and
    `verify` picks among those."""

    name: str
    out: str
    cells: list[dict]
    run: Callable[..., dict]
    description: str = ""
    rtol: float = 0.0
    atol: float = 0.0
    tolerance_note: str = ""
    volatile: tuple[str, ...] = TIMING_KEYS
    rerunnable: Callable[[dict], bool] | None = None

    def __post_init__(self):
        if not self.cells:
            raise ValueError(f"sweep {self.name!r}: cells must be a non-empty list")
        keys = [cell_key(c) for c in self.cells]
        if len(set(keys)) != len(keys):
            raise ValueError(f"sweep {self.name!r}: two cells have the same parameters")
        if not (self.rtol >= 0 and self.atol >= 0):
            raise ValueError(f"sweep {self.name!r}: rtol and atol must be >= 0, got "
                             f"{self.rtol!r}, {self.atol!r}")
        if (self.rtol or self.atol) and not self.tolerance_note.strip():
            raise ValueError(f"sweep {self.name!r}: a tolerance needs tolerance_note, the "
                             f"reason the run is not reproducible to the bit")


def is_stale(cell: dict, here: dict) -> bool:
    """Whether a stored cell is not known to come from the checkout `here` (a
    `git_commit()` record): computed at another commit, or from a dirty tree while the
    tree is now clean (so that a re-run would give it a commit that reproduces it)."""
    if here.get("commit") is None:
        return False
    if cell.get("git_commit") != here["commit"]:
        return True
    return bool(cell.get("git_dirty")) and here.get("dirty") is False


def cell_key(params: dict) -> str:
    """A cell's identity: its parameters as canonical JSON."""
    if not isinstance(params, dict):
        raise TypeError(f"a cell must be a dict of parameters, got {type(params).__name__}")
    return json.dumps(params, sort_keys=True)


def get_spec(name: str, seeds=None, device: str | None = None) -> SweepSpec:
    """The SweepSpec registered as `name`, built with `seeds` (and `device` if the sweep
    takes one)."""
    if name not in SWEEPS:
        raise ValueError(f"name must be one of {sorted(SWEEPS)}, got {name!r}")
    module, func = SWEEPS[name].split(":")
    fn = getattr(importlib.import_module(module), func)
    kwargs = {}
    params = inspect.signature(fn).parameters
    if seeds is not None:
        kwargs["seeds"] = tuple(int(s) for s in seeds)
    if device is not None:
        if "device" not in params:
            raise ValueError(f"sweep {name!r} does not take a device")
        kwargs["device"] = device
    spec = fn(**kwargs)
    if not isinstance(spec, SweepSpec):
        raise TypeError(f"{SWEEPS[name]} must return a SweepSpec, got {type(spec).__name__}")
    return spec


def select_cells(spec: SweepSpec, only: dict[str, str]) -> SweepSpec:
    """`spec` with only the cells whose parameters match every `only` item (values
    compared as text, e.g. {"block": "1024"}); the results file stays the sweep's own."""
    if not only:
        return spec
    for key in only:
        seen = sorted({str(c[key]) for c in spec.cells if key in c})
        if not seen:
            known = sorted({k for c in spec.cells for k in c})
            raise ValueError(f"only: sweep {spec.name!r} has no parameter {key!r}; "
                             f"its parameters: {known}")
        if str(only[key]) not in seen:
            raise ValueError(f"only: {key}={only[key]} matches no cell of sweep "
                             f"{spec.name!r}; its values: {seen}")
    cells = [c for c in spec.cells
             if all(key in c and str(c[key]) == str(v) for key, v in only.items())]
    if not cells:
        raise ValueError(f"only: {only} together match no cell of sweep {spec.name!r}")
    return dataclasses.replace(spec, cells=cells)


def run_sweep(spec: SweepSpec, *, out: str | Path | None = None, command: str = "",
              force: bool = False, rerun_stale: bool = False,
              rerun_legacy: bool = False, device: str = "cpu",
              allow_dirty: bool = False, log: Callable[[str], None] = print) -> dict:
    """Run the cells of `spec` that are not finished in its results file; returns the
    summary {"ran", "skipped", "failed", "stale", "path"}. The file is rewritten after
    every cell. KeyboardInterrupt saves what is done, prints how to continue, re-raises.
    `rerun_legacy` re-runs the finished cells flagged dirty before the guard (those the
    file's `legacy_dirty` record counts, `results_provenance.is_legacy`) and no others.

    Raises provenance.DirtyTreeError before running anything when the file lies in the
    book and the working tree has uncommitted changes, unless `allow_dirty`."""
    path = Path(out or spec.out)
    command = command or f"python -m phaselib.sweep {spec.name}"
    require_clean(path, allow_dirty)
    doc = _load_doc(path, spec.name) or {"format": FORMAT, "sweep": spec.name, "cells": []}
    doc["description"] = spec.description
    by_key = {c["key"]: c for c in doc["cells"]}
    here = git_commit()
    summary = {"ran": [], "skipped": [], "failed": [], "stale": [], "path": str(path)}

    def save():
        _recount_legacy(doc)
        seeds = sorted({int(c["params"].get("seed", 0)) for c in doc["cells"]})
        doc["provenance"] = provenance(command, seeds, device,
                                       commands=_commands(doc, command))
        doc["commits"] = sorted({str(c.get("git_commit")) for c in doc["cells"]})
        atomic_write_json(path, doc)

    for i, params in enumerate(spec.cells):
        key = cell_key(params)
        old = by_key.get(key)
        stale = old is not None and is_stale(old, here)
        if old is not None and old["status"] == "done" and not force:
            legacy = rerun_legacy and is_legacy(cell_record(old))
            if not (stale and rerun_stale) and not legacy:
                summary["stale" if stale else "skipped"].append(key)
                continue
        log(f"[{spec.name} {i + 1}/{len(spec.cells)}] {key}")
        t0 = time.perf_counter()
        cell = {"key": key, "params": params}
        try:
            cell.update(status="done", result=spec.run(**params))
        except KeyboardInterrupt:
            save()
            log(f"interrupted: finished cells are saved in {path}; continue with:\n"
                f"  {command}")
            raise
        except Exception as e:  # a failed cell is recorded and re-run next time
            cell.update(status="failed", result=None,
                        error=f"{type(e).__name__}: {e}",
                        traceback=traceback.format_exc(limit=-3))
            summary["failed"].append(key)
            log(f"  failed: {cell['error']}")
        else:
            summary["ran"].append(key)
        g = git_commit()
        cell.update(command=command,
                    seconds=round(time.perf_counter() - t0, 3), git_commit=g["commit"],
                    git_dirty=g["dirty"], machine=machine_info(device),
                    created=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
        if g["dirty"]:
            cell["allow_dirty"] = True
        if old is not None:
            doc["cells"][doc["cells"].index(old)] = cell
        else:
            doc["cells"].append(cell)
        by_key[key] = cell
        save()
    if not summary["ran"] and not summary["failed"]:
        save()  # refresh the provenance even when nothing ran
    log(f"{spec.name}: ran {len(summary['ran'])}, skipped {len(summary['skipped'])} finished, "
        f"failed {len(summary['failed'])}, stale {len(summary['stale'])} -> {path}")
    if summary["stale"]:
        log(f"  {len(summary['stale'])} finished cells were computed at another commit or "
            f"from a dirty tree; re-run them with --rerun-stale")
    return summary
