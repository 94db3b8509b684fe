"""Triton kernels for the causal dyadic pyramid, forward and backward.

Book: Part IV, "GPU kernels". The twin is `reference.py` beside this file. All the
centroids of one sequence live in one packed buffer C [B, Ctot, D]: level 0 (a copy of x)
then level 1, 2, ..., level l holding n_l = T >> l rows at offset off_l. Then:

1. `_centroid_fwd_kernel`, once per level: C_l[j] = (C_{l-1}[2j] + C_{l-1}[2j+1]) / 2,
   the same dyadic reduction (and rounding) as the reference.
2. One transport launch over consecutive rows of the flat buffer: P[r] =
   transport(C[r], C[r+1]). Row off_l + k is the pair (k, k+1) of level l; the few rows
   that straddle two levels or two sequences are computed and never read.
3. `_gather_fwd_kernel`: position t at level l reads pair ((t+1) >> l) - 2, or zeros.

The backward runs the same steps in reverse: `_gather_bwd_kernel` sums the upstream
gradient of the positions that read each pair (one aligned run of 2**l positions, summed
by one program in a fixed order: no atomics, so two runs agree bit for bit), the
transport backward kernel turns it into gradients of both centroids, and
`_centroid_bwd_kernel` walks the levels from the top down, handing half of each
centroid's gradient to its two children.
Work O(B T D log T), the output's size; no Python loop over T (one over the L levels).
Every kernel walks D in tiles of at most MAX_BLOCK_D columns (`kernels/_tiles.py`), puts
the batch on grid axis 0 (2**31 - 1 programs; axes 1 and 2 allow 65,535), and uses int64
offsets; gradients are summed in fp32 whatever the dtype of x.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..._levels import pyramid_mask
from .._launch import launch_device
from .._tiles import tile_sizes
from ..transport.triton import transport_rows_bwd, transport_rows_fwd


@triton.jit
def _centroid_fwd_kernel(C, off_src, off_dst, n_dst, Ctot, D,
                         BLOCK_J: tl.constexpr, BLOCK_D: tl.constexpr):
    """C[b, off_dst + j] = (C[b, off_src + 2j] + C[b, off_src + 2j + 1]) / 2.

    Axis 0 of the grid holds (sequence, tile of j) together: it allows 2**31 - 1
    programs, where axes 1 and 2 allow 65,535. Offsets are int64 (2 T D passes 2**31)."""
    n_tiles = tl.cdiv(n_dst, BLOCK_J)
    pid = tl.program_id(0)
    b = (pid // n_tiles).to(tl.int64)
    j = ((pid % n_tiles) * BLOCK_J + tl.arange(0, BLOCK_J)).to(tl.int64)
    row = b * Ctot
    cols = tl.arange(0, BLOCK_D)
    for d0 in range(0, D, BLOCK_D):
        c = d0 + cols
        m = (j < n_dst)[:, None] & (c < D)[None, :]
        src = C + (row + off_src + 2 * j)[:, None] * D + c[None, :]
        left = tl.load(src, mask=m, other=0.0).to(tl.float32)
        right = tl.load(src + D, mask=m, other=0.0).to(tl.float32)
        # In fp32, one rounding on the store: the value of the dtype's own add for
        # fp16/bf16 (their sums are exact in fp32), and the interpreter has no bf16
        # constant.
        tl.store(C + (row + off_dst + j)[:, None] * D + c[None, :],
                 (0.5 * (left + right)).to(C.dtype.element_ty), mask=m)


@triton.jit
def _gather_fwd_kernel(P, OUT, T, L, Ctot, D1,
                       BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """OUT[b, t, l] = P[b, off_l + ((t+1) >> l) - 2], or 0 where fewer than two blocks are done."""
    n_tiles = tl.cdiv(T, BLOCK_T)
    pid = tl.program_id(0)
    b = (pid // n_tiles).to(tl.int64)
    t = (pid % n_tiles) * BLOCK_T + tl.arange(0, BLOCK_T)
    t64 = t.to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    mask_t = t < T
    off = 0
    for level in range(L):
        k = ((t + 1) >> level) - 2
        valid = mask_t & (k >= 0)
        src_row = b * Ctot + off + k.to(tl.int64)
        dst_row = (b * T + t64) * L + level
        for d0 in range(0, D1, BLOCK_D):
            c = d0 + cols
            mask_d = c < D1
            f = tl.load(P + src_row[:, None] * D1 + c[None, :],
                        mask=valid[:, None] & mask_d[None, :], other=0.0)
            tl.store(OUT + dst_row[:, None] * D1 + c[None, :], f,
                     mask=mask_t[:, None] & mask_d[None, :])
        off += T >> level


@triton.jit
def _gather_bwd_kernel(GOUT, GP, T, L, Ctot, D1,
                       BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """GP[b, r] = the sum of GOUT[b, t, l] over the positions t that read packed row r
    (pair k = r - off_l of level l), in fp32, written once.

    One program per packed row (grid axis 0: sequence and row together). The readers of
    pair k are one aligned run, t + 1 = (k+2) 2**l ... (k+3) 2**l - 1, so the program walks
    that run in tiles of BLOCK_T positions and stores the sum: no atomics, the same order,
    and the same bits, on every run. Rows no position reads get zeros."""
    pid = tl.program_id(0)
    b = (pid // Ctot).to(tl.int64)
    r = pid % Ctot
    off = r * 0                                   # the level of row r and where it starts
    level = r * 0
    end = r * 0
    for i in range(L):
        end += T >> i
        past = r >= end
        off += tl.where(past, T >> i, 0)
        level += tl.where(past, 1, 0)
    k = r - off
    t_lo = ((k + 2) << level) - 1
    t_hi = tl.minimum(((k + 3) << level) - 1, T)
    rows = tl.arange(0, BLOCK_T)
    cols = tl.arange(0, BLOCK_D)
    for d0 in range(0, D1, BLOCK_D):
        c = d0 + cols
        mask_d = c < D1
        acc = tl.zeros([BLOCK_D], dtype=tl.float32)
        for t0 in range(t_lo, t_hi, BLOCK_T):
            t = t0 + rows
            src = (b * T + t.to(tl.int64)) * L + level
            g = tl.load(GOUT + src[:, None] * D1 + c[None, :],
                        mask=(t < t_hi)[:, None] & mask_d[None, :], other=0.0)
            acc += tl.sum(g.to(tl.float32), axis=0)
        tl.store(GP + (b * Ctot + r) * D1 + c, acc, mask=mask_d)


@triton.jit
def _centroid_bwd_kernel(GA, GB, G, R, off_l, n_l, off_up, n_up, Ctot, D,
                         BLOCK_J: tl.constexpr, BLOCK_D: tl.constexpr):
    """G[b, off_l + j] = GA[r] + GB[r - 1] + G[b, off_up + j // 2] / 2, r = b Ctot + off_l + j.

    GA/GB [R, D] are the transport gradients for the first/second member of each flat pair, so
    row r collects GA of pair r and GB of pair r - 1; the last term is the share of the
    parent centroid one level up (already final: levels run from the top down). Sums in fp32.
    """
    n_tiles = tl.cdiv(n_l, BLOCK_J)
    pid = tl.program_id(0)
    b = (pid // n_tiles).to(tl.int64)
    j = ((pid % n_tiles) * BLOCK_J + tl.arange(0, BLOCK_J)).to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    mask_j = j < n_l
    r = b * Ctot + off_l + j
    up = j // 2
    for d0 in range(0, D, BLOCK_D):
        c = d0 + cols
        m = mask_j[:, None] & (c < D)[None, :]
        ga = tl.load(GA + r[:, None] * D + c[None, :], mask=m & (r < R)[:, None],
                     other=0.0).to(tl.float32)
        gb = tl.load(GB + (r - 1)[:, None] * D + c[None, :], mask=m & (r >= 1)[:, None],
                     other=0.0).to(tl.float32)
        gu = tl.load(G + (b * Ctot + off_up + up)[:, None] * D + c[None, :],
                     mask=m & (up < n_up)[:, None], other=0.0).to(tl.float32)
        tl.store(G + r[:, None] * D + c[None, :], (ga + gb + 0.5 * gu).to(G.dtype.element_ty),
                 mask=m)


def _layout(T: int, L: int) -> tuple[list[int], list[int], int]:
    """Row offsets and counts of each level in the packed buffer, and its total rows."""
    counts = [T >> level for level in range(L)]
    offsets = [sum(counts[:level]) for level in range(L)]
    return offsets, counts, sum(counts)


def pyramid_fwd(x: torch.Tensor, L: int, block: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, T, D] contiguous -> (features [B, T, L, D+1], packed centroids C [B, Ctot, D])."""
    B, T, D = x.shape
    offsets, counts, Ctot = _layout(T, L)
    C = torch.empty(B, Ctot, D, device=x.device, dtype=x.dtype)
    C[:, :T] = x
    BJ, BD = tile_sizes(T, D, block=block)
    with launch_device(x):
        for level in range(1, L):
            if counts[level] == 0:
                break
            grid = (B * triton.cdiv(counts[level], BJ),)
            _centroid_fwd_kernel[grid](C, offsets[level - 1], offsets[level],
                                       counts[level], Ctot, D, BLOCK_J=BJ, BLOCK_D=BD)
    flat = C.view(B * Ctot, D)
    P = torch.empty(B * Ctot, D + 1, device=x.device, dtype=x.dtype)
    P[-1].zero_()                       # the last row has no right neighbour; never read
    transport_rows_fwd(flat[:-1], flat[1:], out=P[:-1], block_n=block)
    out = torch.empty(B, T, L, D + 1, device=x.device, dtype=x.dtype)
    BT, BD1 = tile_sizes(T, D + 1, block=block)
    with launch_device(x):
        _gather_fwd_kernel[(B * triton.cdiv(T, BT),)](P, out, T, L, Ctot, D + 1,
                                                      BLOCK_T=BT, BLOCK_D=BD1)
    return out, C


def pyramid_bwd(gout: torch.Tensor, C: torch.Tensor, T: int, L: int,
                block: int | None = None) -> torch.Tensor:
    """Upstream [B, T, L, D+1] and the saved centroids -> gradient of x [B, T, D].

    Every sum of gradients (segment sums, the transport's, the centroids') is kept in
    fp32, whatever the dtype of x; only the result is cast back."""
    B, Ctot, D = C.shape
    offsets, counts, _ = _layout(T, L)
    gout = gout.contiguous()
    GP = torch.empty(B * Ctot, D + 1, device=C.device, dtype=torch.float32)
    BT, BD1 = tile_sizes(T, D + 1, block=block)
    with launch_device(C):
        _gather_bwd_kernel[(B * Ctot,)](gout, GP, T, L, Ctot, D + 1,
                                        BLOCK_T=BT, BLOCK_D=BD1)
    flat = C.view(B * Ctot, D)
    GA, GB = transport_rows_bwd(flat[:-1], flat[1:], GP[:-1], block, grad_dtype=torch.float32)
    G = torch.empty(B, Ctot, D, device=C.device, dtype=torch.float32)
    BJ, BD = tile_sizes(T, D, block=block)
    with launch_device(C):
        for level in reversed(range(L)):
            if counts[level] == 0:
                continue
            up = level + 1 if level + 1 < L else level     # the top level has no parent
            n_up = counts[level + 1] if level + 1 < L else 0
            grid = (B * triton.cdiv(counts[level], BJ),)
            _centroid_bwd_kernel[grid](GA, GB, G, B * Ctot - 1, offsets[level],
                                       counts[level], offsets[up], n_up, Ctot, D,
                                       BLOCK_J=BJ, BLOCK_D=BD)
    return G[:, :T].to(C.dtype)


class PyramidFunction(torch.autograd.Function):
    """Autograd for the pyramid; saves only the packed centroids (about 2 T D numbers)."""

    @staticmethod
    def forward(ctx, x, L, block=None):
        out, C = pyramid_fwd(x, L, block)
        ctx.save_for_backward(C)
        ctx.T, ctx.L, ctx.block = x.shape[1], L, block
        return out

    @staticmethod
    def backward(ctx, gout):
        (C,) = ctx.saved_tensors
        return pyramid_bwd(gout, C, ctx.T, ctx.L, ctx.block), None, None


def pyramid_triton(x: torch.Tensor, levels: int,
                   block: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, D] -> features [B, T, L, D+1] and mask [T, L], equal to `pyramid_reference`.

    Forward and backward are Triton kernels (see the module docstring); causal,
    O(B T D log T) work and memory (the output), O(B T D) saved for the backward.
    `block` (rows per program, a power of two) is for tests that want many programs.
    """
    x = x.contiguous()
    return PyramidFunction.apply(x, levels, block), pyramid_mask(x.shape[1], levels, x.device)
