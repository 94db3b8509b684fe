"""Triton kernels for the transport between rows: forward and a hand-written backward.

Book: Part IV, "GPU kernels". The twin is `reference.py` beside this file; the kernels
compute the same thing with the same guards (EPS floor on norms, a zero test on the
*squared* norms, the antipodal fallback tangent, zeros for degenerate rows). A program
owns BLOCK_N rows and walks them in column tiles of BLOCK_D (at most MAX_BLOCK_D, see
`kernels/_tiles.py`), so any D fits in registers:

1. `_row_stats`: three passes over the tiles give the per-row scalars of the forward
   (norms, cos, |w|, the angle, the fallback axis). Forward and backward both call it,
   so the forward's math is written once.
2. `_transport_fwd_rows` (the forward kernel, and the streaming step) writes the output
   tile by tile; `_transport_bwd_kernel` makes one more pass for the dot products the
   chain rule needs, then writes the gradients tile by tile.

All arithmetic is fp32 in registers, whatever the dtype in memory. Triton has no atan2
that its CPU interpreter can run (libdevice calls are not interpreted), so `_atan2` is
built from an odd polynomial for atan on [-tan(pi/8), tan(pi/8)] (the Cephes `atanf`
coefficients, about 1e-7 relative error) plus the usual range reductions.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .._launch import launch_device
from .._tiles import tile_sizes
from .reference import ANTIPODAL_TOL, EPS

PI = tl.constexpr(math.pi)
HALF_PI = tl.constexpr(math.pi / 2)
QUARTER_PI = tl.constexpr(math.pi / 4)
TAN_PI_8 = tl.constexpr(math.tan(math.pi / 8))
# Rows per program of the forward on a GPU, at most: at 32 rows of 64 columns (the
# default 2k-element tile) it spilled 564 bytes on an H200 with Triton 3.6 (255
# registers); 16 rows of 64 or of 128 columns do not spill.
FWD_MAX_ROWS = 16
BWD_BUDGET = 1 << 8   # the backward keeps more live tiles (more spills on sm_90)


@triton.jit
def _atan2(y, x):
    """atan2(y, x) elementwise in (-pi, pi]; x and y must not both be zero."""
    ax = tl.abs(x)
    ay = tl.abs(y)
    hi = tl.maximum(ax, ay)
    lo = tl.minimum(ax, ay)
    r = lo / hi                                    # in [0, 1]
    big = r > TAN_PI_8                             # shift by pi/4
    z = tl.where(big, (r - 1.0) / (r + 1.0), r)    # in [-tan(pi/8), tan(pi/8)]
    z2 = z * z
    p = (((8.05374449538e-2 * z2 - 1.38776856032e-1) * z2 + 1.99777106478e-1) * z2
         - 3.33329491539e-1) * z2 * z + z
    p = tl.where(big, p + QUARTER_PI, p)           # atan(lo / hi) in [0, pi/4]
    p = tl.where(ay > ax, HALF_PI - p, p)
    p = tl.where(x < 0.0, PI - p, p)
    return tl.where(y < 0.0, -p, p)


@triton.jit
def _load_tile(P, rows64, stride, c, m):
    return tl.load(P + rows64[:, None] * stride + c[None, :], mask=m, other=0.0).to(tl.float32)


@triton.jit
def _row_stats(A, B, rows64, mask_n, stride_a, stride_b, D, EPS: tl.constexpr,
               TOL: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """Per-row scalars of the forward, [BLOCK_N] each, from three passes over the D tiles.

    na, nb: norms floored at EPS; cos = u.v; sw = |w|^2 and sin = max(|w|, EPS);
    theta; antipodal; k, uk: the fallback axis (argmin |u|, first on ties) and u_k;
    tn = |e_k - u_k u|; degenerate: |a|^2 or |b|^2 <= EPS^2 (squared: no sqrt rounding).
    """
    cols = tl.arange(0, BLOCK_D)
    sa = tl.zeros([BLOCK_N], dtype=tl.float32)
    sb = tl.zeros([BLOCK_N], dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        c = d0 + cols
        m = mask_n[:, None] & (c < D)[None, :]
        a = _load_tile(A, rows64, stride_a, c, m)
        b = _load_tile(B, rows64, stride_b, c, m)
        sa += tl.sum(a * a, axis=1)
        sb += tl.sum(b * b, axis=1)
    na = tl.sqrt(tl.maximum(sa, EPS * EPS))
    nb = tl.sqrt(tl.maximum(sb, EPS * EPS))
    cos = tl.zeros([BLOCK_N], dtype=tl.float32)
    best = tl.full([BLOCK_N], float("inf"), dtype=tl.float32)
    k = tl.zeros([BLOCK_N], dtype=tl.int32)
    uk = tl.zeros([BLOCK_N], dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        c = d0 + cols
        m = mask_n[:, None] & (c < D)[None, :]
        u = _load_tile(A, rows64, stride_a, c, m) / na[:, None]
        v = _load_tile(B, rows64, stride_b, c, m) / nb[:, None]
        cos += tl.sum(u * v, axis=1)
        absu = tl.where((c < D)[None, :], tl.abs(u), float("inf"))
        tmin = tl.min(absu, axis=1)
        targ = tl.argmin(absu, axis=1, tie_break_left=True) + d0
        tuk = tl.sum(tl.where(c[None, :] == targ[:, None], u, 0.0), axis=1)
        better = tmin < best                       # strict: an earlier tile wins ties
        k = tl.where(better, targ, k)
        uk = tl.where(better, tuk, uk)
        best = tl.where(better, tmin, best)
    sw = tl.zeros([BLOCK_N], dtype=tl.float32)
    st = tl.zeros([BLOCK_N], dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        c = d0 + cols
        m = mask_n[:, None] & (c < D)[None, :]
        u = _load_tile(A, rows64, stride_a, c, m) / na[:, None]
        v = _load_tile(B, rows64, stride_b, c, m) / nb[:, None]
        w = v - cos[:, None] * u
        e = tl.where(c[None, :] == k[:, None], 1.0, 0.0)
        tvec = tl.where((c < D)[None, :], e - uk[:, None] * u, 0.0)
        sw += tl.sum(w * w, axis=1)
        st += tl.sum(tvec * tvec, axis=1)
    sin = tl.sqrt(tl.maximum(sw, EPS * EPS))
    tn = tl.sqrt(tl.maximum(st, EPS * EPS))
    theta = _atan2(sin, cos)
    antipodal = (sin < TOL) & (cos < 0.0)
    degenerate = (sa <= EPS * EPS) | (sb <= EPS * EPS)
    return na, nb, cos, sw, sin, theta, antipodal, k, uk, tn, degenerate


@triton.jit
def _transport_fwd_rows(A, B, OUT, rows64, mask_n, stride_a, stride_b, stride_o, D,
                        EPS: tl.constexpr, TOL: tl.constexpr,
                        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """OUT[r, :D] = log map, OUT[r, D] = log |b|/|a| for the rows `rows64` (mask_n)."""
    na, nb, cos, sw, sin, theta, antipodal, k, uk, tn, degenerate = _row_stats(
        A, B, rows64, mask_n, stride_a, stride_b, D, EPS, TOL, BLOCK_N, BLOCK_D)
    cols = tl.arange(0, BLOCK_D)
    for d0 in range(0, D, BLOCK_D):
        c = d0 + cols
        m = mask_n[:, None] & (c < D)[None, :]
        u = _load_tile(A, rows64, stride_a, c, m) / na[:, None]
        v = _load_tile(B, rows64, stride_b, c, m) / nb[:, None]
        w = v - cos[:, None] * u
        e = tl.where(c[None, :] == k[:, None], 1.0, 0.0)
        ft = tl.where((c < D)[None, :], e - uk[:, None] * u, 0.0) / tn[:, None]
        direction = tl.where(antipodal[:, None], ft, w / sin[:, None])
        log_map = tl.where(antipodal[:, None], PI * direction, theta[:, None] * direction)
        log_map = tl.where(degenerate[:, None], 0.0, log_map)
        tl.store(OUT + rows64[:, None] * stride_o + c[None, :],
                 log_map.to(OUT.dtype.element_ty), mask=m)
    rho = tl.where(degenerate, 0.0, tl.log(nb) - tl.log(na))
    tl.store(OUT + rows64 * stride_o + D, rho.to(OUT.dtype.element_ty), mask=mask_n)


@triton.jit
def _transport_fwd_kernel(A, B, OUT, N, D, stride_a, stride_b, stride_o,
                          EPS: tl.constexpr, TOL: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """The forward for the BLOCK_N rows of this program."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    _transport_fwd_rows(A, B, OUT, rows.to(tl.int64), rows < N, stride_a, stride_b, stride_o, D,
                        EPS, TOL, BLOCK_N, BLOCK_D)


@triton.jit
def _transport_bwd_kernel(A, B, G, GA, GB, N, D, stride_a, stride_b, stride_g, stride_ga,
                          stride_gb, EPS: tl.constexpr, TOL: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """Gradients for upstream G [N, D+1]: the forward's scalars from `_row_stats`, one pass
    for the dot products, one that writes. Every vector of the chain rule is a combination
    of u, v, w, g, e and the fallback tangent ft, so only their row dot products are
    summed; the branches not taken by the forward's `where`s get no gradient, as under
    autograd (see the book chapter for the derivation)."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = rows < N
    rows64 = rows.to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    na, nb, cos, sw, sin, theta, antipodal, k, uk, tn, degenerate = _row_stats(
        A, B, rows64, mask_n, stride_a, stride_b, D, EPS, TOL, BLOCK_N, BLOCK_D)
    g_rho = tl.load(G + rows64 * stride_g + D, mask=mask_n, other=0.0).to(tl.float32)
    gw = tl.zeros([BLOCK_N], dtype=tl.float32)     # g.w
    gu = tl.zeros([BLOCK_N], dtype=tl.float32)     # g.u
    gv = tl.zeros([BLOCK_N], dtype=tl.float32)     # g.v
    wu = tl.zeros([BLOCK_N], dtype=tl.float32)     # w.u
    wv = tl.zeros([BLOCK_N], dtype=tl.float32)     # w.v
    gf = tl.zeros([BLOCK_N], dtype=tl.float32)     # g.ft
    fu = tl.zeros([BLOCK_N], dtype=tl.float32)     # ft.u
    for d0 in range(0, D, BLOCK_D):
        c = d0 + cols
        m = mask_n[:, None] & (c < D)[None, :]
        u = _load_tile(A, rows64, stride_a, c, m) / na[:, None]
        v = _load_tile(B, rows64, stride_b, c, m) / nb[:, None]
        g = _load_tile(G, rows64, stride_g, c, m)
        w = v - cos[:, None] * u
        e = tl.where(c[None, :] == k[:, None], 1.0, 0.0)
        ft = tl.where((c < D)[None, :], e - uk[:, None] * u, 0.0) / tn[:, None]
        gw += tl.sum(g * w, axis=1)
        gu += tl.sum(g * u, axis=1)
        gv += tl.sum(g * v, axis=1)
        wu += tl.sum(w * u, axis=1)
        wv += tl.sum(w * v, axis=1)
        gf += tl.sum(g * ft, axis=1)
        fu += tl.sum(ft * u, axis=1)
    # Regular branch: log_map = theta * w / sin, theta = atan2(sin, cos), w = v - cos u.
    r2 = sin * sin + cos * cos
    g_theta = gw / sin
    g_sin = -theta * gw / (sin * sin) + g_theta * cos / r2
    g_sin = tl.where(sw >= EPS * EPS, g_sin, 0.0)          # the clamp passes no gradient below
    c_g = theta / sin                                        # g_w = c_g g + c_w w
    c_w = g_sin / sin
    g_cos = -g_theta * sin / r2 - (c_g * gu + c_w * wu)      # minus g_w.u
    # g_u = -cos g_w + g_cos v, g_v = g_w + g_cos u; their dots with u and v:
    guu_reg = -cos * (c_g * gu + c_w * wu) + g_cos * cos
    gvv_reg = c_g * gv + c_w * wv + g_cos * cos
    # Antipodal branch: log_map = pi * t / |t|, t = e - u_k u:
    # g_t = (pi / tn) (g - (g.ft) ft), g_u = -u_k g_t - (g_t.u) e.
    c_t = PI / tn
    gtu = c_t * (gu - gf * fu)
    guu_anti = -2.0 * uk * gtu
    guu = tl.where(antipodal, guu_anti, guu_reg)
    gvv = tl.where(antipodal, 0.0, gvv_reg)
    for d0 in range(0, D, BLOCK_D):
        c = d0 + cols
        m = mask_n[:, None] & (c < D)[None, :]
        u = _load_tile(A, rows64, stride_a, c, m) / na[:, None]
        v = _load_tile(B, rows64, stride_b, c, m) / nb[:, None]
        g = _load_tile(G, rows64, stride_g, c, m)
        w = v - cos[:, None] * u
        e = tl.where(c[None, :] == k[:, None], 1.0, 0.0)
        ft = tl.where((c < D)[None, :], e - uk[:, None] * u, 0.0) / tn[:, None]
        g_w = c_g[:, None] * g + c_w[:, None] * w
        g_t = tl.where((c < D)[None, :], c_t[:, None] * (g - gf[:, None] * ft), 0.0)
        g_u_anti = -uk[:, None] * g_t - gtu[:, None] * e
        g_u = tl.where(antipodal[:, None], g_u_anti, -cos[:, None] * g_w + g_cos[:, None] * v)
        g_v = tl.where(antipodal[:, None], 0.0, g_w + g_cos[:, None] * u)
        # Through u = a/|a|, v = b/|b| and rho = log|b| - log|a|.
        g_a = (g_u - u * guu[:, None] - g_rho[:, None] * u) / na[:, None]
        g_b = (g_v - v * gvv[:, None] + g_rho[:, None] * v) / nb[:, None]
        g_a = tl.where(degenerate[:, None], 0.0, g_a)
        g_b = tl.where(degenerate[:, None], 0.0, g_b)
        tl.store(GA + rows64[:, None] * stride_ga + c[None, :], g_a.to(GA.dtype.element_ty), mask=m)
        tl.store(GB + rows64[:, None] * stride_gb + c[None, :], g_b.to(GB.dtype.element_ty), mask=m)


def transport_rows_fwd(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None,
                       block_n: int | None = None) -> torch.Tensor:
    """Launch the forward on row matrices a, b: [N, D] (unit stride along D) -> [N, D+1].

    Any float dtype; the arithmetic is fp32 in registers, the output has a's dtype."""
    N, D = a.shape
    if out is None:
        out = torch.empty(N, D + 1, device=a.device, dtype=a.dtype)
    if N == 0:
        return out
    BLOCK_N, BLOCK_D = tile_sizes(N, D, block=block_n, max_rows=FWD_MAX_ROWS)
    with launch_device(a):
        _transport_fwd_kernel[(triton.cdiv(N, BLOCK_N),)](
            a, b, out, N, D, a.stride(0), b.stride(0), out.stride(0),
            EPS=EPS, TOL=ANTIPODAL_TOL, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D)
    return out


def transport_rows_bwd(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor,
                       block_n: int | None = None,
                       grad_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the backward: a, b [N, D], upstream g [N, D+1] (any float dtype) ->
    (grad_a, grad_b) [N, D] in `grad_dtype` (default a's dtype; fp32 to keep summing)."""
    N, D = a.shape
    dtype = a.dtype if grad_dtype is None else grad_dtype
    ga = torch.empty(N, D, device=a.device, dtype=dtype)
    gb = torch.empty(N, D, device=a.device, dtype=dtype)
    if N == 0:
        return ga, gb
    BLOCK_N, BLOCK_D = tile_sizes(N, D, block=block_n, budget=BWD_BUDGET)
    with launch_device(a):
        _transport_bwd_kernel[(triton.cdiv(N, BLOCK_N),)](
            a, b, g, ga, gb, N, D, a.stride(0), b.stride(0), g.stride(0), ga.stride(0),
            gb.stride(0), EPS=EPS, TOL=ANTIPODAL_TOL, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D)
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
