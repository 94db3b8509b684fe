"""A selective state space (Mamba's S6): the step, B and C depend on the input.

Book: Part III, "The remedies, measured". Mamba (Gu and Dao, 2023) makes the diagonal
recurrence of `ssm` selective: each channel d of u [B, T, D] keeps N numbers,

    h_t = exp(Delta_t A) * h_{t-1} + Delta_t B_t u_t,     y_t = C_t . h_t + D_skip u_t,

with A = -exp(A_log) [D, N] learned but the same at every t (S4D-real init,
A = -(1 .. N)), while the step Delta_t = softplus(W_dt u_t + b_dt) [D] and
B_t = W_B u_t, C_t = W_C u_t [N] are computed from the token: a large step resets the
state to the current token, a small one keeps the past, so the layer chooses per token
what to remember. This is the mechanism the time-invariant `SSMMixer` lacks.
`SelectiveSSMMixer` is the Mamba mixer around it: x -> (u, z) by one projection; u
through a short causal depthwise convolution (kernel 4) and SiLU; the scan;
out = W_out (y * silu(z)).

Simplified: the scan is a PyTorch loop over t (or `ssm_scan`'s chunked log-depth
scan), which keeps every [B, D, N] state for the backward pass (Mamba's fused kernel
keeps them in SRAM and recomputes them). expand = 1 by default: Mamba widens u to
2 D and has no MLP; here the block keeps its MLP. W_dt is low rank
(dt_rank = ceil(D / 16)) as in Mamba, with b_dt set so that Delta starts log-uniform
in [dt_min, dt_max]. Work O(T D N).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float_tensor, check_positive_int
from ._common import tensor_bytes
from .shortconv import ShortConv
from .ssm import ssm_scan

__all__ = ["selective_scan", "selective_reference", "SelectiveState",
           "SelectiveSSMMixer"]


def _check(u, delta, A, b, c, d_skip):
    check_float_tensor("u", u, ndim=3, shape_doc="of shape [B, T, D]")
    Bsz, T, D = u.shape
    check_float_tensor("A", A, ndim=2, shape_doc="of shape [D, N]")
    N = A.shape[1]
    want = {"delta": (Bsz, T, D), "A": (D, N), "b": (Bsz, T, N), "c": (Bsz, T, N)}
    for name, p in (("delta", delta), ("A", A), ("b", b), ("c", c)):
        check_float_tensor(name, p)
        if tuple(p.shape) != want[name]:
            raise ValueError(f"{name} must have shape {list(want[name])} (u [B, T, D], "
                             f"A [D, N]), got {tuple(p.shape)}")
    if d_skip is not None and tuple(d_skip.shape) != (D,):
        raise ValueError(f"d_skip must have shape [D] = [{D}], got "
                         f"{tuple(d_skip.shape)}")
    return Bsz, T, D, N


def _loop(u, delta, A, b, c, d_skip, h0):
    """The recurrence as written, one t at a time -> (y [B, T, D], h_T [B, D, N])."""
    Bsz, T, D = u.shape
    h = u.new_zeros(Bsz, D, A.shape[1]) if h0 is None else h0
    ys = []
    for t in range(T):
        dt = delta[:, t, :, None]                                # [B, D, 1]
        h = torch.exp(dt * A) * h + dt * b[:, t, None, :] * u[:, t, :, None]
        y = (h * c[:, t, None, :]).sum(-1)
        ys.append(y if d_skip is None else y + d_skip * u[:, t])
    return torch.stack(ys, dim=1), h


def selective_scan(u, delta, A, b, c, d_skip=None, *, chunk: int | None = None,
                   h0: torch.Tensor | None = None, return_state: bool = False):
    """The S6 recurrence: u, delta [B, T, D], A [D, N], b, c [B, T, N], d_skip [D] or
    None -> y [B, T, D] (and h_T [B, D, N] with return_state). Causal; equals
    `selective_reference`.

    chunk=None: the loop over t, which holds only [B, D, N] per step and is the
    fastest form on a CPU at T <= 256 (forward and backward about 3x faster than the
    scan at B = T = D = 64, N = 16). chunk=C: `ssm_scan`'s chunked log-depth scan with
    a_t = exp(delta_t A), b_t = delta_t B_t, depth O(log C + T / C), for long T."""
    Bsz, T, D, N = _check(u, delta, A, b, c, d_skip)
    check_positive_int("chunk", chunk, allow_none=True)
    if chunk is None:
        y, h = _loop(u, delta, A, b, c, d_skip, h0)
        return (y, h) if return_state else y
    a = torch.exp(delta[..., None] * A)                          # [B, T, D, N]
    bb = delta[..., None] * b[:, :, None, :]
    cc = c[:, :, None, :].expand(Bsz, T, D, N)
    y, h = ssm_scan(u, a, bb, cc, chunk=chunk, h0=h0, return_state=True)
    if d_skip is not None:
        y = y + d_skip * u
    return (y, h) if return_state else y


def selective_reference(u, delta, A, b, c, d_skip=None, *,
                        h0: torch.Tensor | None = None) -> torch.Tensor:
    """The twin: the recurrence as written, a loop over t."""
    _check(u, delta, A, b, c, d_skip)
    return _loop(u, delta, A, b, c, d_skip, h0)[0]


@dataclass
class SelectiveState:
    """What `SelectiveSSMMixer.step` keeps: the last K - 1 conv inputs past
    [B, K-1, D_in], the scan state h [B, D_in, N], t tokens seen. Fixed size."""

    past: torch.Tensor
    h: torch.Tensor
    t: int = 0

    def nbytes(self) -> int:
        return tensor_bytes(self.past, self.h)


class SelectiveSSMMixer(nn.Module):
    """Mamba's mixer (S6): x [B, T, D] -> [B, T, D], causal. `step` decodes one token
    from a `SelectiveState` and equals `forward` at every position."""

    def __init__(self, d_model: int, n_head: int, block_size: int, *, n_state: int = 16,
                 conv: int = 4, expand: int = 1, dt_rank: int | None = None,
                 dt_min: float = 1e-3, dt_max: float = 0.1):
        super().__init__()
        for name, val in (("d_model", d_model), ("n_state", n_state), ("conv", conv),
                          ("expand", expand)):
            check_positive_int(name, val)
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, "
                             f"dt_max={dt_max}")
        di = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank
        check_positive_int("dt_rank", self.dt_rank)
        self.n_state = n_state
        self.in_proj = nn.Linear(d_model, 2 * di, bias=False)           # -> u, z
        self.conv = ShortConv(di, conv)
        self.x_proj = nn.Linear(di, self.dt_rank + 2 * n_state, bias=False)  # dt, B, C
        self.dt_proj = nn.Linear(self.dt_rank, di, bias=False)
        # b_dt outside the Linear: the model's init zeroes Linear biases
        dt = torch.exp(torch.rand(di) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1
        a = torch.arange(1, n_state + 1, dtype=torch.float32)
        self.A_log = nn.Parameter(torch.log(a).repeat(di, 1))            # A = -(1..N)
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d_model, bias=False)

    def _params(self, u):
        """u [..., D_in] -> (delta [..., D_in], B [..., N], C [..., N])."""
        dt, b, c = self.x_proj(u).split([self.dt_rank, self.n_state, self.n_state], -1)
        return F.softplus(self.dt_proj(dt) + self.dt_bias), b, c

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]; `mask` must be None (a softmax-only option)."""
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
        if mask is not None:
            raise ValueError("mask is only for the softmax kinds, not 'ssm-selective'")
        u, z = self.in_proj(x).chunk(2, -1)
        u = F.silu(self.conv(u))
        delta, b, c = self._params(u)
        y = selective_scan(u, delta, -torch.exp(self.A_log), b, c, self.D)
        return self.out_proj(y * F.silu(z))

    def init_state(self, B: int, *, dtype=torch.float32, device=None) -> SelectiveState:
        di = self.D.shape[0]
        return SelectiveState(self.conv.init_past(B, dtype=dtype, device=device),
                              torch.zeros(B, di, self.n_state, dtype=dtype,
                                          device=device))

    def step(self, x_t: torch.Tensor, state: SelectiveState):
        """One token: x_t [B, D] -> (out_t [B, D], state); O(D N) work and memory."""
        check_float_tensor("x_t", x_t, ndim=2, shape_doc="of shape [B, D]")
        u, z = self.in_proj(x_t).chunk(2, -1)
        u, past = self.conv.step(u, state.past)
        u = F.silu(u)
        delta, b, c = self._params(u)
        A = -torch.exp(self.A_log)
        h = torch.exp(delta[..., None] * A) * state.h \
            + delta[..., None] * b[:, None, :] * u[..., None]
        y = (h * c[:, None, :]).sum(-1) + self.D * u
        out = self.out_proj(y * F.silu(z))
        return out, dataclasses.replace(state, past=past, h=h, t=state.t + 1)
