"""Time and memory of attention variants and the pyramid against sequence length.

`python -m phaselib.bench attention --out results/attention.json --max-t 2048`

Book: Part II, "F2 Quadratic pairwise cost". Methods, all causal, on q, k, v
[B, H, T, dh] (the pyramid on x [B, T, H*dh]):

- naive:   `phaselib.attention.attention`, the [T, T] scores written out;
- sdpa:    `F.scaled_dot_product_attention(is_causal=True)`, PyTorch's fused kernel;
- window:  `sliding_window_attention` with a fixed window;
- linear:  chunked causal `linear_attention`;
- pyramid: `phaselib.pyramid.pyramid`, the causal dyadic transport features.

Rows are `io.result_row`s (pass "forward", under no_grad): `time_s` from the one timer
`timing.time_call` (median of `repeats` calls), `peak_bytes` (the peak allocated above
the inputs during one separate call, output included) from `timing.peak_bytes`: on CUDA
`torch.cuda.max_memory_allocated`, on the CPU the allocation events of `torch.profiler`.
Each row also carries `accounted_bytes`, what the method must allocate counted from the
shapes by reading its code, to compare with; `mem_kind` says how `peak_bytes` was obtained.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from ..attention import attention
from ..efficient_attention import linear_attention, sliding_window_attention
from .._levels import default_levels
from ..pyramid import pyramid
from .io import add_out_arguments, check_out, result_row, write_results
from .timing import MEMORY, TIMER, peak_bytes, time_call

__all__ = ["METHODS", "accounted_bytes", "run", "time_slopes", "main", "plot_time",
           "plot_memory"]

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


def run(ts, methods=METHODS, *, B: int = 1, H: int = 4, dh: int = 32, window: int = 128,
        chunk: int = 64, repeats: int = 3, device: str = "cpu", seed: int = 0,
        naive_max_t: int | None = None) -> list[dict]:
    """One `result_row` per (method, T), pass "forward", with `accounted_bytes` and `mem_kind`.

    `naive_max_t` skips the naive method above that length (its [T, T] matrices grow fast).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {unknown}")
    dev = torch.device(device)
    kind = "measured (torch.cuda)" if dev.type == "cuda" else "measured (profiler)"
    g = torch.Generator().manual_seed(seed)
    rows = []
    for T in ts:
        q, k, v = (torch.randn(B, H, T, dh, generator=g).to(dev) for _ in range(3))
        x = torch.randn(B, T, H * dh, generator=g).to(dev)
        for m in methods:
            if m == "naive" and naive_max_t is not None and T > naive_max_t:
                continue

            @torch.no_grad()
            def call(m=m):
                return _call(m, q, k, v, x, window, chunk)

            acct = accounted_bytes(m, B, H, T, dh, window=window, chunk=chunk)
            rows.append(result_row(m, "forward", T, time_call(call, dev, repeats),
                                   peak_bytes(call, dev), mem_kind=kind,
                                   accounted_bytes=int(acct)))
    return rows


def _cpu_seconds(fn, repeats: int) -> float:
    """Median CPU seconds of the process per call of fn() (what a busy shared machine
    does not inflate, unlike the wall clock; run with one thread)."""
    secs = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        secs.append(time.process_time() - t0)
    return statistics.median(secs)


def time_slopes(ts, methods=("naive", "sdpa"), *, passes: int = 5, B: int = 1,
                H: int = 4, dh: int = 32, window: int = 128, chunk: int = 64,
                repeats: int = 1, device: str = "cpu", seed: int = 0) -> dict:
    """The log-log slope of the time per call against T, fitted once per pass over
    `ts`: {method: [slope of each of `passes` passes]}, for an interval over passes.

    Each pass times every (method, T) afresh on the same inputs (median of `repeats`
    calls) and alternates the order of the lengths, so that a slow spell does not tilt
    every fit the same way. On the CPU the clock is the process's CPU time (the work
    done, which other jobs on a shared machine do not inflate; run with one thread), on
    a GPU `timing.time_call`."""
    if passes < 2 or len(ts) < 2:
        raise ValueError(f"need passes >= 2 and at least 2 lengths, got {passes}, {ts}")
    from ..plots import fit_loglog_slope

    dev = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    inputs = {T: [torch.randn(B, H, T, dh, generator=g).to(dev) for _ in range(3)]
              + [torch.randn(B, T, H * dh, generator=g).to(dev)] for T in ts}
    out = {m: [] for m in methods}
    with torch.no_grad():
        for p in range(passes):
            secs = {m: {} for m in methods}
            for T in (list(ts) if p % 2 == 0 else list(ts)[::-1]):
                q, k, v, x = inputs[T]
                for m in methods:
                    def fn(m=m):
                        return _call(m, q, k, v, x, window, chunk)

                    if dev.type == "cuda":
                        secs[m][T] = time_call(fn, dev, repeats)
                    else:
                        if p == 0:
                            fn()                       # warm-up
                        secs[m][T] = _cpu_seconds(fn, repeats)
            for m in methods:
                out[m].append(fit_loglog_slope(list(ts), [secs[m][T] for T in ts])[0])
    return out


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
    slopes = _plot(ax, _rows_of(results), "time_s", methods, fit_from)
    ax.set_ylabel("time per call (s)")
    return slopes


def plot_memory(ax, results, methods=METHODS, fit_from: int = 0, key: str = "peak_bytes") -> dict:
    """Peak bytes against T (key "peak_bytes", measured, or "accounted_bytes"); returns slopes."""
    slopes = _plot(ax, _rows_of(results), key, methods, fit_from)
    ax.set_ylabel("peak memory (bytes)")
    return slopes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench attention", description=__doc__.split("\n")[0])
    add_out_arguments(p)
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
    check_out(a.out, a.allow_dirty)
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
    kind = "cuda" if a.device.startswith("cuda") else "cpu"
    write_results(a.out, "attention", rows, allow_dirty=a.allow_dirty,
                  device=a.device, B=a.batch, H=a.heads, dh=a.head_dim,
                  window=a.window, chunk=a.chunk, repeats=a.repeats, timed=TIMER[kind],
                  memory=MEMORY[kind])
    print(f"wrote {len(rows)} rows to {a.out}")
    return 0
