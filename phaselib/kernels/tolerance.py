"""How far a kernel may stray from its fp64 reference: `tolerance(dtype, kind)` and
`compare`, the element-by-element test every check of `checks` applies.

Tolerances (`tolerance`) are in units of the dtype's unit roundoff u (2**-24 fp32,
2**-11 fp16, 2**-8 bf16), with floors for the fp32 arithmetic every kernel does in
registers (polynomial atan2, a GPU's approximate sqrt and division: ~1e-6):

* "output" (the transport's forward and gradients): the kernel rounds once, on the
  store, so the error is u |ref| (round to nearest; 2u where the conversion truncates,
  as the interpreter's fp32 -> bf16 does) plus the fp32 part: rtol = 2u, atol = 4u;
  floors rtol = atol = 2e-5 (in fp32, ~300 u: room for a GPU's approximate math, and
  still far below the error of one wrong element).
* "pyramid" (batch pyramid, streaming step): the centroids are *stored* in the dtype
  (rounded at every level), then compared by the transport, whose angle and
  log-length move by about u per rounded input, and the gradient sums terms of both
  signs, so its error is relative to the tensor's scale: rtol = 8u, atol = 16u, with
  the same floors.

Measured under the interpreter at T = 2048, D = 64 (8192 transport rows), the largest
error reached 0.1 of its bound in fp32, 0.4 in fp16 and bf16, except the transport in
bf16: 0.75 (0.83 at D = 1000), from truncation, which errs by less than 2u |out| and so
stays below the bound by construction; a GPU rounds to nearest, half that. The
transport in fp32 at D = 1000 reached 0.28 (longer fp32 sums).

A wrong index, a race or a missing term moves elements by O(|ref|), hundreds of u
in bf16 and far more in fp16 and fp32, so it fails these bounds even in one row.
"""

from __future__ import annotations

import torch

__all__ = ["UNIT_ROUNDOFF", "FP32_FLOOR", "dtype_name", "tolerance",
           "compare", "failed_record"]

UNIT_ROUNDOFF = {torch.float32: 2.0 ** -24, torch.float16: 2.0 ** -11,
                 torch.bfloat16: 2.0 ** -8}
FP32_FLOOR = 2e-5           # rtol and atol floor: fp32 arithmetic and fast GPU math


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def tolerance(dtype: torch.dtype, kind: str = "output") -> tuple[float, float]:
    """(rtol, atol) for `kind` "output" or "pyramid" at `dtype` (module docstring)."""
    if dtype not in UNIT_ROUNDOFF:
        raise ValueError(f"dtype must be one of {list(UNIT_ROUNDOFF)}, got {dtype}")
    u = UNIT_ROUNDOFF[dtype]
    if kind == "output":
        rtol, atol = 2 * u, 4 * u
    elif kind == "pyramid":
        rtol, atol = 8 * u, 16 * u
    else:
        raise ValueError(f"kind must be 'output' or 'pyramid', got {kind!r}")
    return max(rtol, FP32_FLOOR), max(atol, FP32_FLOOR)


def compare(name: str, ref: torch.Tensor, out: torch.Tensor, rtol: float,
            atol: float, **extra) -> dict:
    """The record of one element-by-element comparison (module docstring): passes when
    |out - ref| <= atol * rms(ref) + rtol * |ref| everywhere and out is finite."""
    if ref.shape != out.shape:
        return failed_record(name, f"shape {tuple(out.shape)} is not the reference's "
                             f"{tuple(ref.shape)}", **extra)
    r = ref.detach().to(torch.float64)
    o = out.detach().to(device=r.device, dtype=torch.float64)
    record = {"name": name, "shape": list(ref.shape), "rtol": rtol, "atol": atol,
              **extra}
    if not torch.isfinite(o).all():
        n = int((~torch.isfinite(o)).sum())
        return {**record, "passed": False, "max_abs_err": float("inf"),
                "worst": float("inf"),
                "error": f"{n} NaN or inf element(s) in the output"}
    if r.numel() == 0:
        return {**record, "passed": True, "max_abs_err": 0.0, "worst": 0.0,
                "rel_rms": 0.0}
    err = (o - r).abs()
    scale = r.pow(2).mean().sqrt()
    bound = atol * scale + rtol * r.abs()
    ratio = torch.where(bound > 0, err / bound.clamp(min=1e-300),
                        torch.where(err > 0, float("inf"), 0.0))
    worst = int(ratio.argmax())
    rms_err = float(err.pow(2).mean().sqrt())
    if scale > 0:
        rel_rms = rms_err / float(scale)
    else:
        rel_rms = 0.0 if rms_err == 0 else float("inf")
    record.update(
        passed=bool((err <= bound).all()), max_abs_err=float(err.max()),
        worst=float(ratio.flatten()[worst]),
        worst_index=[int(i) for i in torch.unravel_index(torch.tensor(worst), r.shape)],
        rel_rms=rel_rms)
    return record


def failed_record(name: str, error: str, **extra) -> dict:
    """The record of a check that could not compare (it raised, or a shape is wrong)."""
    return {"name": name, "passed": False, "max_abs_err": float("inf"),
            "worst": float("inf"), "error": error, **extra}
