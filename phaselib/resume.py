"""What a resumable run saves besides weights and optimizer: random-generator states and
the configuration it must be resumed with.

Book: "Running at scale". `rng_state(generator)` captures the torch (CPU and CUDA),
numpy and Python generators and the data-sampling `generator` as plain lists and
tensors (so `torch.load(weights_only=True)` reads them); `set_rng_state` puts them
back, so a resumed run draws exactly the numbers the uninterrupted run would have.
`config_diff` lists the fields in which two run configurations differ, and
`require_same_config` refuses a resume when there are any.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state", "config_diff", "require_same_config"]


def rng_state(generator: torch.Generator | None = None) -> dict:
    """Every random-generator state a training run draws from, as plain data."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [keys.tolist(), int(pos), int(has_gauss), float(gauss)],
            "python": [version, list(internal), py_gauss],
            "data": None if generator is None else generator.get_state()}


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    """Restore the states `rng_state` captured (the data generator's into `generator`)."""
    missing = sorted({"torch", "cuda", "numpy", "python", "data"} - set(state))
    if missing:
        raise ValueError(f"state must come from rng_state(); it lacks {missing}")
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, py_gauss = state["python"]
    random.setstate((version, tuple(internal), py_gauss))
    if generator is not None:
        if state["data"] is None:
            raise ValueError("state holds no data-generator state to restore")
        generator.set_state(state["data"])


def config_diff(saved: dict, now: dict) -> list[str]:
    """'name: saved -> now' for every key whose value differs (or is in one dict only)."""
    return [f"{k}: {saved.get(k, '(absent)')!r} -> {now.get(k, '(absent)')!r}"
            for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]


def require_same_config(saved: dict, now: dict, what: str = "the checkpoint") -> None:
    """Raise ValueError naming every field in which `now` differs from `saved`."""
    diff = config_diff(saved, now)
    if diff:
        raise ValueError(f"{what} was made with another configuration; differing fields "
                         f"(saved -> now): {'; '.join(diff)}")
