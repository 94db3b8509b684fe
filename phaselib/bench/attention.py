"""Time and memory of attention variants and the pyramid against sequence length.

`python -m phaselib.bench attention --out results/attention.json --max-t 2048`

Book: Part II, "F2 Quadratic pairwise cost". Methods, all causal, on q, k, v
[B, H, T, dh] (the pyramid on x [B, T, H*dh]):

- naive:   `phaselib.attention.attention`, the [T, T] scores written out;
- sdpa:    `F.scaled_dot_product_attention(is_causal=True)`, PyTorch's fused kernel;
- window:  `sliding_window_attention` with a fixed window;
- linear:  chunked causal `linear_attention`;
- pyramid: `phaselib.pyramid.pyramid`, the causal dyadic transport features.

Time: median wall-clock seconds of `repeats` calls after one warm-up, under no_grad.
Memory (`mem_bytes`, the peak allocated above the inputs during one call, output
included) is measured: on CUDA with `torch.cuda.max_memory_allocated`; on the CPU from
the allocation events that `torch.profiler` records with `profile_memory=True` (the
running "Total Allocated" of PyTorch's CPU allocator), in a separate, untimed call.
Python's `tracemalloc` would not see these allocations. Each row also carries
`accounted_bytes`, what the method must allocate counted from the shapes by reading its
code, to compare with; `mem_kind` says how `mem_bytes` was obtained.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import torch
import torch.nn.functional as F

from ..attention import attention
from ..efficient_attention import linear_attention, sliding_window_attention
from ..kernels.pyramid.reference import default_levels
from ..pyramid import pyramid
from .io import write_results
from .timing import median_time

__all__ = ["METHODS", "accounted_bytes", "cpu_peak_bytes", "run", "main", "plot_time", "plot_memory"]

METHODS = ("naive", "sdpa", "window", "linear", "pyramid")


def _call(method: str, q, k, v, x, window: int, chunk: int):
    if method == "naive":
        return attention(q, k, v, causal=True)[0]
    if method == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if method == "window":
        return sliding_window_attention(q, k, v, window)
    if method == "linear":
        return linear_attention(q, k, v, chunk=chunk)
    if method == "pyramid":
        return pyramid(x, backend="auto")[0]
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def accounted_bytes(method: str, B: int, H: int, T: int, dh: int, *, window: int = 128,
                    chunk: int = 64, elem: int = 4) -> int:
    """Bytes of the tensors `method` allocates at its peak, outputs included, from shapes.

    naive: scores, masked scores and weights [B, H, T, T] plus two [T, T] bool masks.
    sdpa: what the fused (online-softmax) algorithm needs beyond its output, a running
    max and sum per query; the CPU kernel's own tile buffers are not counted.
    window: the padded keys and values and three [B, H, T, 2w] score blocks.
    linear: phi(q), phi(k), the per-chunk [c, c] blocks, the chunk states [dh, dh]
    and their cumulative sums. pyramid: centroids, per-level transports and the
    stacked features [B, T, L, D+1]. Every method also counts its output.
    """
    out = B * H * T * dh * elem
    if method == "naive":
        return 3 * B * H * T * T * elem + 2 * T * T + out
    if method == "sdpa":
        return 2 * B * H * T * elem + out
    if method == "window":
        w = min(window, T)
        n = -(-T // w)
        return 2 * B * H * (n + 1) * w * dh * elem + 3 * B * H * n * w * 2 * w * elem + out
    if method == "linear":
        c = min(chunk, T)
        n = -(-T // c)
        return (3 * B * H * n * c * dh + 2 * B * H * n * c * c + 3 * B * H * n * dh * dh) * elem + out
    if method == "pyramid":
        D, L = H * dh, default_levels(T)
        return (2 * B * T * D + 3 * B * T * L * (D + 1)) * elem
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def cpu_peak_bytes(fn) -> int | None:
    """Peak bytes PyTorch's CPU allocator holds during fn() above what it held before.

    Read from the "[memory]" events of `torch.profiler` (profile_memory=True), whose
    "Total Allocated" is the allocator's running total. None if no event was recorded.
    """
    from torch.profiler import ProfilerActivity, profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "99")  # silence the profiler's start/stop lines
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
        return None
    before = events[0]["Total Allocated"] - events[0]["Bytes"]
    return int(max(e["Total Allocated"] for e in events) - before)


def run(ts, methods=METHODS, *, B: int = 1, H: int = 4, dh: int = 32, window: int = 128,
        chunk: int = 64, repeats: int = 3, device: str = "cpu", seed: int = 0,
        naive_max_t: int | None = None) -> list[dict]:
    """One row per (method, T): {"method", "T", "seconds", "mem_bytes", "mem_kind"}.

    `naive_max_t` skips the naive method above that length (its [T, T] matrices grow fast).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {unknown}")
    dev = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for T in ts:
        q, k, v = (torch.randn(B, H, T, dh, generator=g).to(dev) for _ in range(3))
        x = torch.randn(B, T, H * dh, generator=g).to(dev)
        for m in methods:
            if m == "naive" and naive_max_t is not None and T > naive_max_t:
                continue
            with torch.no_grad():
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated() if dev.type == "cuda" else 0
                seconds = median_time(lambda: _call(m, q, k, v, x, window, chunk), dev, repeats, warmup=1)
            acct = accounted_bytes(m, B, H, T, dh, window=window, chunk=chunk)
            if dev.type == "cuda":
                mem, kind = torch.cuda.max_memory_allocated() - base, "measured (torch.cuda)"
            else:
                with torch.no_grad():
                    mem = cpu_peak_bytes(lambda: _call(m, q, k, v, x, window, chunk))
                mem, kind = (acct, "accounted") if mem is None else (mem, "measured (profiler)")
            rows.append({"method": m, "T": T, "seconds": seconds,
                         "mem_bytes": int(mem), "mem_kind": kind, "accounted_bytes": int(acct)})
    return rows


def _rows_of(doc_or_rows):
    return doc_or_rows["rows"] if isinstance(doc_or_rows, dict) else doc_or_rows


def _plot(ax, rows, key, methods, fit_from):
    from ..plots import plot_loglog

    slopes = {}
    for m in methods:
        pts = sorted((r["T"], r[key]) for r in rows if r["method"] == m)
        if not pts:
            continue
        ts, ys = zip(*pts)
        fit = [(t, y) for t, y in pts if t >= fit_from]
        slopes[m] = None
        if len(fit) >= 2:
            from ..plots import fit_loglog_slope

            slopes[m] = fit_loglog_slope(*zip(*fit))[0]
        label = m if slopes[m] is None else f"{m} (slope {slopes[m]:.2f})"
        plot_loglog(ax, ts, ys, label, fit=False)
    all_ts = sorted({r["T"] for r in rows if r["method"] in methods})
    if all_ts:
        ax.set_xticks(all_ts, [str(t) for t in all_ts])
        ax.minorticks_off()
    ax.set_xlabel("sequence length T (tokens)")
    ax.legend(fontsize=8)
    return slopes


def plot_time(ax, results, methods=METHODS, fit_from: int = 0) -> dict:
    """Seconds per call against T on log-log axes; returns {method: slope fitted for T >= fit_from}."""
    slopes = _plot(ax, _rows_of(results), "seconds", methods, fit_from)
    ax.set_ylabel("time per call (s)")
    return slopes


def plot_memory(ax, results, methods=METHODS, fit_from: int = 0, key: str = "mem_bytes") -> dict:
    """Peak bytes against T (key "mem_bytes", measured, or "accounted_bytes"); returns slopes."""
    slopes = _plot(ax, _rows_of(results), key, methods, fit_from)
    ax.set_ylabel("peak memory (bytes)")
    return slopes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench attention", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--min-t", type=int, default=128)
    p.add_argument("--max-t", type=int, default=2048, help="largest T (powers of two from --min-t)")
    p.add_argument("--naive-max-t", type=int, default=None, help="skip naive above this T")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=32)
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    a = p.parse_args(argv)
    if a.min_t < 1 or a.max_t < a.min_t:
        p.error(f"need 1 <= --min-t <= --max-t, got {a.min_t} and {a.max_t}")
    if a.threads:
        torch.set_num_threads(a.threads)
    ts, t = [], a.min_t
    while t <= a.max_t:
        ts.append(t)
        t *= 2
    methods = tuple(m for m in a.methods.split(",") if m)
    rows = run(ts, methods, B=a.batch, H=a.heads, dh=a.head_dim, window=a.window, chunk=a.chunk,
               repeats=a.repeats, device=a.device, naive_max_t=a.naive_max_t)
    write_results(a.out, "attention", rows, device=a.device, B=a.batch, H=a.heads, dh=a.head_dim,
                  window=a.window, chunk=a.chunk, repeats=a.repeats)
    print(f"wrote {len(rows)} rows to {a.out}")
    return 0
