"""The device a Triton launch runs on, chosen in one place.

Triton launches on the *current* CUDA device, not on the device of the tensors it is
given: a tensor on cuda:1 passed while cuda:0 is current would be read by a kernel on
cuda:0 (an illegal address, or wrong numbers). Every launcher in `phaselib.kernels`
therefore launches inside `launch_device(x)`, which enters
`torch.cuda.device(x.device)` for a CUDA tensor and does nothing for a CPU tensor (the
interpreter, TRITON_INTERPRET=1).
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["launch_device"]


def launch_device(x: torch.Tensor):
    """A context manager: `torch.cuda.device(x.device)` when x is on CUDA, else a
    no-op."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.is_cuda:
        return torch.cuda.device(x.device)
    return contextlib.nullcontext()
