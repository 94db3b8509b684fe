"""Where a result came from, and writing it safely: machine, git commit, atomic files.

Every precomputed result in the book records the exact command, the seeds, the git
commit, the date and the machine (`provenance`). Files are written atomically
(`atomic_write_text`, `atomic_write_json`, `atomic_torch_save`): the bytes go to a
temporary file beside the target, are flushed to disk, and the temporary file is renamed
over the target, so a reader never sees a half-written file and a kill during the write
leaves the previous good file in place.

A result written into the book must be reproducible from a commit of main: writers call
`require_clean(target, allow_dirty)` first, which refuses a dirty working tree unless
told otherwise. The results files themselves (`book/*/results/`) do not make a tree
dirty: they are what the run writes, not what it runs.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import torch

__all__ = ["machine_info", "cpu_capability", "cpu_model", "computed_here", "git_commit",
           "provenance",
           "atomic_write_text", "atomic_write_json", "atomic_torch_save", "finite_json",
           "json_text",
           "require_clean", "DirtyTreeError", "in_book", "RESULTS_PATHSPEC"]

_ROOT = Path(__file__).resolve().parent.parent

# What a run writes, excluded when git is asked whether the tree is dirty.
RESULTS_PATHSPEC = ":(exclude,glob)book/*/results/**"


class DirtyTreeError(RuntimeError):
    """A result was about to be written into the book from uncommitted code."""


def cpu_capability() -> str:
    """The vector instructions PyTorch's CPU kernels use here ("AVX2", "AVX512", ...):
    two CPUs with different ones round some sums differently, so a training run
    reproduces to the bit only on a CPU of the same capability."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name ("model name" in /proc/cpuinfo, else the platform's
    processor): two CPUs of one vector capability but of different models (an Intel
    and an AMD with AVX-512) may still take other BLAS kernels and differ in the last
    digits."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def computed_here(machine: dict) -> bool:
    """Whether a result whose `machine_info` is `machine` was computed on a CPU of this
    vector capability and model (`cpu_capability`, `cpu_model`), the only place where a
    training run repeats it to the bit; False for a GPU's result or an unrecorded CPU."""
    if not isinstance(machine, dict):
        raise TypeError(f"machine must be a dict (machine_info's), got "
                        f"{type(machine).__name__}")
    return (not str(machine.get("device", "cpu")).startswith("cuda")
            and machine.get("cpu_capability") == cpu_capability()
            and machine.get("cpu_model") == cpu_model())


def machine_info(device: str = "cpu") -> dict:
    """The machine as plain str/int values: python, torch, platform, processor, threads,
    device, the CPU's vector capability (`cpu_capability`) and model (`cpu_model`), and
    on CUDA the GPU's name, compute capability, CUDA and Triton versions.
    (Plain values, because torch.__version__ is a str subclass that
    torch.load(weights_only=True) refuses.)"""
    device = str(device)
    info = {"python": platform.python_version(), "torch": str(torch.__version__),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count() or 0, "threads": torch.get_num_threads(),
            "device": device, "cpu_capability": cpu_capability(),
            "cpu_model": cpu_model()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["capability"] = "sm_{}{}".format(*torch.cuda.get_device_capability())
        info["cuda"] = str(torch.version.cuda)
        try:
            import triton
            info["triton"] = str(triton.__version__)
        except ImportError:
            info["triton"] = "not installed"
    return info


def git_commit(root: str | Path | None = None) -> dict:
    """{"commit": 40-hex or None, "dirty": bool or None} of the repository at `root`
    (default: the checkout phaselib is imported from; None outside a git checkout)."""
    root = Path(root) if root is not None else _ROOT

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None or len(commit) != 40:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                 RESULTS_PATHSPEC)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def in_book(path: str | Path, root: str | Path | None = None) -> bool:
    """Whether `path` lies under the repository's `book/` folder (where the chapters read
    their results from)."""
    root = Path(root) if root is not None else _ROOT
    return Path(path).resolve().is_relative_to((root / "book").resolve())


def require_clean(target: str | Path, allow_dirty: bool = False,
                  root: str | Path | None = None) -> dict:
    """The repository's {"commit", "dirty"} before a result is written to `target`.

    Raises DirtyTreeError when `target` lies in the book and the working tree has
    uncommitted changes to tracked files (outside the results folders), unless
    `allow_dirty`; the caller then records `git_dirty: true` and `allow_dirty: true`
    beside the result. A target outside the book is never refused."""
    g = git_commit(root)
    if in_book(target, root) and g["dirty"] and not allow_dirty:
        raise DirtyTreeError(
            f"the working tree has uncommitted changes, so {target} would hold a result "
            f"that no commit of main reproduces: commit first (git status shows the "
            f"changes), or pass --allow-dirty to write it marked as dirty")
    return g


def provenance(command: str, seeds, device: str = "cpu", **extra) -> dict:
    """The record every precomputed result carries: the exact command, the seeds, the git
    commit (and whether the tree had uncommitted changes), the UTC date, the machine."""
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"command must be the non-empty command line that made the result, "
                         f"got {command!r}")
    seeds = [int(s) for s in ([seeds] if isinstance(seeds, int) else seeds)]
    g = git_commit()
    return {"command": command, "seeds": seeds, "git_commit": g["commit"],
            "git_dirty": g["dirty"],
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(device), **extra}


@contextmanager
def _beside(path: str | Path, mode: str) -> Iterator:
    """A temporary file in the target's folder, renamed over the target on success and
    removed on failure (os.replace is atomic within one file system)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; parents are created."""
    with _beside(path, "w") as f:
        f.write(text)
    return Path(path)


def finite_json(obj):
    """`obj` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def json_text(doc, indent: int | None = 1) -> str:
    """`doc` as strict JSON text: objects and lists of containers indented by `indent`
    spaces a level, a list of plain values (a curve, a profile's row) on one line, so a
    results file reads by structure without a line per number (None: one line)."""
    if indent is None:
        return json.dumps(doc, allow_nan=False)

    def key(k) -> str:
        # json.dumps's own spelling of a non-string key (1 -> "1", True -> "true")
        return json.dumps(k if isinstance(k, str) else next(iter(json.loads(
            json.dumps({k: None})))))

    def text(x, level: int) -> str:
        pad, end = " " * indent * (level + 1), " " * indent * level
        if isinstance(x, dict) and x:
            return ("{\n" + ",\n".join(f"{pad}{key(k)}: {text(v, level + 1)}"
                                       for k, v in x.items()) + f"\n{end}}}")
        if (isinstance(x, (list, tuple)) and x
                and any(isinstance(v, (dict, list, tuple)) for v in x)):
            return ("[\n" + ",\n".join(pad + text(v, level + 1) for v in x)
                    + f"\n{end}]")
        return json.dumps(x, allow_nan=False)

    return text(doc, 0)


def atomic_write_json(path: str | Path, doc, indent: int | None = 1) -> Path:
    """Write `doc` as strict JSON (NaN and inf become null) to `path` atomically, laid
    out by `json_text`."""
    return atomic_write_text(path, json_text(finite_json(doc), indent) + "\n")


def atomic_torch_save(obj, path: str | Path) -> Path:
    """torch.save `obj` to `path` atomically."""
    with _beside(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)
