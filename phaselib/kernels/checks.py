"""Correctness checks that ship with the package: every Triton kernel against its twin.

`python -m phaselib.bench gpu-check` runs these on CUDA at the benchmark's scale (the
wheel holds no tests/ folder, so the checks live here); tests/unit/test_kernel_checks.py
runs the same functions on the CPU under TRITON_INTERPRET=1 at small sizes. Each check
compares a kernel's output with the fp64 reference computed from the *same rounded
inputs* (and the same rounded upstream gradient), element by element
(`tolerance.compare`):

    |out - ref| <= atol * rms(ref) + rtol * |ref|     at every element,

and returns a record {"name", "passed", "max_abs_err", "worst", ...}, where "worst" is
the largest ratio of error to bound (<= 1 passes) and "worst_index" where it is. A
kernel that raises, or writes NaN or inf, fails its check with the reason.

Tolerances, and why they are what they are: `tolerance.py`.

The determinism checks run every backward (and the streaming step) twice on the same
inputs and compare bit for bit: no kernel uses atomics (each gradient row is summed by
one program, in a fixed order), so any difference between two runs is a race or an
uninitialised read. Records say whether the two runs were bitwise equal.

`run_checks(device, scale)` runs them all for the dtypes the device supports
(`supported_dtypes`); `summarize(records)` gives (ok, message), and an empty list is
not ok: no check ran.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

import torch

from .._levels import default_levels
from ._tiles import MAX_BLOCK_D
from .tolerance import (UNIT_ROUNDOFF, compare, dtype_name, failed_record,
                        tolerance)

__all__ = ["SCALES", "supported_dtypes", "check_transport", "check_pyramid",
           "check_step", "check_select", "check_determinism", "run_checks", "summarize"]

# Sizes per scale. "benchmark": the benchmark's width (dim 64), lengths it times, and a
# width above the tile cap; "small": the same shapes of problem, quick under the
# interpreter. transport: (rows, D); pyramid: (B, T, D); step: (B, D, L, t0, steps);
# select: (B, T, C), L = default_levels(T) (C = 128 is the phase model's width there).
SCALES = {
    "small": {"transport": [(65, 24), (9, MAX_BLOCK_D + 5)],
              "pyramid": [(2, 37, 6)],
              "step": [(2, 7, 5, 0, 37), (3, 5, 4, 60, 8)],
              "select": [(2, 37, 9), (1, 70, MAX_BLOCK_D + 3)],
              "determinism": (2, 37, 6)},
    "benchmark": {"transport": [(1 << 16, 64), (4096, 1000)],
                  "pyramid": [(2, 16384, 64)],
                  "step": [(8, 64, 17, (1 << 16) - 24, 48)],
                  "select": [(2, 16384, 128)],
                  "determinism": (2, 16384, 64)},
}


def _guarded(name: str, fn: Callable[[], list[dict]], **extra) -> list[dict]:
    """fn's records, or one failed record saying what it raised (a kernel that does not
    compile, or crashes, fails its check instead of stopping the others)."""
    try:
        return fn()
    except Exception as e:
        where = traceback.format_exc(limit=-2).strip().splitlines()
        return [failed_record(name, f"{type(e).__name__}: {e}"[:2000], where=where[-4:],
                        **extra)]


def supported_dtypes(device) -> list[torch.dtype]:
    """fp32 and fp16 everywhere, bf16 where the device has it (Ampere and later on
    CUDA; the CPU interpreter runs it)."""
    device = torch.device(device)
    out = [torch.float32, torch.float16]
    if device.type != "cuda":
        return out + [torch.bfloat16]
    with torch.cuda.device(device):
        try:
            bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:                          # torch < 2.3: no emulation argument
            bf16 = torch.cuda.is_bf16_supported()
    return out + [torch.bfloat16] if bf16 else out


def _randn(shape, seed: int, device, dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(device, dtype)


def transport_inputs(n: int, d: int, seed: int, device, dtype):
    """Random rows [n, d] plus the guards in the first five: zero a, zero b, antipodal,
    equal, a scaled copy (powers of two: exact in every dtype)."""
    a = _randn((n, d), seed, "cpu", torch.float32)
    b = _randn((n, d), seed + 1, "cpu", torch.float32)
    if n >= 5:
        a[0] = 0.0
        b[1] = 0.0
        b[2] = -2.0 * a[2]
        b[3] = a[3]
        b[4] = 4.0 * a[4]
    return a.to(device, dtype), b.to(device, dtype)


def check_transport(device, dtype: torch.dtype, n: int, d: int,
                    seed: int = 0) -> list[dict]:
    """Transport kernel, forward and both gradients, against `transport_reference`."""
    from .transport.reference import transport_reference
    from .transport.triton import transport_triton

    tag = f"transport[{n}x{d}]"
    meta = {"kernel": "transport", "dtype": dtype_name(dtype)}

    def run():
        a, b = transport_inputs(n, d, seed, device, dtype)
        a.requires_grad_(True)
        b.requires_grad_(True)
        a64 = a.detach().double().requires_grad_(True)
        b64 = b.detach().double().requires_grad_(True)
        out = transport_triton(a, b)
        ref = transport_reference(a64, b64)
        up = _randn(ref.shape, seed + 2, device, dtype)
        ga, gb = torch.autograd.grad(out, (a, b), up)
        ga_r, gb_r = torch.autograd.grad(ref, (a64, b64), up.double())
        rtol, atol = tolerance(dtype, "output")
        recs = [compare(f"{tag}/{what}/{dtype_name(dtype)}", r, o, rtol, atol, **meta,
                        check=what)
                for what, r, o in (("forward", ref, out), ("grad a", ga_r, ga),
                                   ("grad b", gb_r, gb))]
        zero = out[:2] if n >= 5 else out[:0]
        recs.append(compare(f"{tag}/degenerate rows exactly zero/{dtype_name(dtype)}",
                            torch.zeros_like(zero), zero, 0.0, 0.0, **meta,
                            check="guard"))
        return recs

    return _guarded(f"{tag}/{dtype_name(dtype)}", run, **meta)


def pyramid_input(B: int, T: int, D: int, seed: int, device, dtype) -> torch.Tensor:
    """Random tokens with a zero token and an antipodal pair at level 0."""
    x = _randn((B, T, D), seed, "cpu", torch.float32)
    if T > 4:
        x[:, 2] = 0.0
        x[:, 4] = -x[:, 3]
    return x.to(device, dtype)


def check_pyramid(device, dtype: torch.dtype, B: int, T: int, D: int,
                  seed: int = 0) -> list[dict]:
    """Pyramid kernels, features and the gradient of x, against `pyramid_reference`;
    masked positions must be exactly zero."""
    from .pyramid.reference import pyramid_reference
    from .pyramid.triton import pyramid_triton

    L = default_levels(T)
    tag = f"pyramid[{B}x{T}x{D}, L={L}]"
    meta = {"kernel": "pyramid", "dtype": dtype_name(dtype)}

    def run():
        x = pyramid_input(B, T, D, seed, device, dtype).requires_grad_(True)
        x64 = x.detach().double().requires_grad_(True)
        out, mask = pyramid_triton(x, L)
        ref, mask_r = pyramid_reference(x64, L)
        up = _randn(ref.shape, seed + 1, device, dtype)
        g = torch.autograd.grad(out, x, up)[0]
        g_r = torch.autograd.grad(ref, x64, up.double())[0]
        rtol, atol = tolerance(dtype, "pyramid")
        recs = [compare(f"{tag}/{what}/{dtype_name(dtype)}", r, o, rtol, atol, **meta,
                        check=what)
                for what, r, o in (("forward", ref, out), ("grad x", g_r, g))]
        masked = out[:, ~mask]
        recs.append(compare(f"{tag}/masked positions exactly zero/{dtype_name(dtype)}",
                            torch.zeros_like(masked), masked, 0.0, 0.0, **meta,
                            check="guard"))
        if not torch.equal(mask.cpu(), mask_r.cpu()):
            recs.append(failed_record(f"{tag}/mask/{dtype_name(dtype)}",
                                "the mask differs from the reference's", **meta))
        return recs

    return _guarded(f"{tag}/{dtype_name(dtype)}", run, **meta)


def filled_state(B: int, D: int, L: int, t0: int, seed: int, device, dtype):
    """A PyramidState at position t0: zeros at t0 = 0, else random rings (as after t0
    tokens; the kernel and the reference only need the same starting state)."""
    from .pyramid.streaming import PyramidState

    st = PyramidState.zeros(B, L, D, device=device, dtype=dtype)
    if t0 > 0:
        for i, buf in enumerate((st.ring, st.pending, st.features)):
            buf.copy_(_randn(buf.shape, seed + i, device, dtype))
        st.t = t0
    return st


def _copy_state(st, dtype=None):
    from .pyramid.streaming import PyramidState

    dtype = dtype or st.ring.dtype
    return PyramidState(st.t, *(b.to(dtype=dtype, copy=True)
                                for b in (st.ring, st.pending, st.features)))


def check_step(device, dtype: torch.dtype, B: int, D: int, L: int, t0: int, steps: int,
               seed: int = 0) -> list[dict]:
    """The streaming step kernel for `steps` tokens from position t0 against
    `pyramid_step_reference` run in fp64 from the same state: every step's features,
    and the state at the end."""
    from .pyramid.streaming import pyramid_step_reference
    from .pyramid.streaming_triton import pyramid_step_triton

    tag = f"step[B={B}, D={D}, L={L}, t={t0}..{t0 + steps - 1}]"
    meta = {"kernel": "pyramid step", "dtype": dtype_name(dtype)}

    def run():
        st = filled_state(B, D, L, t0, seed, device, dtype)
        ref_st = _copy_state(st, torch.float64)
        xs = _randn((steps, B, D), seed + 7, device, dtype)
        if steps > 3:
            xs[2] = 0.0                                   # a zero token
            xs[3] = -xs[1]
        outs, refs = [], []
        for i in range(steps):
            y, st = pyramid_step_triton(xs[i], st)
            y_r, ref_st = pyramid_step_reference(xs[i].double(), ref_st)
            outs.append(y)
            refs.append(y_r)
        rtol, atol = tolerance(dtype, "pyramid")
        recs = [compare(f"{tag}/features/{dtype_name(dtype)}", torch.stack(refs),
                        torch.stack(outs), rtol, atol, **meta, check="features")]
        for name in ("ring", "pending", "features"):
            recs.append(compare(f"{tag}/state.{name}/{dtype_name(dtype)}",
                                getattr(ref_st, name), getattr(st, name), rtol, atol,
                                **meta, check=f"state.{name}"))
        if st.t != ref_st.t:
            recs.append(failed_record(f"{tag}/state.t/{dtype_name(dtype)}",
                                f"t = {st.t}, the reference's {ref_st.t}", **meta))
        return recs

    return _guarded(f"{tag}/{dtype_name(dtype)}", run, **meta)


def check_select(device, dtype: torch.dtype, B: int, T: int, C: int,
                 seed: int = 0) -> list[dict]:
    """The selection kernel (`select/triton.py`), forward and the gradients of the
    weights and of the packed table, against `select_reference` in fp64; its backward
    run twice must agree bit for bit (no atomics)."""
    from .select.reference import level_offsets, select_reference
    from .select.triton import select_triton

    L = default_levels(T)
    R = level_offsets(T, L)[-1]
    tag = f"select[{B}x{T}x{C}, L={L}]"
    meta = {"kernel": "select", "dtype": dtype_name(dtype)}
    name = dtype_name(dtype)

    def run():
        w = torch.softmax(_randn((B, T, L), seed, "cpu", torch.float32), -1)
        w = w.to(device, dtype).requires_grad_(True)
        table = _randn((B, R, C), seed + 1, device, dtype).requires_grad_(True)
        w64 = w.detach().double().requires_grad_(True)
        t64 = table.detach().double().requires_grad_(True)
        out = select_triton(w, table)
        ref = select_reference(w64, t64)
        up = _randn(ref.shape, seed + 2, device, dtype)
        gw, gt = torch.autograd.grad(out, (w, table), up, retain_graph=True)
        gw_r, gt_r = torch.autograd.grad(ref, (w64, t64), up.double())
        rtol, atol = tolerance(dtype, "output")
        recs = [compare(f"{tag}/{what}/{name}", r, o, rtol, atol, **meta, check=what)
                for what, r, o in (("forward", ref, out), ("grad w", gw_r, gw),
                                   ("grad table", gt_r, gt))]
        f, s = _twice(lambda: torch.autograd.grad(out, (w, table), up,
                                                  retain_graph=True), device)
        same = all(torch.equal(a, b) for a, b in zip(f, s))
        recs += [compare(f"{tag}/backward twice, {what}/{name}", a, b, 0.0, 0.0,
                         **{**meta, "check": "determinism"}, bitwise=same)
                 for what, a, b in zip(("grad w", "grad table"), f, s)]
        return recs

    return _guarded(f"{tag}/{name}", run, **meta)


def _twice(fn, device):
    """fn() twice, the first run finished before the second starts."""
    first = fn()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return first, fn()


def check_determinism(device, dtype: torch.dtype, B: int, T: int, D: int,
                      seed: int = 0) -> list[dict]:
    """Backward passes (and the streaming step) run twice on the same inputs, compared
    bit for bit (module docstring)."""
    from .pyramid.streaming_triton import pyramid_step_triton
    from .pyramid.triton import pyramid_triton
    from .transport.triton import transport_triton

    meta = {"dtype": dtype_name(dtype), "check": "determinism"}
    name = dtype_name(dtype)

    def transport():
        a, b = transport_inputs(B * T, D, seed, device, dtype)
        a.requires_grad_(True)
        b.requires_grad_(True)
        out = transport_triton(a, b)
        up = _randn(out.shape, seed + 2, device, dtype)
        first, second = _twice(lambda: torch.autograd.grad(out, (a, b), up,
                                                           retain_graph=True), device)
        return [compare(f"transport[{B * T}x{D}]/backward twice, {w}/{name}", f, s,
                        0.0, 0.0, kernel="transport", bitwise=torch.equal(f, s), **meta)
                for w, f, s in zip(("grad a", "grad b"), first, second)]

    def pyramid():
        x = pyramid_input(B, T, D, seed, device, dtype).requires_grad_(True)
        L = default_levels(T)
        out, _ = pyramid_triton(x, L)
        up = _randn(out.shape, seed + 1, device, dtype)
        (f,), (s,) = _twice(lambda: torch.autograd.grad(out, x, up, retain_graph=True),
                            device)
        return [compare(f"pyramid[{B}x{T}x{D}, L={L}]/backward twice, grad x/{name}",
                        f, s, 0.0, 0.0, kernel="pyramid",
                        bitwise=torch.equal(f, s), **meta)]

    def step():
        L = default_levels(T) + 2
        t0 = (1 << (L - 1)) - 3             # the next steps complete every level
        st = filled_state(B, D, L, t0, seed, device, dtype)
        xs = _randn((4, B, D), seed + 3, device, dtype)

        def run():
            s, ys = _copy_state(st), []
            for i in range(4):
                y, s = pyramid_step_triton(xs[i], s)
                ys.append(y)
            return torch.stack(ys)

        f, s = _twice(run, device)
        return [compare(f"step[B={B}, D={D}, L={L}]/run twice, features/{name}", f, s,
                        0.0, 0.0, kernel="pyramid step", bitwise=torch.equal(f, s),
                        **meta)]

    return (_guarded(f"transport/backward twice/{name}", transport, kernel="transport",
                     **meta)
            + _guarded(f"pyramid/backward twice/{name}", pyramid, kernel="pyramid",
                       **meta)
            + _guarded(f"step/run twice/{name}", step, kernel="pyramid step", **meta))


def run_checks(device="cuda", scale: str = "benchmark", dtypes=None,
               progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Every check at `scale` ("benchmark" or "small", see SCALES) for `dtypes`
    (default: `supported_dtypes(device)`); `progress(record)` is called after each."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    device = torch.device(device)
    dtypes = supported_dtypes(device) if dtypes is None else list(dtypes)
    for dt in dtypes:
        if dt not in UNIT_ROUNDOFF:
            raise ValueError(f"dtypes must be among {list(UNIT_ROUNDOFF)}, got {dt}")
    sizes, records = SCALES[scale], []

    def add(recs):
        for r in recs:
            records.append(r)
            if progress is not None:
                progress(r)

    for dt in dtypes:
        for n, d in sizes["transport"]:
            add(check_transport(device, dt, n, d))
        for B, T, D in sizes["pyramid"]:
            add(check_pyramid(device, dt, B, T, D))
        for B, D, L, t0, steps in sizes["step"]:
            add(check_step(device, dt, B, D, L, t0, steps))
        for B, T, C in sizes["select"]:
            add(check_select(device, dt, B, T, C))
        add(check_determinism(device, dt, *sizes["determinism"]))
    return records


def summarize(records: list[dict]) -> tuple[bool, str]:
    """(ok, one line): ok only when at least one check ran and none failed."""
    if not records:
        return False, "no kernel check ran: nothing was tested"
    failed = [r["name"] for r in records if not r.get("passed")]
    if failed:
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        shown = ", ".join(failed[:5]) + more
        return False, f"{len(failed)} of {len(records)} kernel checks failed: {shown}"
    return True, f"all {len(records)} kernel checks passed"
