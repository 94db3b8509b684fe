"""A sweep's results file: its format, reading it back (`load_sweep` -> `SweepResults`,
one `StoredCell` per finished cell with its provenance) and merging files of parts run
in parallel (`merge_sweep_files`). `core` writes the file as it runs the cells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..provenance import atomic_write_json, computed_here, provenance, require_clean
from ..results_files import results_path
from ..results_provenance import is_legacy, records

__all__ = ["FORMAT", "StoredCell", "SweepResults", "load_sweep", "merge_sweep_files"]

FORMAT = "phaselib-sweep-v1"


def _load_doc(path: Path, name: str) -> dict | None:
    if not path.exists():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("format") != FORMAT or doc.get("sweep") != name:
        raise ValueError(f"{path} is not the results file of sweep {name!r} ({FORMAT}); "
                         f"move it away or pass another --out")
    return doc


def _recount_legacy(doc: dict) -> None:
    """Keep a file's `legacy_dirty` record (cells from a dirty tree computed before the
    guard, see results_provenance) true as such cells are re-run: recount, drop at 0."""
    if "legacy_dirty" not in doc:
        return
    n = sum(map(is_legacy, records(doc)))
    if n:
        doc["legacy_dirty"]["cells"] = n
    else:
        del doc["legacy_dirty"]


@dataclass(frozen=True)
class StoredCell:
    """One finished cell of a results file: what it was run with, what it gave, and
    where it came from (commit, whether the tree was dirty, when, on what machine)."""

    params: dict
    result: dict
    commit: str | None
    dirty: bool | None
    created: str
    machine: dict

    @property
    def date(self) -> str:
        """The day the cell finished, YYYY-MM-DD."""
        return self.created[:10]

    @property
    def origin(self) -> str:
        """"<short commit> on <date>", the words a chapter shows beside a result."""
        return f"{str(self.commit)[:7]} on {self.date}"

    @property
    def here(self) -> bool:
        """Computed on a CPU of this vector capability and model (`computed_here`): a
        live re-run of the cell repeats it to the bit only then."""
        return computed_here(self.machine)


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

    def cells(self, **filters) -> list[StoredCell]:
        """The finished cells whose parameters match `filters` (a parameter the cell
        lacks reads as None), with their provenance, in file order."""
        return [StoredCell(c["params"], c["result"], c.get("git_commit"),
                           c.get("git_dirty"), c.get("created", ""), c.get("machine", {}))
                for c in self.doc["cells"] if c["status"] == "done"
                and all(c["params"].get(k) == v for k, v in filters.items())]

    def results(self, **filters) -> list[dict]:
        """The finished cells whose parameters match `filters`, each as params | result."""
        return [{**c.params, **c.result} for c in self.cells(**filters)]

    def failed(self) -> list[dict]:
        return [c for c in self.doc["cells"] if c["status"] != "done"]


def _commands(doc: dict, command: str | None = None) -> list[str]:
    """Every command that has written into `doc` (a results file), oldest first, and
    `command` if it is new: a file run in several parts, or resumed with other
    arguments, keeps them all (its "command" is only the last)."""
    prov = doc.get("provenance", {})
    out = list(prov.get("commands") or ([prov["command"]] if prov.get("command") else []))
    return out + [command] if command and command not in out else out


def merge_sweep_files(name: str, paths, out: str | Path, *,
                      allow_dirty: bool = False) -> Path:
    """Merge results files of sweep `name` run in parallel (each part with its own --out,
    e.g. one process per task or seed) into `out`: the cells of all files (a cell in two
    files: the later file wins), each keeping its own commit and machine; the provenance
    lists the commands of the parts and this merge, the description the sweep's module
    gives it now (a sweep not registered: the first file's). Into the book only from a
    clean tree, unless `allow_dirty` (provenance.require_clean).

        python -m phaselib.sweep merge remedies part_a.json part_b.json --out FILE
    """
    require_clean(out, allow_dirty)
    paths = [Path(p) for p in paths]
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    if not docs or any(d.get("sweep") != name for d in docs):
        raise ValueError(f"paths must be results files of sweep {name!r}, "
                         f"got {[str(p) for p in paths]}")
    cells = {}
    for d in docs:
        cells.update({c["key"]: c for c in d["cells"]})
    seeds = sorted({int(c["params"]["seed"]) for c in cells.values()})
    # The description is the sweep's own as its module states it now (a part run under
    # an older text, or the book's file written before the text changed, keeps none).
    from .core import SWEEPS, get_spec
    description = (get_spec(name).description if name in SWEEPS
                   else docs[0]["description"])
    parts = [str(d.get("provenance", {}).get("command")) for d in docs]
    commands = []
    for d in docs:
        commands += [c for c in _commands(d) if c not in commands]
    doc = {"format": docs[0]["format"], "sweep": name,
           "description": description, "cells": list(cells.values()),
           "commits": sorted({str(c.get("git_commit")) for c in cells.values()}),
           "provenance": provenance(f"python -m phaselib.sweep merge {name} of: "
                                    + "; ".join(parts), seeds, "cpu",
                                    parts=[str(p) for p in paths],
                                    commands=commands)}
    # A part's record of cells flagged dirty before the guard stays with those cells.
    legacy = next((d["legacy_dirty"] for d in docs if "legacy_dirty" in d), None)
    if legacy is not None:
        doc["legacy_dirty"] = dict(legacy)
        _recount_legacy(doc)
    atomic_write_json(out, doc)
    return Path(out)


def load_sweep(path: str | Path, part: str | None = None) -> SweepResults:
    """Read a results file written by `run_sweep` (checks its format): `path`, or the
    copy shipped with phaselib when it does not exist (`results_path`, which raises
    FileNotFoundError naming both places when neither does)."""
    path = results_path(path, part)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file: run the sweep that writes it "
                                f"(python -m phaselib.sweep --list)")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a phaselib sweep results file ({FORMAT})")
    return SweepResults(path, doc)
