"""Argument checks shared by the public functions.

Every public function validates its inputs here, so that bad input fails with a message
that names the argument and what was expected, never with a silent broadcast or a NaN.
"""

from __future__ import annotations

import torch

BACKENDS = ("auto", "reference", "triton")


def check_float_tensor(name: str, x, *, ndim: int | None = None, min_ndim: int | None = None,
                       shape_doc: str = "") -> None:
    """Raise TypeError/ValueError unless `x` is a floating tensor of the expected rank."""
    where = f" {shape_doc}" if shape_doc else ""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{where}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor{where}, got dtype {x.dtype}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions{where}, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.dim() < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s){where}, "
                         f"got shape {tuple(x.shape)}")


def check_same(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise unless two tensors share shape, dtype and device (no silent broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{name_a} and {name_b} must be on the same device, "
                         f"got {a.device} and {b.device}")


def to_state_dtype(name: str, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """`x` in the dtype of `state` (a stream's state), on the same device.

    A lower-precision float input is cast up, exactly: under `torch.autocast` a
    projection gives bf16 or fp16 while the state stays fp32. A cast that would round
    (fp64 into an fp32 state, fp32 into a bf16 one, fp16 into bf16) raises TypeError
    instead, naming the argument, as does another device."""
    if x.device != state.device:
        raise TypeError(f"{name} must be on {state.device} like the state, "
                        f"got {x.device}")
    if x.dtype == state.dtype:
        return x
    if torch.promote_types(x.dtype, state.dtype) != state.dtype:
        raise TypeError(f"{name} must be {state.dtype} like the state, or a float "
                        f"dtype that converts to it exactly (bf16 or fp16 under "
                        f"autocast into an fp32 state), got {x.dtype}")
    return x.to(state.dtype)


def check_long_tensor(name: str, x, shape, shape_doc: str = "[B, T]") -> None:
    """Raise ValueError unless `x` is a torch.long tensor of exactly `shape`."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.long or x.shape != shape:
        raise ValueError(f"{name} must be a long tensor of shape {shape_doc} = "
                         f"{list(shape)}, got {getattr(x, 'dtype', x)} "
                         f"{tuple(getattr(x, 'shape', ()))}")


def check_positive_int(name: str, value, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value}")


def check_backend(backend: str, x: torch.Tensor) -> str:
    """Resolve `backend` to 'reference' or 'triton' for tensor `x`.

    'auto' picks the Triton kernel for CUDA tensors and the PyTorch reference elsewhere.
    'triton' on a CPU tensor is allowed only under the interpreter (TRITON_INTERPRET=1).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if x.is_cuda and triton_available() else "reference"
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' needs the triton package (pip install triton)")
        if not x.is_cuda and not triton_interpreting():
            raise ValueError("backend='triton' needs CUDA tensors, or TRITON_INTERPRET=1 set "
                             f"before phaselib is imported to run the kernel on the CPU; got {x.device}")
    return backend


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def triton_interpreting() -> bool:
    import os

    return os.environ.get("TRITON_INTERPRET", "0") == "1"
