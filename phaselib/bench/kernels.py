"""Speed, memory and bandwidth of the pyramid against causal fused attention.

Book: Part IV, "GPU kernels". Two benchmarks share this module:

* `python -m phaselib.bench pyramid --out FILE.json [--device cuda --max-t 65536]`:
  `phaselib.pyramid` (x [B, T, D]) and `F.scaled_dot_product_attention(causal)` (q, k, v
  [B, H, T, D/H]), forward and forward+backward, at T = min_t, 2 min_t, ..., max_t.
  Time and peak memory: `timing.time_call` and `timing.peak_bytes`, the one timer and
  the one memory measurement of every benchmark (inputs and the upstream gradient are
  made beforehand and not counted).
* `python -m phaselib.bench pyramid-bandwidth --out FILE.json`: the bytes the pyramid
  must move (read x, write the features; backward: read the upstream gradient and x,
  write the gradient of x) divided by its time, as a fraction of what `clone` achieves
  on a tensor with the same bytes moved, measured in the same run.

On the CPU the pyramid runs its PyTorch reference ("auto"); on CUDA the Triton kernels.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from .._levels import default_levels
from ..pyramid import pyramid
from .io import add_out_arguments, check_out, result_row, write_results
from .timing import MEMORY, TIMER, geometric_lengths, peak_bytes, time_call

__all__ = ["DTYPES", "sdpa_backend", "pyramid_cost", "sdpa_cost", "bandwidth_cost", "lengths", "plot_cost",
           "plot_bandwidth", "main", "main_bandwidth"]


def _measure(method, T, fwd, bwd, device, repeats, **extra) -> list[dict]:
    return [result_row(method, p, T, time_call(fn, device, repeats), peak_bytes(fn, device), **extra)
            for p, fn in (("forward", fwd), ("forward+backward", bwd))]


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _dtype(dtype) -> torch.dtype:
    """A torch dtype from a name of DTYPES or a torch.dtype; a clear error otherwise."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")


def sdpa_backend(q, k, v, is_causal: bool = True) -> str:
    """The name of the kernel `F.scaled_dot_product_attention` picks for these inputs
    ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"), read from
    PyTorch's own dispatcher; "unknown" if this PyTorch does not expose it."""
    try:
        from torch.nn.attention import SDPBackend

        choice = int(torch._fused_sdp_choice(q, k, v, None, 0.0, is_causal))
        names = {int(getattr(SDPBackend, n)): n for n in dir(SDPBackend) if n.isupper()}
        return names.get(choice, f"backend {choice}")
    except (AttributeError, ImportError, RuntimeError, TypeError):
        return "unknown"


def pyramid_cost(T, dim=64, batch=1, *, repeats=5, device="cpu", backend="auto", seed=0,
                 dtype="float32") -> list[dict]:
    """Rows for the pyramid at length T: forward and forward+backward, time and peak
    bytes, with inputs of `dtype` (a DTYPES name)."""
    device, dt = torch.device(device), _dtype(dtype)
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, T, dim, generator=g, device=device).to(dt).requires_grad_(True)
    L = default_levels(T)
    gout = torch.randn(batch, T, L, dim + 1, generator=g, device=device).to(dt)

    def fwd():
        with torch.no_grad():
            return pyramid(x, L, backend=backend)[0]

    def bwd():
        return torch.autograd.grad(pyramid(x, L, backend=backend)[0], x, gout)[0]

    return _measure("pyramid", T, fwd, bwd, device, repeats, levels=L, backend=backend,
                    dtype=str(dt).removeprefix("torch."))


def sdpa_cost(T, dim=64, heads=1, batch=1, *, repeats=5, device="cpu", seed=0,
              dtype="float32") -> list[dict]:
    """Rows for causal F.scaled_dot_product_attention at length T (the same model width),
    with inputs of `dtype`; each row names the SDPA kernel that ran (`sdpa_backend`)."""
    device, dt = torch.device(device), _dtype(dtype)
    g = torch.Generator(device=device).manual_seed(seed)
    q, k, v, gout = (torch.randn(batch, heads, T, dim // heads, generator=g,
                                 device=device).to(dt) for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)

    def fwd():
        with torch.no_grad():
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def bwd():
        return torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                   (q, k, v), gout)

    return _measure("sdpa", T, fwd, bwd, device, repeats, heads=heads,
                    dtype=str(dt).removeprefix("torch."),
                    sdpa_backend=sdpa_backend(q, k, v))


def bandwidth_cost(T, dim=64, batch=1, *, repeats=5, device="cpu", backend="auto", seed=0) -> list[dict]:
    """Achieved bytes/s of the pyramid and of `clone` moving the same bytes, per pass."""
    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, T, dim, generator=g, device=device, requires_grad=True)
    L = default_levels(T)
    gout = torch.randn(batch, T, L, dim + 1, generator=g, device=device)
    esize = x.element_size()
    moved = {"forward": (x.numel() + gout.numel()) * esize,
             "backward": (gout.numel() + 2 * x.numel()) * esize}
    out = pyramid(x, L, backend=backend)[0]
    fns = {"forward": lambda: pyramid(x.detach(), L, backend=backend),
           "backward": lambda: torch.autograd.grad(out, x, gout, retain_graph=True)}
    rows = []
    for p, nbytes in moved.items():
        t_pyr = time_call(fns[p], device, repeats)
        buf = torch.empty(nbytes // (2 * esize), device=device)   # clone reads and writes it
        t_copy = time_call(buf.clone, device, repeats)
        bw_pyr, bw_copy = nbytes / t_pyr, 2 * buf.numel() * esize / t_copy
        rows.append(result_row("pyramid", p, T, t_pyr, peak_bytes(fns[p], device), levels=L,
                               bytes=nbytes, copy_time_s=t_copy, bytes_per_s=bw_pyr,
                               copy_bytes_per_s=bw_copy, fraction_of_copy=bw_pyr / bw_copy))
    return rows


def lengths(min_t: int, max_t: int) -> list[int]:
    """min_t, 2 min_t, 4 min_t, ... up to max_t (max_t itself always included)."""
    return geometric_lengths(min_t, max_t, 2)


def plot_cost(ax, doc: dict, metric: str = "time_s", pass_: str = "forward+backward"):
    """Log-log `metric` ("time_s" or "peak_bytes") against T for each method of a result,
    one line per input dtype when the result has several (solid: float32)."""
    scale, unit = (1e3, "ms") if metric == "time_s" else (2.0 ** -20, "MiB")
    dtypes = sorted({r.get("dtype", "float32") for r in doc["rows"]},
                    key=lambda d: (d != "float32", d))
    styles = dict(zip(dtypes, ("-", "--", ":", "-.")))
    for method, marker, colour in (("pyramid", "o", "C0"), ("sdpa", "s", "C1")):
        for dt in dtypes:
            rows = [r for r in doc["rows"] if r["method"] == method and r["pass"] == pass_
                    and r.get("dtype", "float32") == dt and r[metric] > 0]
            if not rows:
                continue
            label = "pyramid" if method == "pyramid" else "causal SDPA"
            ax.plot([r["T"] for r in rows], [r[metric] * scale for r in rows],
                    marker=marker, color=colour, ls=styles[dt],
                    label=label if len(dtypes) == 1 else f"{label}, {dt}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=10)
    what = "time" if metric == "time_s" else "peak memory"
    ax.set(xlabel="sequence length T (tokens)", ylabel=f"{what} ({unit})",
           title=f"{pass_}: {what} on {doc['machine'].get('gpu', doc['machine']['device'])}")
    ax.legend()
    return ax


def plot_bandwidth(ax, doc: dict):
    """Fraction of a plain copy's bandwidth the pyramid reaches, against T, per pass."""
    for p, marker in (("forward", "o"), ("backward", "s")):
        rows = [r for r in doc["rows"] if r["pass"] == p]
        ax.plot([r["T"] for r in rows], [r["fraction_of_copy"] for r in rows], marker=marker, label=p)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=10)
    ax.set(xlabel="sequence length T (tokens)", ylabel="bandwidth / copy bandwidth",
           title=f"Pyramid bandwidth on {doc['machine'].get('gpu', doc['machine']['device'])}")
    ax.legend()
    return ax


def _parser(prog: str, max_t_cpu: int, max_t_gpu: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m phaselib.bench {prog}", description=__doc__.split("\n")[0])
    add_out_arguments(p)
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda")
    p.add_argument("--min-t", type=int, default=256)
    p.add_argument("--max-t", type=int, default=None,
                   help=f"largest T (default {max_t_cpu} on cpu, {max_t_gpu} on cuda)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--backend", default="auto", help="pyramid backend: auto, reference or triton")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                   help="dtype of the inputs (the pyramid benchmark)")
    p.defaults = (max_t_cpu, max_t_gpu)
    return p


def _args(p, argv):
    a = p.parse_args(argv)
    check_out(a.out, a.allow_dirty)
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.max_t is None:
        a.max_t = p.defaults[1] if a.device.startswith("cuda") else p.defaults[0]
    if a.min_t < 2 or a.max_t < a.min_t:
        p.error(f"need 2 <= --min-t <= --max-t, got {a.min_t} and {a.max_t}")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    return a


def main(argv: list[str] | None = None) -> int:
    p = _parser("pyramid", 8192, 65536)
    p.add_argument("--heads", type=int, default=1, help="attention heads (head dim = dim / heads)")
    a = _args(p, argv)
    if a.dim < 2 or a.dim % a.heads:
        p.error(f"--dim must be >= 2 and divisible by --heads, got {a.dim} and {a.heads}")
    rows = []
    for T in lengths(a.min_t, a.max_t):
        rows += pyramid_cost(T, a.dim, a.batch, repeats=a.repeats, device=a.device,
                             backend=a.backend, dtype=a.dtype)
        rows += sdpa_cost(T, a.dim, a.heads, a.batch, repeats=a.repeats, device=a.device,
                          dtype=a.dtype)
        for r in rows[-4:]:
            print(f"{r['method']:>8} {r['pass']:>16} T={T:>6} {r['time_s'] * 1e3:9.2f} ms "
                  f"{r['peak_bytes'] / 2**20:9.2f} MiB", flush=True)
    kind = "cuda" if a.device.startswith("cuda") else "cpu"
    path = write_results(a.out, "pyramid", rows, allow_dirty=a.allow_dirty,
                         device=a.device, dim=a.dim, heads=a.heads, dtype=a.dtype,
                         batch=a.batch, repeats=a.repeats, backend=a.backend,
                         threads=torch.get_num_threads(), timed=TIMER[kind], memory=MEMORY[kind])
    print(f"wrote {path}")
    return 0


def main_bandwidth(argv: list[str] | None = None) -> int:
    p = _parser("pyramid-bandwidth", 8192, 65536)
    a = _args(p, argv)
    rows = []
    for T in lengths(a.min_t, a.max_t):
        rows += bandwidth_cost(T, a.dim, a.batch, repeats=a.repeats, device=a.device, backend=a.backend)
        for r in rows[-2:]:
            print(f"{r['pass']:>9} T={T:>6} {r['bytes_per_s'] / 1e9:7.2f} GB/s, copy "
                  f"{r['copy_bytes_per_s'] / 1e9:7.2f} GB/s: {r['fraction_of_copy']:.2f}", flush=True)
    kind = "cuda" if a.device.startswith("cuda") else "cpu"
    path = write_results(a.out, "pyramid-bandwidth", rows, allow_dirty=a.allow_dirty,
                         device=a.device, dim=a.dim, batch=a.batch,
                         repeats=a.repeats, backend=a.backend, threads=torch.get_num_threads(),
                         timed=TIMER[kind], memory=MEMORY[kind],
                         moved="forward: read x, write features; backward: read grad and x, write grad x")
    print(f"wrote {path}")
    return 0
