"""Result files and result rows: one JSON document per benchmark run, with the machine.

Every benchmark writes rows of one format (`result_row`): the method, the pass
("forward", "forward+backward", "decode", ...), the length T, the median seconds per
call `time_s` from `timing.time_call` and the `peak_bytes` from `timing.peak_bytes`,
plus fields of its own. A file is {"benchmark", "created", "machine", "meta", "rows"}
(and "provenance" when the caller gives one), written atomically, with the git commit
it was run at. A file in the book is written only from a clean working tree: every
benchmark takes `--allow-dirty` (`add_out_arguments`), checks its target before it runs
(`check_out`), and `write_results` checks again and marks a dirty result.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from ..provenance import atomic_write_json, machine_info, require_clean
from ..results_files import results_path

__all__ = ["machine_info", "result_row", "write_results", "read_results",
           "add_out_arguments", "check_out"]

ROW_KEYS = ("method", "pass", "T", "time_s", "peak_bytes")


def result_row(method: str, pass_: str, T: int, time_s: float, peak_bytes: int, **extra) -> dict:
    """One row: {"method", "pass", "T", "time_s", "peak_bytes", **extra}."""
    if not time_s > 0:
        raise ValueError(f"time_s must be a positive number of seconds, got {time_s!r}")
    return {"method": method, "pass": pass_, "T": int(T), "time_s": float(time_s),
            "peak_bytes": int(peak_bytes), **extra}


def add_out_arguments(p, default: str | None = None) -> None:
    """--out (required when there is no default) and --allow-dirty on a bench's parser."""
    if default is None:
        p.add_argument("--out", required=True, help="JSON file to write")
    else:
        p.add_argument("--out", default=str(default),
                       help=f"JSON file to write (default {default})")
    p.add_argument("--allow-dirty", action="store_true",
                   help="write into the book from uncommitted code (marked allow_dirty)")


def check_out(path: str | Path, allow_dirty: bool = False) -> None:
    """Refuse, before a benchmark runs, a target in the book from a dirty tree
    (provenance.DirtyTreeError) unless `allow_dirty`."""
    require_clean(path, allow_dirty)


def write_results(path: str | Path, name: str, rows: list[dict], device: str = "cpu",
                  provenance: dict | None = None, allow_dirty: bool = False,
                  **meta) -> Path:
    """Write {"benchmark", "created", "machine", "git_commit", "git_dirty", "meta",
    "rows"} to `path` (parents created); refuses a target in the book from a dirty tree
    unless `allow_dirty` (then "allow_dirty": true is recorded)."""
    path = Path(path)
    git = require_clean(path, allow_dirty)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_info(device), "git_commit": git["commit"],
           "git_dirty": git["dirty"], "meta": meta, "rows": rows}
    if git["dirty"]:
        doc["allow_dirty"] = True
    if provenance is not None:
        doc["provenance"] = provenance
    atomic_write_json(path, doc)
    return path


def read_results(path: str | Path) -> dict:
    """A benchmark's results document (`path`, or phaselib's copy: `results_path`)."""
    doc = json.loads(results_path(path).read_text())
    for key in ("benchmark", "machine", "rows"):
        if key not in doc:
            raise ValueError(f"{path} is not a phaselib benchmark result: no {key!r} field")
    return doc
