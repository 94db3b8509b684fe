"""Does the code at HEAD still produce the stored numbers? `python -m phaselib.sweep
verify NAME [--cells K]`.

`verify_sweep` re-runs K finished cells of a sweep (the cheapest by their recorded
seconds, unless cells are chosen) with the thread count each cell recorded, and compares
every number of the new result with the stored one: equal to the bit when the sweep's
tolerance is zero (runs that are deterministic on the CPU), else within its `rtol`/`atol`.
Only a CPU of the cell's vector capability and model re-runs it to the bit, so the cells
chosen are the cheapest computed on this CPU (capability and model) where the sweep has
any within the time budget, else the cheapest. A cell from a CPU of another vector
capability or another recorded model that differs is reported (OTHER CPU), with whether
the difference lies within a relative OTHER_MODEL_RTOL, and not counted: a training run
amplifies other kernels' last digits, so on another CPU a change of code cannot be told
from one of the machine, and only `make verify` on a CPU like the one that stored the
cell checks it. A cell whose model was never recorded passes within OTHER_MODEL_RTOL
only. The command's summary says how many sweeps it compared to the bit here and which
it could not compare.
Timings (`SweepSpec.volatile`) are not compared. Nothing is written: the stored file is
the reference. CI verifies one cell of every sweep, so a change that moves a published
number fails there, with the cell and the field that moved, wherever CI's CPU is like
the one that stored the cell.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..provenance import (computed_here, cpu_capability, cpu_model, finite_json,
                          git_commit)
from .core import SweepSpec
from .store import load_sweep

__all__ = ["Mismatch", "CellCheck", "compare_results", "on_cpu", "stored_here",
           "cheapest_cells",
           "verify_sweep", "OTHER_MODEL_RTOL"]

# A cell computed on a CPU of this vector capability but of another model (or before the
# model was recorded) may differ in the last digits: other BLAS kernels round some sums
# differently. Within this relative tolerance the report says so; beyond it (a training
# run that amplified those digits, as between an Intel and an AMD CPU) a change in the
# code cannot be told from one of the machine here. Neither is counted as failed; the
# cell is checked on a CPU like the one that stored it.
OTHER_MODEL_RTOL = 1e-6


@dataclass
class Mismatch:
    """One field of a result that moved: its path (e.g. `curve.3[7]`), the stored and the
    new value, and |new - stored| where both are numbers (None otherwise)."""

    path: str
    stored: object
    new: object
    diff: float | None = None

    def __str__(self) -> str:
        by = f" (|diff| {self.diff:.3g})" if self.diff is not None else ""
        return f"{self.path}: stored {_short(self.stored)}, now {_short(self.new)}{by}"


def _short(v, n: int = 60) -> str:
    text = json.dumps(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare_results(stored, new, *, rtol: float = 0.0, atol: float = 0.0,
                    skip: tuple[str, ...] = (), path: str = "",
                    added: list[str] | None = None) -> tuple[list[Mismatch], float]:
    """Compare two JSON-like results field by field. Returns (the fields that differ
    beyond `atol + rtol * |stored|`, the largest |difference| over all numbers compared).

    Numbers are compared as numbers (an int and the equal float match); None stands for
    a non-finite float on both sides; dict keys named in `skip` are not compared at any
    depth; a stored key the new result lacks, a list of another length or another type
    is a mismatch. A key only the new result has (a field the code records since) is
    not a stored number: its path is appended to `added` when given."""
    out: list[Mismatch] = []
    largest = 0.0
    if isinstance(stored, dict) and isinstance(new, dict):
        for key in sorted(set(stored) | set(new)):
            if key in skip:
                continue
            where = f"{path}.{key}" if path else str(key)
            if key not in stored:
                if added is not None:
                    added.append(where)
                continue
            if key not in new:
                out.append(Mismatch(where, stored[key], "<missing>"))
                continue
            m, d = compare_results(stored[key], new[key], rtol=rtol, atol=atol,
                                   skip=skip, path=where, added=added)
            out += m
            largest = max(largest, d)
    elif isinstance(stored, list) and isinstance(new, list):
        if len(stored) != len(new):
            return [Mismatch(path + ".length", len(stored), len(new))], largest
        for i, (a, b) in enumerate(zip(stored, new)):
            m, d = compare_results(a, b, rtol=rtol, atol=atol, skip=skip,
                                   path=f"{path}[{i}]", added=added)
            out += m
            largest = max(largest, d)
    elif _number(stored) and _number(new):
        diff = abs(float(new) - float(stored))
        if not math.isfinite(diff):
            out.append(Mismatch(path, stored, new))
        else:
            largest = diff
            if diff > atol + rtol * abs(float(stored)):
                out.append(Mismatch(path, stored, new, diff))
    elif stored != new or type(stored) is not type(new):
        out.append(Mismatch(path, stored, new))
    return out, largest


def on_cpu(cell: dict) -> bool:
    """Whether a stored cell was computed on the CPU (a cell without a recorded machine
    counts as one). Only those can be re-run to the bit here: a GPU's kernels sum in
    another order."""
    return not str(cell.get("machine", {}).get("device", "cpu")).startswith("cuda")


def stored_here(cell: dict) -> bool:
    """Whether a stored cell was computed on a CPU of this vector capability and model
    (`cpu_capability`, `cpu_model`): only such a CPU re-runs a training run to the bit."""
    return computed_here(cell.get("machine", {}))


def cheapest_cells(doc: dict, k: int, keep=None,
                   max_seconds: float | None = None) -> list[dict]:
    """The `k` finished CPU cells (`on_cpu`) of a results document among those
    `keep(cell)` accepts (all when None): first those computed on this CPU
    (`stored_here`) whose recorded seconds are within `max_seconds` (any, when None),
    then the rest; the fewest recorded seconds first within each."""
    if k < 1:
        raise ValueError(f"cells must be at least 1, got {k}")
    done = [c for c in doc["cells"] if c.get("status") == "done" and on_cpu(c)
            and (keep is None or keep(c))]

    def here(c):
        return stored_here(c) and (max_seconds is None
                                   or (c.get("seconds") or 0.0) <= max_seconds)

    return sorted(done, key=lambda c: (not here(c), c.get("seconds") or 0.0,
                                       c["key"]))[:k]


def _as_stored(result) -> object:
    """A fresh result as it would read back from the results file."""
    return json.loads(json.dumps(finite_json(result), allow_nan=False))


@dataclass
class CellCheck:
    """One re-run cell: its key, whether it reproduced, the largest |difference| seen,
    the fields that moved, the seconds the re-run took, and the fields the code records
    now that the stored result lacks."""

    key: str
    ok: bool
    largest: float
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0
    added: list[str] = field(default_factory=list)
    # True when the cell differs but was computed on a CPU of another (or an unrecorded)
    # vector capability, or of another recorded model (or an unrecorded one, within
    # OTHER_MODEL_RTOL): reported and not counted as failed.
    other_cpu: bool = False
    # True when the cell was computed on this CPU (`stored_here`): compared to the bit.
    here: bool = False


def verify_sweep(spec: SweepSpec, *, path: str | Path | None = None, cells: int = 1,
                 only: list[dict] | None = None, max_seconds: float | None = None,
                 log: Callable[[str], None] = print) -> list[CellCheck]:
    """Re-run cells of `spec` and compare them with its results file (`path`, default
    the sweep's own). `only`: the stored cells' parameters to re-run (default: the
    `cells` cheapest). `max_seconds`: skip the sweep, saying so, when the cheapest
    cells chosen took longer than this when they were stored (a time budget, as in
    CI). Returns one CellCheck per cell; logs one line each."""
    path = Path(path or spec.out)
    doc = load_sweep(path).doc
    if doc.get("sweep") != spec.name:
        raise ValueError(f"{path} holds sweep {doc.get('sweep')!r}, not {spec.name!r}")
    if only is None:
        chosen = cheapest_cells(doc, cells, spec.rerunnable, max_seconds)
        if not chosen and any(c.get("status") == "done" for c in doc["cells"]):
            log(f"verify {spec.name}: every finished cell of {path} was computed on a "
                f"GPU, which no CPU re-run reproduces to the bit; skipped")
            return []
        slow = max((c.get("seconds") or 0.0 for c in chosen), default=0.0)
        if max_seconds is not None and slow > max_seconds:
            log(f"verify {spec.name}: its cheapest cell took {slow:.0f} s when stored, "
                f"over the budget of {max_seconds:g} s; not re-run here (run `python -m "
                f"phaselib.sweep verify {spec.name}`)")
            return []
    else:
        by_params = {json.dumps(c["params"], sort_keys=True): c for c in doc["cells"]
                     if c.get("status") == "done"}
        chosen = []
        for params in only:
            key = json.dumps(params, sort_keys=True)
            if key not in by_params:
                raise ValueError(f"no finished cell with parameters {key} in {path}")
            chosen.append(by_params[key])
    tol = ("equal to the bit" if not (spec.rtol or spec.atol) else
           f"within rtol {spec.rtol:g}, atol {spec.atol:g} ({spec.tolerance_note})")
    here = git_commit()
    log(f"verify {spec.name}: {len(chosen)} cell(s) of {path} at HEAD "
        f"{(here['commit'] or 'unknown')[:12]}{' (dirty)' if here['dirty'] else ''}, "
        f"expected {tol}")
    checks = []
    threads = torch.get_num_threads()
    for cell in chosen:
        stored_threads = int(cell.get("machine", {}).get("threads") or threads)
        torch.set_num_threads(stored_threads)
        t0 = time.perf_counter()
        try:
            new = _as_stored(spec.run(**cell["params"]))
        finally:
            torch.set_num_threads(threads)
        seconds = time.perf_counter() - t0
        added: list[str] = []
        mism, largest = compare_results(cell["result"], new, rtol=spec.rtol,
                                        atol=spec.atol, skip=spec.volatile, added=added)
        stored_cpu = cell.get("machine", {}).get("cpu_capability", "unrecorded")
        stored_model = cell.get("machine", {}).get("cpu_model", "unrecorded")
        within = not compare_results(cell["result"], new,
                                     rtol=max(spec.rtol, OTHER_MODEL_RTOL),
                                     atol=spec.atol, skip=spec.volatile)[0]
        # Another recorded model: reported, not counted. A model never recorded (cells
        # stored before it was kept): within OTHER_MODEL_RTOL only, as before.
        other_model = (bool(mism) and stored_cpu == cpu_capability()
                       and stored_model != cpu_model()
                       and (stored_model != "unrecorded" or within))
        other_cpu = bool(mism) and (stored_cpu != cpu_capability() or other_model)
        check = CellCheck(cell["key"], not mism or other_cpu, largest, mism, seconds,
                          added, other_cpu, stored_here(cell))
        origin = f"stored at {str(cell.get('git_commit'))[:12]}"
        if other_model:
            log(f"  OTHER CPU {cell['key']} ({origin} on a CPU of this capability, "
                f"{stored_cpu}, but model {stored_model}, here {cpu_model()}: "
                f"{len(mism)} field(s) differ, max |diff| {largest:.3g}, "
                + (f"within a relative {OTHER_MODEL_RTOL:g}" if within else
                   f"beyond a relative {OTHER_MODEL_RTOL:g}, which this CPU cannot tell "
                   f"from a change of code")
                + "; not counted)")
        elif other_cpu:
            log(f"  OTHER CPU {cell['key']} ({origin} on a CPU of capability "
                f"{stored_cpu}, here {cpu_capability()}: {len(mism)} field(s) differ, "
                f"max |diff| {largest:.3g}; not comparable to the bit, not counted)")
        elif check.ok:
            how = "equal to the bit" if largest == 0 else f"max |diff| {largest:.3g}"
            log(f"  ok      {cell['key']} ({how}; {origin}; {seconds:.1f} s, "
                f"{stored_threads} thread(s))")
            if added:
                log(f"          (the code now also records {', '.join(added[:6])}"
                    f"{' ...' if len(added) > 6 else ''}: not in the file, not compared)")
        else:
            log(f"  DIFFERS {cell['key']} ({origin}; {len(mism)} field(s), "
                f"max |diff| {largest:.3g}):")
            for m in mism[:5]:
                log(f"          {m}")
            if len(mism) > 5:
                log(f"          ... and {len(mism) - 5} more")
        checks.append(check)
    return checks
