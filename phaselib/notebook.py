"""What every chapter's setup cell needs: seeds, a device, and `glue` for the prose."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["setup", "runs_on", "glue", "plain", "in_colab", "cpu_threads"]


def in_colab() -> bool:
    return "COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ


def setup(seed: int = 0, device: str = "auto", threads: int | None = None,
          verbose: bool = True) -> torch.device:
    """Seed python, numpy and torch; pick `cuda` when present for device='auto'.

    Returns the torch.device to use. `threads` caps torch's CPU threads (CI has two
    cores). With `verbose` (the default) it prints one line saying what the chapter
    runs on.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA device is available")
    if verbose:
        print(runs_on(dev, seed))
    return dev


@contextmanager
def cpu_threads(n: int):
    """`with cpu_threads(n):` runs its block on n CPU threads of torch, then restores
    the count it found (also when the block raises): a cell that trains a larger model
    can use both of a laptop's cores without changing the rest of the chapter."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (CPU threads), got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def runs_on(dev: torch.device, seed: int | None = None) -> str:
    """One line: the device (the GPU's name, or the CPU's thread count), the seed and
    the versions of torch and phaselib."""
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        where = f"GPU {torch.cuda.get_device_name(index)} (cuda:{index})"
    else:
        n = torch.get_num_threads()
        where = f"{dev.type.upper()}, {n} thread{'' if n == 1 else 's'}"
    from phaselib import __version__

    colab = ", Colab" if in_colab() else ""
    seeded = f", seed {seed}" if seed is not None else ""
    return (f"Running on {where}{colab}{seeded} | torch {torch.__version__}, "
            f"phaselib {__version__}")


def glue(name: str, value, display: bool = False):
    """Make `value` available to the book's prose as {glue:text}`name`.

    Uses myst-nb when it is installed (the rendered book) and returns None, so that a
    cell ending in `glue(...)` shows no stray value on the page; elsewhere (a bare Colab
    runtime) it returns the value, which such a cell then shows, so the notebook still
    reads well without the prose's glued numbers. NumPy and 0-d torch
    scalars are glued as Python numbers: myst-nb formats a glued value from its text
    form, and `np.float64(0.5)` (NumPy 2's repr) is not a number it can read.
    """
    value = plain(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        if display:
            print(f"{name} = {value}")
        return value
    _glue(name, value, display=display)
    return None


def plain(value):
    """`value` as a plain Python number when it is a NumPy scalar or a one-element
    torch tensor; anything else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value
