"""Timing helpers shared by the benchmarks: device sync, robust per-call times, length grids."""

from __future__ import annotations

import statistics
import time

import torch

__all__ = ["sync", "median_time", "best_time", "geometric_lengths"]


def sync(device: torch.device | str) -> None:
    """Wait for queued GPU work, so that a timer measures the work and not its launch."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device: torch.device | str = "cpu", repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds per call of fn() after `warmup` calls, synchronising the device."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def best_time(fn, repeats: int = 5, inner: int = 1, device: torch.device | str = "cpu") -> float:
    """Seconds per call of fn(): the best of `repeats` runs of `inner` calls (after a warm-up).

    The best, not the mean: on a shared machine the slow runs are other people's work.
    """
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def geometric_lengths(min_t: int, max_t: int, factor: int = 2) -> list[int]:
    """min_t, factor * min_t, factor**2 * min_t, ... below max_t, then max_t itself."""
    ts, t = [], min_t
    while t < max_t:
        ts.append(t)
        t *= factor
    return ts + [max_t]
