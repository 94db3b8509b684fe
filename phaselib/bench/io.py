"""Result files: one JSON document per benchmark run, with the machine it ran on."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch


def machine_info(device: str = "cpu") -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_results(path: str | Path, name: str, rows: list[dict], device: str = "cpu", **meta) -> Path:
    """Write {"benchmark", "created", "machine", "meta", "rows"} to `path` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_info(device), "meta": meta, "rows": rows}
    path.write_text(json.dumps(doc, indent=2))
    return path


def read_results(path: str | Path) -> dict:
    doc = json.loads(Path(path).read_text())
    for key in ("benchmark", "machine", "rows"):
        if key not in doc:
            raise ValueError(f"{path} is not a phaselib benchmark result: no {key!r} field")
    return doc
