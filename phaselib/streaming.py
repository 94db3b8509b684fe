"""Streaming inference for the pyramid: one token in, one row of features out.

Book: Part IV, "Streaming". `pyramid_step(x_t, state) -> (features, state)` is the
functional form; `StreamingPyramid` wraps it for the common loop. Both agree with
`phaselib.pyramid` at every position.
"""

from __future__ import annotations

import torch

from ._checks import (BACKENDS, check_backend, check_float_tensor, check_positive_int,
                      to_state_dtype)
from .kernels.pyramid.streaming import PyramidState, pyramid_step_reference

__all__ = ["PyramidState", "pyramid_step", "StreamingPyramid"]


def pyramid_step(x_t: torch.Tensor, state: PyramidState, *,
                 backend: str = "auto") -> tuple[torch.Tensor, PyramidState]:
    """One step: `x_t [B, D]` and the state -> (`[B, L, D+1]` features at this position, state).

    O(L D) work and memory per token, independent of how many tokens came before.
    `x_t` has the state's dtype, or one that converts to it exactly: under
    `torch.autocast` a bf16 or fp16 `x_t` is cast up to an fp32 state (the state keeps
    its precision); a cast that would round raises TypeError.
    `backend`: "auto" (the Triton step kernel on CUDA, the reference elsewhere), "triton"
    or "reference".
    """
    check_float_tensor("x_t", x_t, ndim=2, shape_doc="of shape [B, D]")
    B, L, _, D = state.ring.shape
    if tuple(x_t.shape) != (B, D):
        raise ValueError(f"x_t must have shape [B, D] = {(B, D)} to match the state, got {tuple(x_t.shape)}")
    x_t = to_state_dtype("x_t", x_t, state.ring)   # autocast's bf16 into an fp32 state
    if check_backend(backend, x_t) == "triton":
        from .kernels.pyramid.streaming_triton import pyramid_step_triton

        return pyramid_step_triton(x_t, state)
    return pyramid_step_reference(x_t, state)


class StreamingPyramid:
    """Stateful stream: `sp = StreamingPyramid(dim, levels); y_t = sp.step(x_t)`.

    `step` takes `x_t [B, D]` and returns `[B, L, D+1]`, equal to `pyramid(x)[0][:, t]`;
    `mask_t` tells which levels are valid at the last step; `reset()` starts a new stream.
    The batch size, dtype and device are fixed by the first step after a reset.
    """

    def __init__(self, dim: int, levels: int, *, backend: str = "auto"):
        check_positive_int("dim", dim)
        check_positive_int("levels", levels)
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.dim, self.levels, self.backend = dim, levels, backend
        self.state: PyramidState | None = None

    def reset(self) -> None:
        self.state = None

    @property
    def t(self) -> int:
        """Tokens seen since the last reset."""
        return 0 if self.state is None else self.state.t

    @property
    def mask_t(self) -> torch.Tensor:
        """[L] bool: which levels had two completed blocks at the last step."""
        t = self.t - 1
        return ((t + 1) >> torch.arange(self.levels)) >= 2

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        check_float_tensor("x_t", x_t, ndim=2, shape_doc=f"of shape [B, {self.dim}]")
        if x_t.shape[-1] != self.dim:
            raise ValueError(f"x_t must have shape [B, {self.dim}], got {tuple(x_t.shape)}")
        if self.state is None:
            self.state = PyramidState.zeros(x_t.shape[0], self.levels, self.dim,
                                            device=x_t.device, dtype=x_t.dtype)
        y, self.state = pyramid_step(x_t, self.state, backend=self.backend)
        return y
