"""Result files and result rows: one JSON document per benchmark run, with the machine.

Every benchmark writes rows of one format (`result_row`): the method, the pass
("forward", "forward+backward", "decode", ...), the length T, the median seconds per
call `time_s` from `timing.time_call` and the `peak_bytes` from `timing.peak_bytes`,
plus fields of its own. A file is {"benchmark", "created", "machine", "meta", "rows"}
(and "provenance" when the caller gives one), written atomically.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from ..provenance import atomic_write_json, machine_info

__all__ = ["machine_info", "result_row", "write_results", "read_results"]

ROW_KEYS = ("method", "pass", "T", "time_s", "peak_bytes")


def result_row(method: str, pass_: str, T: int, time_s: float, peak_bytes: int, **extra) -> dict:
    """One row: {"method", "pass", "T", "time_s", "peak_bytes", **extra}."""
    if not time_s > 0:
        raise ValueError(f"time_s must be a positive number of seconds, got {time_s!r}")
    return {"method": method, "pass": pass_, "T": int(T), "time_s": float(time_s),
            "peak_bytes": int(peak_bytes), **extra}


def write_results(path: str | Path, name: str, rows: list[dict], device: str = "cpu",
                  provenance: dict | None = None, **meta) -> Path:
    """Write {"benchmark", "created", "machine", "meta", "rows"} to `path` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_info(device), "meta": meta, "rows": rows}
    if provenance is not None:
        doc["provenance"] = provenance
    atomic_write_json(path, doc)
    return path


def read_results(path: str | Path) -> dict:
    doc = json.loads(Path(path).read_text())
    for key in ("benchmark", "machine", "rows"):
        if key not in doc:
            raise ValueError(f"{path} is not a phaselib benchmark result: no {key!r} field")
    return doc
