"""Triton kernels for the transport between rows: forward and a hand-written backward.

Book: Part IV, "GPU kernels". The twin is `reference.py` beside this file; the kernels
compute the same thing with the same guards (EPS floor on norms, antipodal fallback
tangent, zeros for degenerate rows), one row per line of a [BLOCK_N, BLOCK_D] tile.
The file reads top to bottom: the math helpers (`_atan2`, `_transport_rows`), the two
kernels, the launchers, and the autograd Function that ties them together.

Triton has no atan2 that its CPU interpreter can run (libdevice calls are not
interpreted), so `_atan2` is built from an odd polynomial for atan on [-tan(pi/8),
tan(pi/8)] (the Cephes `atanf` coefficients, about 1e-7 relative error) plus the usual
range reductions.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ..._checks import triton_interpreting
from .reference import ANTIPODAL_TOL, EPS

PI = math.pi


@triton.jit
def _atan2(y, x):
    """atan2(y, x) elementwise in (-pi, pi]; x and y must not both be zero."""
    ax = tl.abs(x)
    ay = tl.abs(y)
    hi = tl.maximum(ax, ay)
    lo = tl.minimum(ax, ay)
    r = lo / hi                                    # in [0, 1]
    big = r > 0.41421356237309503                  # tan(pi/8): shift by pi/4
    z = tl.where(big, (r - 1.0) / (r + 1.0), r)    # in [-tan(pi/8), tan(pi/8)]
    z2 = z * z
    p = (((8.05374449538e-2 * z2 - 1.38776856032e-1) * z2 + 1.99777106478e-1) * z2
         - 3.33329491539e-1) * z2 * z + z
    p = tl.where(big, p + 0.7853981633974483, p)   # atan(lo / hi) in [0, pi/4]
    p = tl.where(ay > ax, 1.5707963267948966 - p, p)
    p = tl.where(x < 0.0, 3.141592653589793 - p, p)
    return tl.where(y < 0.0, -p, p)


@triton.jit
def _transport_rows(a, b, cols, mask_d, EPS: tl.constexpr, TOL: tl.constexpr):
    """Row-wise transport on register tiles a, b: [R, BD] -> (log_map [R, BD], rho [R]).

    `cols` is tl.arange(0, BD), `mask_d` = cols < D; padding columns of a and b must hold 0.
    """
    na = tl.sqrt(tl.maximum(tl.sum(a * a, axis=1), EPS * EPS))
    nb = tl.sqrt(tl.maximum(tl.sum(b * b, axis=1), EPS * EPS))
    u = a / na[:, None]
    v = b / nb[:, None]
    cos = tl.sum(u * v, axis=1)
    w = v - cos[:, None] * u
    sin = tl.sqrt(tl.maximum(tl.sum(w * w, axis=1), EPS * EPS))
    theta = _atan2(sin, cos)
    antipodal = (sin < TOL) & (cos < 0.0)
    # Fallback tangent: the axis where |u| is smallest (first one on ties, as torch.argmin).
    absu = tl.where(mask_d[None, :], tl.abs(u), float("inf"))
    k = tl.argmin(absu, axis=1)
    e = tl.where(cols[None, :] == k[:, None], 1.0, 0.0)
    uk = tl.sum(e * u, axis=1)
    tvec = e - uk[:, None] * u
    tvec = tl.where(mask_d[None, :], tvec, 0.0)
    tn = tl.sqrt(tl.maximum(tl.sum(tvec * tvec, axis=1), EPS * EPS))
    ft = tvec / tn[:, None]
    direction = tl.where(antipodal[:, None], ft, w / sin[:, None])
    log_map = tl.where(antipodal[:, None], 3.141592653589793 * direction, theta[:, None] * direction)
    rho = tl.log(nb) - tl.log(na)
    degenerate = (na <= EPS) | (nb <= EPS)
    log_map = tl.where(degenerate[:, None], 0.0, log_map)
    rho = tl.where(degenerate, 0.0, rho)
    return log_map, rho


@triton.jit
def _transport_fwd_kernel(A, B, OUT, N, D, stride_a, stride_b, stride_o,
                          EPS: tl.constexpr, TOL: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """OUT[i, :D] = log map, OUT[i, D] = log |b|/|a| for rows i of this program's tile."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_D)
    mask_n = rows < N
    mask_d = cols < D
    m = mask_n[:, None] & mask_d[None, :]
    rows64 = rows.to(tl.int64)
    a = tl.load(A + rows64[:, None] * stride_a + cols[None, :], mask=m, other=0.0).to(tl.float32)
    b = tl.load(B + rows64[:, None] * stride_b + cols[None, :], mask=m, other=0.0).to(tl.float32)
    log_map, rho = _transport_rows(a, b, cols, mask_d, EPS, TOL)
    o = OUT + rows64[:, None] * stride_o + cols[None, :]
    tl.store(o, log_map.to(OUT.dtype.element_ty), mask=m)
    tl.store(OUT + rows64 * stride_o + D, rho.to(OUT.dtype.element_ty), mask=mask_n)


@triton.jit
def _transport_bwd_kernel(A, B, G, GA, GB, N, D, stride_a, stride_b, stride_g, stride_ga, stride_gb,
                          EPS: tl.constexpr, TOL: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """Gradients of the transport for upstream G [N, D+1]: recompute, then chain backwards.

    The derivation follows the forward line by line (see the book chapter); the branches
    not taken by the forward's `where`s get no gradient, exactly as under autograd.
    """
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_D)
    mask_n = rows < N
    mask_d = cols < D
    m = mask_n[:, None] & mask_d[None, :]
    rows64 = rows.to(tl.int64)
    a = tl.load(A + rows64[:, None] * stride_a + cols[None, :], mask=m, other=0.0).to(tl.float32)
    b = tl.load(B + rows64[:, None] * stride_b + cols[None, :], mask=m, other=0.0).to(tl.float32)
    g = tl.load(G + rows64[:, None] * stride_g + cols[None, :], mask=m, other=0.0).to(tl.float32)
    g_rho = tl.load(G + rows64 * stride_g + D, mask=mask_n, other=0.0).to(tl.float32)

    # Recompute the forward.
    na = tl.sqrt(tl.maximum(tl.sum(a * a, axis=1), EPS * EPS))
    nb = tl.sqrt(tl.maximum(tl.sum(b * b, axis=1), EPS * EPS))
    u = a / na[:, None]
    v = b / nb[:, None]
    cos = tl.sum(u * v, axis=1)
    w = v - cos[:, None] * u
    sw = tl.sum(w * w, axis=1)
    sin = tl.sqrt(tl.maximum(sw, EPS * EPS))
    theta = _atan2(sin, cos)
    antipodal = (sin < TOL) & (cos < 0.0)
    absu = tl.where(mask_d[None, :], tl.abs(u), float("inf"))
    k = tl.argmin(absu, axis=1)
    e = tl.where(cols[None, :] == k[:, None], 1.0, 0.0)
    uk = tl.sum(e * u, axis=1)
    tvec = tl.where(mask_d[None, :], e - uk[:, None] * u, 0.0)
    tn = tl.sqrt(tl.maximum(tl.sum(tvec * tvec, axis=1), EPS * EPS))
    ft = tvec / tn[:, None]

    # Regular branch: log_map = theta * w / sin, theta = atan2(sin, cos).
    gw_dot = tl.sum(g * w, axis=1)
    g_theta = gw_dot / sin
    r2 = sin * sin + cos * cos
    g_sin = -theta * gw_dot / (sin * sin) + g_theta * cos / r2
    g_cos = -g_theta * sin / r2
    g_sin = tl.where(sw >= EPS * EPS, g_sin, 0.0)          # the clamp passes no gradient below
    g_w = g * (theta / sin)[:, None] + (g_sin / sin)[:, None] * w
    g_cos = g_cos - tl.sum(g_w * u, axis=1)                  # w = v - cos u
    g_u_reg = -cos[:, None] * g_w + g_cos[:, None] * v
    g_v_reg = g_w + g_cos[:, None] * u
    # Antipodal branch: log_map = pi * t / |t|, t = e - u_k u (e is a constant axis).
    g_ft = 3.141592653589793 * g
    g_t = (g_ft - ft * tl.sum(g_ft * ft, axis=1)[:, None]) / tn[:, None]
    g_t = tl.where(mask_d[None, :], g_t, 0.0)
    g_u_anti = -uk[:, None] * g_t - tl.sum(g_t * u, axis=1)[:, None] * e
    g_u = tl.where(antipodal[:, None], g_u_anti, g_u_reg)
    g_v = tl.where(antipodal[:, None], 0.0, g_v_reg)
    # Through u = a/|a|, v = b/|b| and rho = log|b| - log|a|.
    g_a = (g_u - u * tl.sum(g_u * u, axis=1)[:, None] - g_rho[:, None] * u) / na[:, None]
    g_b = (g_v - v * tl.sum(g_v * v, axis=1)[:, None] + g_rho[:, None] * v) / nb[:, None]
    degenerate = (na <= EPS) | (nb <= EPS)
    g_a = tl.where(degenerate[:, None], 0.0, g_a)
    g_b = tl.where(degenerate[:, None], 0.0, g_b)
    tl.store(GA + rows64[:, None] * stride_ga + cols[None, :], g_a.to(GA.dtype.element_ty), mask=m)
    tl.store(GB + rows64[:, None] * stride_gb + cols[None, :], g_b.to(GB.dtype.element_ty), mask=m)


def _tiles(N: int, D: int, block_n: int | None = None,
           gpu_budget: int = 1 << 11) -> tuple[int, int, tuple[int]]:
    """(BLOCK_N, BLOCK_D, grid). The interpreter runs each program in Python, so it gets
    few large tiles; on a GPU a tile has about `gpu_budget` elements, so that the dozen
    live tiles of a transport fit in registers (the backward keeps more, and gets less).
    `block_n` (a power of two) overrides the rows per program, for tests."""
    BLOCK_D = triton.next_power_of_2(D)
    budget = 1 << 14 if triton_interpreting() else gpu_budget
    BLOCK_N = block_n or max(1, min(triton.next_power_of_2(max(N, 1)), budget // BLOCK_D))
    return BLOCK_N, BLOCK_D, (triton.cdiv(N, BLOCK_N),)


def transport_rows_fwd(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None,
                       block_n: int | None = None) -> torch.Tensor:
    """Launch the forward on row matrices a, b: [N, D] (unit stride along D) -> [N, D+1].

    Any float dtype; the arithmetic is fp32 in registers, the output has a's dtype."""
    N, D = a.shape
    if out is None:
        out = torch.empty(N, D + 1, device=a.device, dtype=a.dtype)
    if N == 0:
        return out
    BLOCK_N, BLOCK_D, grid = _tiles(N, D, block_n)
    _transport_fwd_kernel[grid](a, b, out, N, D, a.stride(0), b.stride(0), out.stride(0),
                                EPS=EPS, TOL=ANTIPODAL_TOL, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D)
    return out


def transport_rows_bwd(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor,
                       block_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the backward: a, b [N, D], upstream g [N, D+1] -> (grad_a, grad_b) [N, D]."""
    N, D = a.shape
    ga = torch.empty(N, D, device=a.device, dtype=a.dtype)
    gb = torch.empty(N, D, device=a.device, dtype=a.dtype)
    if N == 0:
        return ga, gb
    BLOCK_N, BLOCK_D, grid = _tiles(N, D, block_n, gpu_budget=1 << 10)
    _transport_bwd_kernel[grid](a, b, g, ga, gb, N, D, a.stride(0), b.stride(0), g.stride(0),
                                ga.stride(0), gb.stride(0),
                                EPS=EPS, TOL=ANTIPODAL_TOL, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D)
    return ga, gb


class TransportFunction(torch.autograd.Function):
    """Autograd for [N, D] rows: forward and backward are both Triton kernels."""

    @staticmethod
    def forward(ctx, a, b, block_n=None):
        ctx.save_for_backward(a, b)
        ctx.block_n = block_n
        return transport_rows_fwd(a, b, block_n=block_n)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (*transport_rows_bwd(a, b, g.contiguous(), ctx.block_n), None)


def transport_triton(a: torch.Tensor, b: torch.Tensor, block_n: int | None = None) -> torch.Tensor:
    """[..., D], [..., D] -> [..., D+1], equal to `transport_reference` to fp32 rounding.

    Both passes are Triton kernels (the backward recomputes the forward from a and b, so
    nothing but the inputs is saved). Inputs are flattened to [N, D] rows; `block_n`
    (rows per program, a power of two) is for tests that want several programs.
    """
    shape = a.shape
    D = shape[-1]
    a2 = a.reshape(-1, D).contiguous()
    b2 = b.reshape(-1, D).contiguous()
    return TransportFunction.apply(a2, b2, block_n).reshape(*shape[:-1], D + 1)
