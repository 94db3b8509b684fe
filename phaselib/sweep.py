"""Seed sweeps that pick up where they stopped: `python -m phaselib.sweep NAME`.

A sweep is a list of cells (dicts of parameters, each with a seed) and a function that
runs one cell and returns a JSON-able dict of results. The chapters' sweeps are named in
`SWEEPS`; each maps to a function `sweep(seeds=...) -> SweepSpec` in the module that owns
the experiment. Running a sweep writes its results file after every cell (atomically), so
an interrupted run loses at most the cell in progress. Running the same command again
skips the finished cells, re-runs the failed and missing ones, and says which; a cell
computed at another git commit is flagged (and re-run with --rerun-stale), never mixed in
silently. Chapters read the file with `load_sweep(path).results(...)`.

    python -m phaselib.sweep --list
    python -m phaselib.sweep f6 [--seeds 0 1 2] [--out FILE] [--rerun-stale] [--force]
    python -m phaselib.sweep all
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .provenance import atomic_write_json, git_commit, machine_info, provenance

__all__ = ["SweepSpec", "SWEEPS", "get_spec", "run_sweep", "load_sweep", "SweepResults",
           "cell_key", "main"]

FORMAT = "phaselib-sweep-v1"

# name: "module:function" returning a SweepSpec (imported on demand).
SWEEPS: dict[str, str] = {
    "f1": "phaselib.spelling:sweep",
    "f3": "phaselib.multiscale:sweep",
    "f4": "phaselib.partitions:sweep",
    "f5": "phaselib.context_collapse:sweep",
    "f6": "phaselib.drift:sweep",
    "f7": "phaselib.preconditioning:sweep",
    "f8": "phaselib.branching:sweep",
    "f9": "phaselib.erosion_runs:sweep",
    "slots": "phaselib.mode_memory:sweep",
    "lm": "phaselib.lm_sweep:sweep",
    "remedies": "phaselib.remedies.tasks:sweep",
    "selection": "phaselib.scale_content:sweep",
    "predictions": "phaselib.predictions.sweep:sweep",
}


@dataclass
class SweepSpec:
    """name; out: the results file (relative to the repository root when run from it);
    cells: one dict of parameters per cell (JSON-able, with a "seed"); run(**cell) -> dict;
    description: one line for --list and the results file."""

    name: str
    out: str
    cells: list[dict]
    run: Callable[..., dict]
    description: str = ""

    def __post_init__(self):
        if not self.cells:
            raise ValueError(f"sweep {self.name!r}: cells must be a non-empty list")
        keys = [cell_key(c) for c in self.cells]
        if len(set(keys)) != len(keys):
            raise ValueError(f"sweep {self.name!r}: two cells have the same parameters")


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


def _load_doc(path: Path, name: str) -> dict | None:
    if not path.exists():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("format") != FORMAT or doc.get("sweep") != name:
        raise ValueError(f"{path} is not the results file of sweep {name!r} ({FORMAT}); "
                         f"move it away or pass another --out")
    return doc


def run_sweep(spec: SweepSpec, *, out: str | Path | None = None, command: str = "",
              force: bool = False, rerun_stale: bool = False, device: str = "cpu",
              log: Callable[[str], None] = print) -> dict:
    """Run the cells of `spec` that are not finished in its results file; returns the
    summary {"ran", "skipped", "failed", "stale", "path"}. The file is rewritten after
    every cell. KeyboardInterrupt saves what is done, prints how to continue, re-raises."""
    path = Path(out or spec.out)
    command = command or f"python -m phaselib.sweep {spec.name}"
    doc = _load_doc(path, spec.name) or {"format": FORMAT, "sweep": spec.name, "cells": []}
    doc["description"] = spec.description
    by_key = {c["key"]: c for c in doc["cells"]}
    here = git_commit()["commit"]
    summary = {"ran": [], "skipped": [], "failed": [], "stale": [], "path": str(path)}

    def save():
        seeds = sorted({int(c["params"].get("seed", 0)) for c in doc["cells"]})
        doc["provenance"] = provenance(command, seeds, device)
        doc["commits"] = sorted({str(c.get("git_commit")) for c in doc["cells"]})
        atomic_write_json(path, doc)

    for i, params in enumerate(spec.cells):
        key = cell_key(params)
        old = by_key.get(key)
        stale = old is not None and here is not None and old.get("git_commit") != here
        if old is not None and old["status"] == "done" and not force:
            if not (stale and rerun_stale):
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
        cell.update(seconds=round(time.perf_counter() - t0, 3), git_commit=g["commit"],
                    git_dirty=g["dirty"], machine=machine_info(device),
                    created=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
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
        log(f"  {len(summary['stale'])} finished cells were computed at another commit; "
            f"re-run them with --rerun-stale")
    return summary


@dataclass
class SweepResults:
    """A sweep's results file, read back."""

    path: Path
    doc: dict = field(repr=False)

    @property
    def provenance(self) -> dict:
        return self.doc.get("provenance", {})

    @property
    def commits(self) -> list[str]:
        return self.doc.get("commits", [])

    def results(self, **filters) -> list[dict]:
        """The finished cells whose parameters match `filters`, each as params | result."""
        out = []
        for c in self.doc["cells"]:
            if c["status"] != "done":
                continue
            if all(c["params"].get(k) == v for k, v in filters.items()):
                out.append({**c["params"], **c["result"]})
        return out

    def failed(self) -> list[dict]:
        return [c for c in self.doc["cells"] if c["status"] != "done"]


def load_sweep(path: str | Path) -> SweepResults:
    """Read a results file written by `run_sweep` (checks its format)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the sweep that writes it "
                                f"(python -m phaselib.sweep --list)")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a phaselib sweep results file ({FORMAT})")
    return SweepResults(path, doc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.sweep", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("names", nargs="*", help=f"sweeps to run: {', '.join(SWEEPS)}, or all")
    p.add_argument("--list", action="store_true", help="list the sweeps and their files")
    p.add_argument("--seeds", type=int, nargs="+", help="override the sweep's seeds")
    p.add_argument("--out", help="results file (one sweep only; default: the sweep's own)")
    p.add_argument("--device", help="device for sweeps that take one (e.g. cuda)")
    p.add_argument("--force", action="store_true", help="re-run finished cells too")
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                   help="run only the cells with this parameter value (repeatable), "
                        "e.g. --only block=1024")
    p.add_argument("--rerun-stale", action="store_true",
                   help="re-run finished cells computed at another git commit")
    args = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(args)
    if a.list:
        for name in SWEEPS:
            try:
                spec = get_spec(name)
                print(f"{name:6s} {len(spec.cells):3d} cells -> {spec.out}  {spec.description}")
            except ImportError as e:
                print(f"{name:6s} (not available: {e})")
        return 0
    names = list(SWEEPS) if a.names == ["all"] else a.names
    if not names:
        p.error("name a sweep (or all); --list shows them")
    unknown = [n for n in names if n not in SWEEPS]
    if unknown:
        p.error(f"unknown sweep(s) {unknown}; known: {', '.join(SWEEPS)}")
    if a.out and len(names) > 1:
        p.error("--out needs exactly one sweep")
    only = {}
    for item in a.only:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--only takes KEY=VALUE, got {item!r}")
        only[key] = value
    command = "python -m phaselib.sweep " + shlex.join(args)
    failed = 0
    for name in names:
        spec = get_spec(name, a.seeds, a.device)
        try:
            spec = select_cells(spec, only)
        except ValueError as e:
            p.error(str(e))
        try:
            s = run_sweep(spec, out=a.out, command=command, force=a.force,
                          rerun_stale=a.rerun_stale, device=a.device or "cpu")
        except KeyboardInterrupt:
            return 130
        failed += len(s["failed"])
    return 1 if failed else 0


if __name__ == "__main__":
    # Run the imported module's main, so that the sweeps' `from .sweep import SweepSpec`
    # and this check see one SweepSpec class, not __main__'s copy of it.
    from phaselib.sweep import main as _main

    sys.exit(_main())
