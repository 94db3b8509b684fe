"""A short causal convolution over time: each channel mixes its last few positions.

Book: Part III, "The remedies, measured". H3 (Fu et al., 2023) put a shift SSM in
front of its linear attention, Zoology/Based (Arora et al., 2023, 2024) a short
convolution, and Mamba (Gu and Dao, 2023) one in front of its scan: a depthwise
conv1d of kernel K (3 or 4) that lets a token see its K - 1 predecessors directly.
Zoology shows that this cheap local mixing is what lets a recurrent model bind a key
to the token after it, which associative recall needs. Causal by left padding:
y_t = bias + sum_i w[:, i] * x_{t - K + 1 + i} (zeros before the start).
Work O(T D K); a decoder keeps the last K - 1 inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float_tensor, check_positive_int

__all__ = ["causal_conv1d", "causal_conv1d_reference", "ShortConv"]


def _check(x, weight, bias):
    check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
    check_float_tensor("weight", weight, ndim=2, shape_doc="of shape [D, K]")
    D = x.shape[-1]
    if weight.shape[0] != D or weight.shape[1] < 1:
        raise ValueError(f"weight must have shape [D, K] = [{D}, K >= 1], "
                         f"got {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (D,):
        raise ValueError(f"bias must have shape [D] = [{D}], got {tuple(bias.shape)}")


def causal_conv1d(x, weight, bias=None) -> torch.Tensor:
    """Depthwise causal convolution: x [B, T, D], weight [D, K], bias [D] or None ->
    [B, T, D]; position t reads x_{t-K+1} .. x_t only. Equals
    `causal_conv1d_reference`."""
    _check(x, weight, bias)
    K = weight.shape[1]
    xt = F.pad(x.transpose(1, 2), (K - 1, 0))                      # [B, D, K-1+T]
    return F.conv1d(xt, weight.unsqueeze(1), bias, groups=x.shape[-1]).transpose(1, 2)


def causal_conv1d_reference(x, weight, bias=None) -> torch.Tensor:
    """The twin: y_t as the literal sum over the K taps, a loop over t."""
    _check(x, weight, bias)
    B, T, D = x.shape
    K = weight.shape[1]
    ys = []
    for t in range(T):
        y = x.new_zeros(B, D) if bias is None else bias.expand(B, D).clone()
        for i in range(K):
            s = t - K + 1 + i
            if s >= 0:
                y = y + weight[:, i] * x[:, s]
        ys.append(y)
    return torch.stack(ys, dim=1)


class ShortConv(nn.Module):
    """A learned `causal_conv1d` of `d` channels and kernel `kernel` (PyTorch's Conv1d
    initialisation, as Zoology's and Mamba's). forward(x [B, T, D]) -> [B, T, D];
    step(x_t [B, D], past [B, K-1, D]) -> (y_t [B, D], past) is one decoding step."""

    def __init__(self, d: int, kernel: int, *, bias: bool = True):
        super().__init__()
        check_positive_int("d", d)
        check_positive_int("kernel", kernel)
        conv = nn.Conv1d(d, d, kernel, groups=d, bias=bias)
        self.weight = nn.Parameter(conv.weight.detach().squeeze(1).clone())   # [D, K]
        self.bias = nn.Parameter(conv.bias.detach().clone()) if bias else None
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return causal_conv1d(x, self.weight, self.bias)

    def init_past(self, B: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
        """The inputs before position 0: zeros [B, K-1, D]."""
        return torch.zeros(B, self.kernel - 1, self.weight.shape[0], dtype=dtype,
                           device=device)

    def step(self, x_t: torch.Tensor, past: torch.Tensor):
        window = torch.cat([past, x_t[:, None]], dim=1)                 # [B, K, D]
        y = (window * self.weight.T).sum(1)
        if self.bias is not None:
            y = y + self.bias
        return y, window[:, 1:]
