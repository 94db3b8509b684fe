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
gradient of the positions that read each pair (a run of 2**l positions; atomics, so the
sum order, and the last bits, may vary between GPU runs), the transport backward kernel
turns it into gradients of both centroids, and `_centroid_bwd_kernel` walks the levels
from the top down, handing half of each centroid's gradient to its two children.
Work O(B T D log T), the output's size; no Python loop over T (one over the L levels).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..._checks import triton_interpreting
from ..transport.triton import transport_rows_bwd, transport_rows_fwd
from .reference import pyramid_mask


@triton.jit
def _centroid_fwd_kernel(C, off_src, off_dst, n_dst, Ctot, D,
                         BLOCK_J: tl.constexpr, BLOCK_D: tl.constexpr):
    """C[b, off_dst + j] = (C[b, off_src + 2j] + C[b, off_src + 2j + 1]) / 2."""
    j = tl.program_id(0) * BLOCK_J + tl.arange(0, BLOCK_J)
    base = tl.program_id(1).to(tl.int64) * Ctot * D
    cols = tl.arange(0, BLOCK_D)
    m = (j < n_dst)[:, None] & (cols < D)[None, :]
    left = tl.load(C + base + (off_src + 2 * j)[:, None] * D + cols[None, :], mask=m, other=0.0)
    right = tl.load(C + base + (off_src + 2 * j + 1)[:, None] * D + cols[None, :], mask=m, other=0.0)
    tl.store(C + base + (off_dst + j)[:, None] * D + cols[None, :], 0.5 * (left + right), mask=m)


@triton.jit
def _gather_fwd_kernel(P, OUT, T, L, Ctot, D1,
                       BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """OUT[b, t, l] = P[b, off_l + ((t+1) >> l) - 2], or 0 where fewer than two blocks are done."""
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    b = tl.program_id(1).to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    mask_t = t < T
    mask_d = cols < D1
    off = 0
    for level in range(L):
        k = ((t + 1) >> level) - 2
        valid = mask_t & (k >= 0)
        src = P + (b * Ctot + off + k)[:, None] * D1 + cols[None, :]
        f = tl.load(src, mask=valid[:, None] & mask_d[None, :], other=0.0)
        dst = OUT + ((b * T + t) * L + level)[:, None] * D1 + cols[None, :]
        tl.store(dst, f, mask=mask_t[:, None] & mask_d[None, :])
        off += T >> level


@triton.jit
def _gather_bwd_kernel(GOUT, GP, T, L, Ctot, D1,
                       BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """GP[b, off_l + k] += sum of GOUT[b, t, l] over the positions t that read pair k.

    Programs cover aligned runs of BLOCK_T values of t+1. Where a pair's run (2**l
    positions, aligned in t+1) is at least that long, the tile is summed first and
    added once per column; below, each row is added on its own (at most 2**l adds
    land on one address).
    """
    s1 = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)   # s1 = t + 1
    level = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    t = s1 - 1
    cols = tl.arange(0, BLOCK_D)
    mask_d = cols < D1
    off = 0
    for i in range(level):
        off += T >> i
    k = (s1 >> level) - 2
    valid = (t >= 0) & (t < T) & (k >= 0)
    m = valid[:, None] & mask_d[None, :]
    g = tl.load(GOUT + ((b * T + t) * L + level)[:, None] * D1 + cols[None, :], mask=m, other=0.0).to(tl.float32)
    if (1 << level) >= BLOCK_T:
        k0 = ((tl.program_id(0) * BLOCK_T) >> level) - 2   # one pair for the whole tile
        tot = tl.sum(g, axis=0)
        any_valid = tl.sum(valid.to(tl.int32), axis=0) > 0
        tl.atomic_add(GP + (b * Ctot + off + k0) * D1 + cols, tot, mask=mask_d & any_valid)
    else:
        tl.atomic_add(GP + (b * Ctot + off + k)[:, None] * D1 + cols[None, :], g, mask=m)


@triton.jit
def _centroid_bwd_kernel(GA, GB, G, R, off_l, n_l, off_up, n_up, Ctot, D,
                         BLOCK_J: tl.constexpr, BLOCK_D: tl.constexpr):
    """G[b, off_l + j] = GA[r] + GB[r - 1] + G[b, off_up + j // 2] / 2, r = b Ctot + off_l + j.

    GA/GB [R, D] are the transport gradients for the first/second member of each flat pair, so
    row r collects GA of pair r and GB of pair r - 1; the last term is the share of the
    parent centroid one level up (already final: levels run from the top down).
    """
    j = tl.program_id(0) * BLOCK_J + tl.arange(0, BLOCK_J)
    b = tl.program_id(1).to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    mask_j = j < n_l
    mask_d = cols < D
    m = mask_j[:, None] & mask_d[None, :]
    r = b * Ctot + off_l + j
    ga = tl.load(GA + r[:, None] * D + cols[None, :], mask=m & (r < R)[:, None], other=0.0)
    gb = tl.load(GB + (r - 1)[:, None] * D + cols[None, :], mask=m & (r >= 1)[:, None], other=0.0)
    up = j // 2
    gu = tl.load(G + (b * Ctot + off_up + up)[:, None] * D + cols[None, :],
                 mask=m & (up < n_up)[:, None], other=0.0)
    tl.store(G + r[:, None] * D + cols[None, :], ga + gb + 0.5 * gu, mask=m)


def _layout(T: int, L: int) -> tuple[list[int], list[int], int]:
    """Row offsets and counts of each level in the packed buffer, and its total rows."""
    counts = [T >> level for level in range(L)]
    offsets = [sum(counts[:level]) for level in range(L)]
    return offsets, counts, sum(counts)


def _blocks(D: int, block: int | None = None) -> tuple[int, int]:
    """(rows per program, BLOCK_D): few big tiles for the interpreter, ~2k elements on a GPU
    (bigger tiles of the gather take over 200 registers a thread on sm_90).
    `block` (a power of two) overrides the rows per program, for tests."""
    BLOCK_D = triton.next_power_of_2(D)
    budget = 1 << 14 if triton_interpreting() else 1 << 11
    return block or max(1, budget // BLOCK_D), BLOCK_D


def pyramid_fwd(x: torch.Tensor, L: int, block: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, T, D] contiguous -> (features [B, T, L, D+1], packed centroids C [B, Ctot, D])."""
    B, T, D = x.shape
    offsets, counts, Ctot = _layout(T, L)
    C = torch.empty(B, Ctot, D, device=x.device, dtype=x.dtype)
    C[:, :T] = x
    BJ, BD = _blocks(D, block)
    for level in range(1, L):
        if counts[level] == 0:
            break
        grid = (triton.cdiv(counts[level], BJ), B)
        _centroid_fwd_kernel[grid](C, offsets[level - 1], offsets[level], counts[level], Ctot, D,
                                   BLOCK_J=BJ, BLOCK_D=BD)
    flat = C.view(B * Ctot, D)
    P = torch.empty(B * Ctot, D + 1, device=x.device, dtype=x.dtype)
    P[-1].zero_()                       # the last row has no right neighbour; never read
    transport_rows_fwd(flat[:-1], flat[1:], out=P[:-1], block_n=block)
    out = torch.empty(B, T, L, D + 1, device=x.device, dtype=x.dtype)
    BT, BD1 = _blocks(D + 1, block)
    _gather_fwd_kernel[(triton.cdiv(T, BT), B)](P, out, T, L, Ctot, D + 1, BLOCK_T=BT, BLOCK_D=BD1)
    return out, C


def pyramid_bwd(gout: torch.Tensor, C: torch.Tensor, T: int, L: int, block: int | None = None) -> torch.Tensor:
    """Upstream [B, T, L, D+1] and the saved centroids -> gradient of x [B, T, D]."""
    B, Ctot, D = C.shape
    offsets, counts, _ = _layout(T, L)
    gout = gout.contiguous()
    GP = torch.zeros(B * Ctot, D + 1, device=C.device, dtype=torch.float32)
    BT, BD1 = _blocks(D + 1, block)
    _gather_bwd_kernel[(triton.cdiv(T + 1, BT), L, B)](gout, GP, T, L, Ctot, D + 1,
                                                       BLOCK_T=BT, BLOCK_D=BD1)
    flat = C.view(B * Ctot, D)
    GA, GB = transport_rows_bwd(flat[:-1], flat[1:], GP[:-1].to(C.dtype), block)
    G = torch.empty(B, Ctot, D, device=C.device, dtype=C.dtype)
    BJ, BD = _blocks(D, block)
    for level in reversed(range(L)):
        if counts[level] == 0:
            continue
        up = level + 1 if level + 1 < L else level     # the top level has no parent
        n_up = counts[level + 1] if level + 1 < L else 0
        grid = (triton.cdiv(counts[level], BJ), B)
        _centroid_bwd_kernel[grid](GA, GB, G, B * Ctot - 1, offsets[level], counts[level],
                                   offsets[up], n_up, Ctot, D, BLOCK_J=BJ, BLOCK_D=BD)
    return G[:, :T]


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
