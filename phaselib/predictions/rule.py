"""The verdict rule the predictions chapter fixes before its runs, shared by its tests.

Book: Part V, "Seed 000's three predictions, tested". A prediction is measured per seed
as a table [seeds, points]. The noise floor is `seed_tolerance`: twice the median over
points of the across-seed standard deviation, never below `min_tol`. Each seed then
passes or fails a strong test (the prediction's full shape) and a weak one (its first
sign), and `three_way` turns those into supported / refuted / partly.
"""

from __future__ import annotations

import torch

__all__ = ["seed_tolerance", "three_way"]


def seed_tolerance(table, min_tol: float) -> float:
    """max(min_tol, 2 * median over points of the across-seed std of `table`
    [seeds >= 2, points])."""
    t = torch.as_tensor(table, dtype=torch.float64)
    if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 1:
        raise ValueError(f"table must be [seeds >= 2, points >= 1], got shape "
                         f"{tuple(t.shape)}")
    if min_tol < 0:
        raise ValueError(f"min_tol must be >= 0, got {min_tol}")
    return max(float(min_tol), 2 * t.std(0).median().item())


def three_way(strong, weak) -> str:
    """"supported" when every seed passes the strong test, "refuted" when none passes the
    weak one, "partly" otherwise. strong, weak: one bool per seed, the same seeds."""
    strong, weak = list(strong), list(weak)
    if not strong or len(strong) != len(weak):
        raise ValueError(f"strong and weak must hold one bool per seed, got "
                         f"{len(strong)} and {len(weak)}")
    if all(strong):
        return "supported"
    if not any(weak):
        return "refuted"
    return "partly"
