"""The one timer and the one peak-memory measurement every benchmark uses, and length grids.

* `time_call(fn, device, repeats)`: median seconds per call. On CUDA,
  `triton.testing.do_bench` (it synchronises, warms up and clears the L2 cache between
  runs); on the CPU, `torch.utils.benchmark.Timer` (it fixes the thread count and
  warms up), `repeats` measurements of one call each, after one warm-up call.
* `peak_bytes(fn, device)`: bytes allocated during one call of fn() above what was
  allocated before it. On CUDA `torch.cuda.max_memory_allocated`; on the CPU the
  running "Total Allocated" of PyTorch's CPU allocator, read from the memory events of
  `torch.profiler` (profile_memory=True). Python's `tracemalloc` would not see these.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile

import torch

__all__ = ["time_call", "peak_bytes", "geometric_lengths", "TIMER", "MEMORY"]

TIMER = {"cuda": "triton.testing.do_bench, median", "cpu": "torch.utils.benchmark.Timer, median"}
MEMORY = {"cuda": "torch.cuda.max_memory_allocated above the bytes allocated before the call",
          "cpu": "torch.profiler memory events: peak of the CPU allocator's total above "
                 "the total before the call"}


def time_call(fn, device: torch.device | str = "cpu", repeats: int = 5) -> float:
    """Median seconds per call of fn() (see the module docstring for how, per device)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = torch.device(device)
    if device.type == "cuda":
        from triton.testing import do_bench

        return do_bench(fn, warmup=10, rep=max(20, 10 * repeats), return_mode="median") / 1e3
    from torch.utils.benchmark import Timer

    fn()                                                   # warm-up
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return statistics.median(timer.timeit(number=1).median for _ in range(repeats))


def peak_bytes(fn, device: torch.device | str = "cpu") -> int:
    """Bytes allocated by one call of fn() above what was allocated before it.

    Raises RuntimeError on the CPU if the profiler recorded no allocation at all."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    from torch.profiler import ProfilerActivity, profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "99")    # silence the profiler's start/stop lines
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = [e["args"] for e in json.load(f)["traceEvents"] if e.get("name") == "[memory]"]
    finally:
        os.remove(path)
    if not events:
        raise RuntimeError("torch.profiler recorded no CPU allocation during the call; "
                           "peak memory cannot be measured")
    before = events[0]["Total Allocated"] - events[0]["Bytes"]
    return int(max(e["Total Allocated"] for e in events) - before)


def geometric_lengths(min_t: int, max_t: int, factor: int = 2) -> list[int]:
    """min_t, factor * min_t, factor**2 * min_t, ... below max_t, then max_t itself."""
    ts, t = [], min_t
    while t < max_t:
        ts.append(t)
        t *= factor
    return ts + [max_t]
