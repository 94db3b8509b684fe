"""A diagonal linear recurrence (a small state-space / retention layer) and its parallel
scan.

Book: Part III, "The remedies, measured". Each of D channels keeps N numbers of state:

    h_t = a_t * h_{t-1} + b_t * x_t        (elementwise, h_t [B, D, N])
    y_t = sum_n c_t[n] * h_t[n]

a, b, c are [D, N] (time-invariant, as in S4D, Gu et al., 2022; a scalar decay per head
is retention, Sun et al., 2023) or [B, T, D, N] (input-dependent, as in Mamba, Gu and
Dao, 2023). The recurrence is linear in h, so the pairs (a_t, b_t x_t) compose
associatively, (A1, U1) then (A2, U2) = (A2 A1, A2 U1 + U2), and `ssm_scan` computes
all h_t by log-depth scans (Hillis and Steele, 1986) inside chunks and a carry across
chunks: O(T log(chunk) D N) work, O(T D N) memory. `ssm_reference` is the sequential
loop; `ssm_step` one token, O(D N) work and memory whatever the length of the past.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .._checks import check_float_tensor, check_positive_int
from ._common import tensor_bytes

__all__ = ["ssm_scan", "ssm_reference", "SSMState", "init_ssm_state",
           "prefill_ssm_state", "ssm_step"]


def _check(x, a, b, c):
    check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, D]")
    B, T, D = x.shape
    if T < 1:
        raise ValueError(f"x must have T >= 1 positions, got shape {tuple(x.shape)}")
    N = None
    for name, p in (("a", a), ("b", b), ("c", c)):
        check_float_tensor(name, p, shape_doc="of shape [D, N] or [B, T, D, N]")
        n = p.shape[-1]
        ok = p.shape in ((D, n), (B, T, D, n)) and (N is None or n == N)
        if not ok:
            raise ValueError(f"{name} must have shape [D, N] = [{D}, N] or "
                             f"[B, T, D, N] = [{B}, {T}, {D}, N] with one N for "
                             f"a, b, c; got {tuple(p.shape)}")
        N = n
    return B, T, D, N


def _at(p, t):
    """Parameter at time t: [D, N] as is, [B, T, D, N] sliced to [B, D, N]."""
    return p if p.dim() == 2 else p[:, t]


def _hillis_steele(A, U, dim: int):
    """Inclusive scan of the pairs (A, U) along `dim` in ceil(log2 n) rounds: afterwards
    U_t = h_t from h = 0 and A_t = a_t ... a_1 (the product over the scanned range)."""
    n, d = A.shape[dim], 1
    while d < n:
        lo, hi = A.narrow(dim, 0, n - d), A.narrow(dim, d, n - d)
        U = torch.cat([U.narrow(dim, 0, d), hi * U.narrow(dim, 0, n - d)
                       + U.narrow(dim, d, n - d)], dim=dim)
        A = torch.cat([A.narrow(dim, 0, d), hi * lo], dim=dim)
        d *= 2
    return A, U


def ssm_scan(x, a, b, c, *, chunk: int | None = 64, h0: torch.Tensor | None = None,
             return_state: bool = False):
    """y [B, T, D] for x [B, T, D] by a parallel scan (and h_T [B, D, N] with
    return_state). Equals `ssm_reference` up to rounding.

    Chunked: the log-depth scan inside chunks of `chunk` positions, all chunks at once;
    then the state entering each chunk, carried chunk to chunk (T / chunk small steps
    on [B, D, N]); then each position adds its decayed share of that state. Work
    O(T log(chunk) D N), depth O(log chunk + T / chunk). A time-invariant a [D, N]
    needs no scanned products (round d multiplies by a^d). chunk=None: one chunk, the
    plain log-depth scan, O(T log T D N) work."""
    B, T, D, N = _check(x, a, b, c)
    check_positive_int("chunk", chunk, allow_none=True)
    ch = T if chunk is None else min(chunk, T)
    n = -(-T // ch)
    pad = n * ch - T
    U = torch.nn.functional.pad(b * x.unsqueeze(-1), (0, 0, 0, 0, 0, pad))
    U = U.view(B, n, ch, D, N)
    if a.dim() == 2:
        # time-invariant a: round d adds a^d U_{t-d}; A_t = a^(t+1) inside a chunk
        ad, d = a, 1
        while d < ch:
            U = torch.cat([U[:, :, :d], U[:, :, d:] + ad * U[:, :, :-d]], dim=2)
            ad, d = ad * ad, 2 * d
        powers = torch.arange(1, ch + 1, device=a.device, dtype=a.dtype)
        A = torch.pow(a, powers[:, None, None])                  # [ch, D, N]
        A_last, A_full = A[-1], A
    else:
        A = torch.nn.functional.pad(a, (0, 0, 0, 0, 0, pad), value=1.0)
        A, U = _hillis_steele(A.view(B, n, ch, D, N), U, dim=2)
        A_last, A_full = None, A
    if h0 is not None:
        check_float_tensor("h0", h0, ndim=3,
                           shape_doc=f"of shape [B, D, N] = [{B}, {D}, {N}]")
    carry = [x.new_zeros(B, D, N) if h0 is None else h0]     # state entering chunk i
    for i in range(n - 1):
        a_i = A_full[:, i, -1] if A_last is None else A_last
        carry.append(U[:, i, -1] + a_i * carry[-1])
    U = U + A_full * torch.stack(carry, dim=1).unsqueeze(2)
    U = U.view(B, n * ch, D, N)[:, :T]
    y = (c * U).sum(-1)
    return (y, U[:, -1]) if return_state else y


def ssm_reference(x, a, b, c, *, h0: torch.Tensor | None = None) -> torch.Tensor:
    """The twin: the recurrence as a loop over t."""
    B, T, D, N = _check(x, a, b, c)
    h = x.new_zeros(B, D, N) if h0 is None else h0
    ys = []
    for t in range(T):
        h = _at(a, t) * h + _at(b, t) * x[:, t, :, None]
        ys.append((_at(c, t) * h).sum(-1))
    return torch.stack(ys, dim=1)


@dataclass
class SSMState:
    """h [B, D, N]: the whole memory of the past; t: tokens seen."""

    h: torch.Tensor
    t: int = 0

    def nbytes(self) -> int:
        return tensor_bytes(self.h)


def init_ssm_state(B: int, D: int, N: int, *, dtype=torch.float32,
                   device=None) -> SSMState:
    for name, val in (("B", B), ("D", D), ("N", N)):
        check_positive_int(name, val)
    return SSMState(torch.zeros(B, D, N, dtype=dtype, device=device))


def prefill_ssm_state(x, a, b, c) -> SSMState:
    """The state after the prompt x [B, T, D] (by the parallel scan)."""
    _, h = ssm_scan(x, a, b, c, return_state=True)
    return SSMState(h, x.shape[1])


def ssm_step(x_t, a_t, b_t, c_t, state: SSMState):
    """One token: x_t [B, D], a_t, b_t, c_t [D, N] or [B, D, N] -> (y_t [B, D], state).

    Equals `ssm_scan` at every position."""
    check_float_tensor("x_t", x_t, ndim=2, shape_doc="of shape [B, D]")
    B, D, N = state.h.shape
    if x_t.shape != (B, D):
        raise ValueError(f"x_t must have shape [B, D] = [{B}, {D}], "
                         f"got {tuple(x_t.shape)}")
    for name, p in (("a_t", a_t), ("b_t", b_t), ("c_t", c_t)):
        if p.shape not in ((D, N), (B, D, N)):
            raise ValueError(f"{name} must have shape [D, N] or [B, D, N] = "
                             f"[{B}, {D}, {N}], "
                             f"got {tuple(p.shape)}")
    h = a_t * state.h + b_t * x_t[..., None]
    return (c_t * h).sum(-1), dataclasses.replace(state, h=h, t=state.t + 1)
