"""The cost of every remedy of Part III, measured in one run on one machine.

`python -m phaselib.bench remedies [--out book/part3/results/remedies_cost.json]
[--threads 1] [--quick] [--device cuda --max-t 65536 --max-ctx 131072]`

Book: Part III, "The remedies, measured". Two passes, B = 1, H heads of dh:

- "forward": one no-grad forward pass of each remedy (`phaselib.remedies`) on random
  q, k, v [1, H, T, dh] at T = min-t, 2 min-t, ..., max-t: `time_s` (wall) from
  `timing.time_call`, `cpu_s` (CPU seconds of the process, `cpu_seconds`: on a shared
  machine the steadier of the two), `peak_bytes` from `timing.peak_bytes` (allocated
  above what was allocated before the call, output included). "exact" (the [T, T]
  matrix written out) and the two remedies that are dense by construction,
  "landmark-retrieval" and "lsh", run up to --max-t-exact only: they hold several
  [H, T, T] tensors (about 3 GiB at T = 8192, H = 4; 64 times that at --max-t 65536).
- "decode": the state after a prompt of L tokens (`prefill_<name>_state`), then
  --decode-steps consecutive `<name>_step` calls (a whole block, so the compression
  of a completed block is counted); `time_s` is seconds per token (the median time of
  the run divided by its steps; `cpu_s` likewise), `peak_bytes` what the run
  allocates, `state_bytes` the cache or state held at context L (`state.nbytes()`).
  The state-space layers' state is [1, D, N] at any L, so a random one stands in for
  the prefilled one.

The methods (the simple versions keep their old names, so old rows stay comparable):

- forward: exact, fused (SDPA), gqa, mqa (`gqa_attention`, which reads the kv heads in
  place), window, sinks, landmark (block means), cluster (k-means centroids), fmm (far
  field outside the band), linear, ssm (time-invariant scan); then the faithful
  remedies: landmark-retrieval (Landmark Attention, exact tokens of the top_k blocks),
  lsh (Reformer's angular buckets over exact keys, shared QK, one round of n_buckets),
  fmm-all (FMMformer's far field over all keys), ssm-selective (Mamba's S6 scan at
  D = H dh, N = ssm_n, with Delta, B, C given as q, k, v are: the mixer's projections
  and short convolution are not timed, as no other row times its projections).
- decode: kv-cache, gqa, mqa, window, sinks, landmark, cluster, fmm, linear, ssm,
  fmm-all, ssm-selective (the S6 recurrence on one token, `selective_scan` from h;
  `state_bytes` counts h [1, D, N], not the mixer's conv buffer [1, K-1, D]).
  landmark-retrieval and lsh have no decode step and no decode rows: a decoder of
  either keeps the whole KV cache (the kv-cache rows), landmark-retrieval one mean
  key per block besides.

`meta["slopes"]` holds, per method, the log-log slopes of forward time and peak memory
against T and of decode time per token and state bytes against L, fitted over the
lengths >= --fit-from (the short lengths are dominated by fixed costs).
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from ..efficient_attention import (LinearAttentionState, linear_attention,
                                   linear_attention_step)
from ..plots import fit_loglog_slope
from ..provenance import provenance
from ..remedies import (cluster_attention, cluster_step, exact_attention, fmm_attention,
                        fmm_step, fused_causal, gqa_attention, gqa_step,
                        landmark_attention, landmark_retrieval_attention, landmark_step,
                        lsh_attention, lsh_rotation, prefill_cluster_state,
                        prefill_fmm_state, prefill_gqa_state, prefill_landmark_state,
                        prefill_sink_state, selective_scan, sink_attention, sink_step,
                        ssm_scan, ssm_step)
from ..remedies.ssm import SSMState
from .io import add_out_arguments, check_out, result_row, write_results
from .timing import MEMORY, TIMER, geometric_lengths, peak_bytes, time_call

__all__ = ["FORWARD", "DECODE", "DEFAULTS", "QUICK", "cpu_seconds", "forward_rows",
           "decode_rows", "fit_slopes", "run", "main"]

FORWARD = ("exact", "fused", "gqa", "mqa", "window", "sinks", "landmark", "cluster",
           "fmm", "linear", "ssm", "landmark-retrieval", "lsh", "fmm-all",
           "ssm-selective")
DECODE = ("kv-cache", "gqa", "mqa", "window", "sinks", "landmark", "cluster", "fmm",
          "linear", "ssm", "fmm-all", "ssm-selective")
# written-out [T, T] scores: up to max_t_exact only (see the module docstring)
DENSE = ("exact", "landmark-retrieval", "lsh")

DEFAULTS = dict(H=4, dh=32, gqa_heads=2, window=128, n_sink=4, block=64, n_clusters=8,
                iters=3, fmm_window=64, chunk=64, ssm_n=16, min_t=256, max_t=8192,
                max_t_exact=4096, min_ctx=1024, max_ctx=32768, decode_steps=64,
                repeats=3, fit_from=1024, top_k=2, n_buckets=8)
QUICK = dict(H=2, dh=8, gqa_heads=1, window=8, n_sink=2, block=8, n_clusters=2, iters=2,
             fmm_window=8, chunk=8, ssm_n=4, min_t=16, max_t=64, max_t_exact=32,
             min_ctx=32, max_ctx=64, decode_steps=8, repeats=1, fit_from=16, top_k=2,
             n_buckets=4)


def _forward_fn(method: str, q, k, v, cfg: dict):
    """A no-argument callable: one forward pass of `method` on q, k, v [B, H, T, dh]."""
    H, T = q.shape[1], q.shape[2]
    kg, vg = k[:, :cfg["gqa_heads"]], v[:, :cfg["gqa_heads"]]
    calls = {
        "exact": lambda: exact_attention(q, k, v),
        "fused": lambda: fused_causal(q, k, v),
        "gqa": lambda: gqa_attention(q, kg, vg),
        "mqa": lambda: gqa_attention(q, k[:, :1], v[:, :1]),
        "window": lambda: sink_attention(q, k, v, cfg["window"]),
        "sinks": lambda: sink_attention(q, k, v, cfg["window"], cfg["n_sink"]),
        "landmark": lambda: landmark_attention(q, k, v, cfg["block"]),
        "cluster": lambda: cluster_attention(q, k, v, cfg["block"], cfg["n_clusters"],
                                             iters=cfg["iters"]),
        "fmm": lambda: fmm_attention(q, k, v, cfg["fmm_window"]),
        "linear": lambda: linear_attention(q, k, v, chunk=cfg["chunk"]),
        "landmark-retrieval": lambda: landmark_retrieval_attention(
            q, k, v, cfg["block"], cfg["top_k"]),
        "fmm-all": lambda: fmm_attention(q, k, v, cfg["fmm_window"], far_keys="all"),
    }
    if method == "lsh":
        # dense by construction: the [T, T] scores are masked to the buckets, so it
        # costs O(T^2 d) like exact attention. Shared QK as in the mixer: the key is
        # the normalised query, made inside the call; the rotation is fixed
        rot = lsh_rotation(q.shape[-1], cfg["n_buckets"]).to(q)
        return lambda: lsh_attention(q, F.normalize(q, dim=-1), v, rot)
    if method in ("ssm", "ssm-selective"):   # D = H dh channels, N states each
        D, N = H * q.shape[-1], cfg["ssm_n"]
        x = q.transpose(1, 2).reshape(q.shape[0], T, D)
        if method == "ssm":
            a, b, c = _ssm_params(D, N, q)
            return lambda: ssm_scan(x, a, b, c)
        # the loop over t (chunk=None), as SelectiveSSMMixer runs it: on a CPU faster
        # than the chunked scan (0.4 s against 1.4 s at T = 8192, D = 128, N = 16)
        delta, A, b, c, d_skip = _selective_params(T, D, N, q)
        return lambda: selective_scan(x, delta, A, b, c, d_skip)
    if method not in calls:
        raise ValueError(f"method must be one of {FORWARD}, got {method!r}")
    return calls[method]


def cpu_seconds(fn, repeats: int = 3) -> float:
    """Median CPU seconds of this process per call of fn() (`time.process_time`, after
    one warm-up call): unlike wall time, not inflated by other jobs on the cores."""
    fn()
    runs = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        runs.append(time.process_time() - t0)
    return statistics.median(runs)


def _ssm_params(D: int, N: int, like: torch.Tensor):
    g = torch.Generator().manual_seed(1)
    a = torch.rand(D, N, generator=g) * 0.5 + 0.45
    b, c = torch.randn(D, N, generator=g), torch.randn(D, N, generator=g)
    return (t.to(like) for t in (a, b, c))


def _selective_params(T: int, D: int, N: int, like: torch.Tensor):
    """Inputs of the S6 scan for T tokens as SelectiveSSMMixer makes them at init:
    delta [1, T, D] log-uniform in [1e-3, 0.1], A = -(1 .. N) [D, N], B, C [1, T, N],
    d_skip = 1 [D]."""
    g = torch.Generator().manual_seed(1)
    lo, hi = math.log(1e-3), math.log(0.1)
    delta = torch.exp(torch.rand(1, T, D, generator=g) * (hi - lo) + lo)
    A = -torch.arange(1, N + 1, dtype=torch.float32).repeat(D, 1)
    b, c = torch.randn(1, T, N, generator=g), torch.randn(1, T, N, generator=g)
    return tuple(t.to(like) for t in (delta, A, b, c, torch.ones(D)))


def forward_rows(ts, methods=FORWARD, cfg: dict | None = None, *, device="cpu",
                 seed: int = 0, log=print) -> list[dict]:
    """One `result_row` per (method, T), pass "forward"."""
    cfg = {**DEFAULTS, **(cfg or {})}
    dev = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for T in ts:
        q, k, v = (torch.randn(1, cfg["H"], T, cfg["dh"], generator=g).to(dev)
                   for _ in range(3))
        for m in methods:
            if m in DENSE and T > cfg["max_t_exact"]:
                continue
            fn = _forward_fn(m, q, k, v, cfg)

            @torch.no_grad()
            def call(fn=fn):
                return fn()

            wall = time_call(call, dev, cfg["repeats"])
            rows.append(result_row(m, "forward", T, wall, peak_bytes(call, dev),
                                   cpu_s=cpu_seconds(call, cfg["repeats"])))
            log(f"forward {m:>18}  T={T:>6}  {rows[-1]['time_s'] * 1e3:9.2f} ms  "
                f"{rows[-1]['peak_bytes'] / 2**20:9.2f} MiB")
    return rows


def _decode_setup(method: str, L: int, cfg: dict, dev, g):
    """(state after L random tokens, step(q_t, k_t, v_t, state), heads of k and v)."""
    H, dh, n = cfg["H"], cfg["dh"], cfg["decode_steps"]
    hkv = {"gqa": cfg["gqa_heads"], "mqa": 1}.get(method, H)

    def kv(heads):
        return (torch.randn(1, heads, L, dh, generator=g).to(dev) for _ in range(2))

    if method == "ssm":
        D = H * dh
        a, b, c = _ssm_params(D, cfg["ssm_n"], torch.zeros((), device=dev))
        # the state after L tokens is [1, D, N] whatever L; a random one costs the same
        # to step as a prefilled one (prefill_ssm_state would scan L tokens first)
        st = SSMState(torch.randn(1, D, cfg["ssm_n"], generator=g).to(dev), L)
        return st, (lambda q_t, k_t, v_t, s: ssm_step(q_t.reshape(1, D), a, b, c, s)), H
    if method == "ssm-selective":
        D = H * dh
        # Delta, B, C of the n decoded tokens, made beforehand (as q, k, v are); the
        # step reads token s.t - L's and runs the recurrence once from h
        delta, A, b, c, d_skip = _selective_params(n, D, cfg["ssm_n"],
                                                   torch.zeros((), device=dev))
        st = SSMState(torch.randn(1, D, cfg["ssm_n"], generator=g).to(dev), L)

        def step(q_t, k_t, v_t, s):
            i = slice(s.t - L, s.t - L + 1)
            y, h = selective_scan(q_t.reshape(1, 1, D), delta[:, i], A, b[:, i],
                                  c[:, i], d_skip, h0=s.h, return_state=True)
            return y, SSMState(h, s.t + 1)
        return st, step, H
    k, v = kv(hkv)
    if method in ("kv-cache", "gqa", "mqa"):
        return prefill_gqa_state(k, v, capacity=L + n), gqa_step, hkv
    if method in ("window", "sinks"):
        n_sink = cfg["n_sink"] if method == "sinks" else 0
        return prefill_sink_state(k, v, cfg["window"], n_sink), sink_step, hkv
    if method == "landmark":
        return prefill_landmark_state(k, v, cfg["block"]), landmark_step, hkv
    if method == "cluster":
        return (prefill_cluster_state(k, v, cfg["block"], cfg["n_clusters"],
                                      iters=cfg["iters"]), cluster_step, hkv)
    if method in ("fmm", "fmm-all"):
        far_keys = "all" if method == "fmm-all" else "outside"
        return (prefill_fmm_state(k, v, cfg["fmm_window"], far_keys=far_keys), fmm_step,
                hkv)
    if method == "linear":
        from ..efficient_attention import elu_feature_map

        fk = elu_feature_map(k)
        st = LinearAttentionState(fk.transpose(-1, -2) @ v, fk.sum(2))
        return st, linear_attention_step, hkv
    raise ValueError(f"method must be one of {DECODE}, got {method!r}")


def _state_bytes(state) -> int:
    if isinstance(state, LinearAttentionState):
        return int(sum(t.numel() * t.element_size() for t in (state.S, state.z)))
    return state.nbytes()


def decode_rows(contexts, methods=DECODE, cfg: dict | None = None, *, device="cpu",
                seed: int = 0, log=print) -> list[dict]:
    """One `result_row` per (method, L), pass "decode": seconds per token over
    `decode_steps` steps after a prompt of L tokens, with `state_bytes` at L."""
    cfg = {**DEFAULTS, **(cfg or {})}
    dev = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    H, dh, n = cfg["H"], cfg["dh"], cfg["decode_steps"]
    rows = []
    for L in contexts:
        for m in methods:
            state, step, hkv = _decode_setup(m, L, cfg, dev, g)
            qs = torch.randn(n, 1, H, dh, generator=g).to(dev)
            ks, vs = (torch.randn(n, 1, hkv, dh, generator=g).to(dev) for _ in range(2))
            size = _state_bytes(state)

            @torch.no_grad()
            def call(state=state, step=step):
                s = state
                for i in range(n):
                    _, s = step(qs[i], ks[i], vs[i], s)
                return s

            t = time_call(call, dev, cfg["repeats"]) / n
            rows.append(result_row(m, "decode", L, t, peak_bytes(call, dev),
                                   cpu_s=cpu_seconds(call, cfg["repeats"]) / n,
                                   state_bytes=int(size), steps=n))
            log(f"decode  {m:>18}  L={L:>6}  {t * 1e6:9.1f} us/token  "
                f"state {size / 2**20:9.3f} MiB")
    return rows


def fit_slopes(rows, fit_from: int) -> dict:
    """{method: {"forward_time", "forward_cpu", "forward_peak", "decode_time",
    "decode_cpu", "state_bytes"}}: log-log slopes over the rows with T >= fit_from
    (None with fewer than two lengths or a zero value)."""
    keys = (("forward", "time_s", "forward_time"), ("forward", "cpu_s", "forward_cpu"),
            ("forward", "peak_bytes", "forward_peak"),
            ("decode", "time_s", "decode_time"), ("decode", "cpu_s", "decode_cpu"),
            ("decode", "state_bytes", "state_bytes"))
    out: dict = {}
    for m in dict.fromkeys(r["method"] for r in rows):
        out[m] = {}
        for pass_, key, name in keys:
            pts = sorted((r["T"], r[key]) for r in rows if r["method"] == m
                         and r["pass"] == pass_ and r["T"] >= fit_from)
            if len(pts) >= 2 and all(y > 0 for _, y in pts):
                out[m][name] = fit_loglog_slope(*zip(*pts))[0]
            elif pts:
                out[m][name] = None
    return out


def run(cfg: dict | None = None, *, forward=FORWARD, decode=DECODE, device="cpu",
        log=print) -> tuple[list[dict], dict]:
    """All rows (forward, then decode) and their slopes."""
    cfg = {**DEFAULTS, **(cfg or {})}
    rows = forward_rows(geometric_lengths(cfg["min_t"], cfg["max_t"]), forward, cfg,
                        device=device, log=log)
    rows += decode_rows(geometric_lengths(cfg["min_ctx"], cfg["max_ctx"]), decode, cfg,
                        device=device, log=log)
    return rows, fit_slopes(rows, cfg["fit_from"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench remedies",
                                description=__doc__.split("\n")[0])
    add_out_arguments(p, default="book/part3/results/remedies_cost.json")
    p.add_argument("--quick", action="store_true", help="tiny sizes (for tests)")
    for name, val in DEFAULTS.items():
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None,
                       help=f"default {val}")
    p.add_argument("--forward", default=",".join(FORWARD),
                   help="forward methods, comma-separated (default: all: "
                   f"{', '.join(FORWARD)})")
    p.add_argument("--decode", default=",".join(DECODE),
                   help="decode methods, comma-separated (default: all: "
                   f"{', '.join(DECODE)}; landmark-retrieval and lsh have no "
                   "decode step)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    cfg = dict(QUICK if a.quick else DEFAULTS)
    cfg.update({k: getattr(a, k) for k in DEFAULTS if getattr(a, k) is not None})
    if not (1 <= cfg["min_t"] <= cfg["max_t"]
            and 1 <= cfg["min_ctx"] <= cfg["max_ctx"]):
        p.error("need 1 <= --min-t <= --max-t and 1 <= --min-ctx <= --max-ctx")
    if cfg["H"] % cfg["gqa_heads"]:
        p.error(f"--gqa-heads must divide --H, got {cfg['gqa_heads']} and {cfg['H']}")
    if cfg["n_buckets"] < 1 or (cfg["n_buckets"] > 1 and cfg["n_buckets"] % 2):
        p.error(f"--n-buckets must be 1 or even, got {cfg['n_buckets']}")
    forward = tuple(m for m in a.forward.split(",") if m)
    decode = tuple(m for m in a.decode.split(",") if m)
    bad = ([m for m in forward if m not in FORWARD]
           + [m for m in decode if m not in DECODE])
    if bad:
        p.error(f"unknown methods {bad}; forward: {FORWARD}, decode: {DECODE}")
    check_out(a.out, a.allow_dirty)
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    rows, slopes = run(cfg, forward=forward, decode=decode, device=a.device)
    kind = "cuda" if a.device.startswith("cuda") else "cpu"
    command = "python -m phaselib.bench remedies " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    path = write_results(a.out, "remedies", rows, allow_dirty=a.allow_dirty,
                         device=a.device,
                         provenance=provenance(command, [0], a.device), **cfg,
                         batch=1, threads=torch.get_num_threads(), slopes=slopes,
                         timed=TIMER[kind] + "; forward: one no-grad pass; decode: "
                         "decode_steps steps, per token",
                         cpu="time.process_time per call, median, after one warm-up",
                         memory=MEMORY[kind])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
