"""Transport between two vectors: how to turn and stretch `a` to reach `b`.

Book: Part IV, "Transport between two vectors". The math and the guards are documented
beside the reference implementation, `phaselib/kernels/transport/reference.py`.
"""

from __future__ import annotations

import torch

from ._checks import check_backend, check_float_tensor, check_same
from .kernels.transport.reference import (transport_complex_exp_reference,
                                          transport_complex_reference, transport_exp_reference,
                                          transport_reference)


def _check_pair(a, b, name_b: str = "b") -> None:
    check_float_tensor("a", a, min_ndim=1, shape_doc="of shape [..., D]")
    check_float_tensor(name_b, b, min_ndim=1)
    if a.shape[-1] < 2:
        raise ValueError(f"a must have a last dimension D >= 2 (a direction needs a sphere "
                         f"to move on), got shape {tuple(a.shape)}")


def transport(a: torch.Tensor, b: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """The change from `a` to `b` along the last axis: `[..., D], [..., D] -> [..., D+1]`.

    The first D entries are the log map of b's direction at a's direction on the unit
    sphere (a tangent vector whose length is the angle, computed with atan2); the last is
    log(|b| / |a|). Zero when a == b; inverted by `transport_exp`; equivariant under
    rotations (the tangent rotates, the log-length stays); invariant to scaling a and b by
    the same positive factor. A (near-)zero a or b gives zeros, antipodal directions give
    the angle pi along a fixed tangent; values and gradients are finite everywhere.
    """
    _check_pair(a, b)
    check_same("a", a, "b", b)
    if check_backend(backend, a) == "triton":
        from .kernels.transport.triton import transport_triton

        return transport_triton(a, b)
    return transport_reference(a, b)


def transport_exp(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Move from `a` along `delta`: `[..., D], [..., D+1] -> [..., D]`; inverts `transport`."""
    _check_pair(a, delta, "delta")
    if delta.shape[:-1] != a.shape[:-1] or delta.shape[-1] != a.shape[-1] + 1:
        raise ValueError(f"delta must have shape [..., D+1] = {(*a.shape[:-1], a.shape[-1] + 1)} "
                         f"for a of shape {tuple(a.shape)}, got {tuple(delta.shape)}")
    if delta.dtype != a.dtype:
        raise TypeError(f"a and delta must have the same dtype, got {a.dtype} and {delta.dtype}")
    if delta.device != a.device:
        raise ValueError(f"a and delta must be on the same device, "
                         f"got {a.device} and {delta.device}")
    return transport_exp_reference(a, delta)


def transport_complex(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rotary variant: read [..., D] as D/2 complex numbers; `[..., D] x2 -> [..., D]`.

    Each pair gives (phase of b relative to a in (-pi, pi], log ratio of moduli). It is
    invariant when the same rotary rotation (one angle per pair) is applied to a and b.
    """
    _check_pair(a, b)
    check_same("a", a, "b", b)
    if a.shape[-1] % 2:
        raise ValueError(f"a must have an even last dimension (pairs of reals), got {tuple(a.shape)}")
    return transport_complex_reference(a, b)


def transport_complex_exp(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Inverse of `transport_complex`: `[..., D], [..., D] -> [..., D]`."""
    _check_pair(a, delta, "delta")
    check_same("a", a, "delta", delta)
    if a.shape[-1] % 2:
        raise ValueError(f"a must have an even last dimension (pairs of reals), got {tuple(a.shape)}")
    return transport_complex_exp_reference(a, delta)
