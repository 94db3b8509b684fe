"""Triton kernels for the selection among the levels, forward and backward, without
atomics; the twin is `reference.py` beside this file.

Book: Part IV, "GPU kernels", section "Not materialising what is selected". With the
levels' tables packed in `table` [B, R, C] (`reference.py`), the forward is

    y[b, t] = sum over l of  w[b, t, l] * table[b, offsets[l] + ((t + 1) >> l)],

one pass that reads w and the rows (a coarse level's row is the same for a whole tile of
positions, so it is read once from memory and then from cache) and writes y: no
[B, T, L, C] tensor, and the gather is inside the sum. The backward has two kernels:

* `_select_bwd_w_kernel`: gw[b, t, l] = <gy[b, t], the row position t read at level l>;
* `_select_bwd_table_kernel`: one program per packed row (and batch, and tile of
  columns) sums w[b, t, l] gy[b, t] over the positions that read it. Those positions
  are one aligned run, t = j 2^l - 1 ... (j + 1) 2^l - 2, so each row's gradient is
  written by one program, in a fixed order: no atomics, and two runs agree bit for bit.

All arithmetic is fp32 in registers, whatever the dtype in memory.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._launch import launch_device
from .._tiles import tile_sizes
from .reference import check_select_args

__all__ = ["select_triton", "SelectFunction"]


@triton.jit
def _select_fwd_kernel(W, TAB, Y, T, L, R, C,
                       BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """Positions pid*BLOCK_T .. of sequence b: y = sum over l of w[., l] * row (level l's
    table starts where level l - 1's (T >> (l-1)) + 1 rows end)."""
    b = tl.program_id(1).to(tl.int64)
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    mt = t < T
    u = t + 1
    cols = tl.arange(0, BLOCK_C)
    for c0 in range(0, C, BLOCK_C):
        c = c0 + cols
        m = mt[:, None] & (c < C)[None, :]
        acc = tl.zeros([BLOCK_T, BLOCK_C], dtype=tl.float32)
        off = T * 0                               # where level l's table starts
        for level in range(L):
            row = off + (u >> level)
            wl = tl.load(W + (b * T + t) * L + level, mask=mt, other=0.0).to(tl.float32)
            v = tl.load(TAB + (b * R + row)[:, None] * C + c[None, :], mask=m,
                        other=0.0).to(tl.float32)
            acc += wl[:, None] * v
            off += (T >> level) + 1
        tl.store(Y + (b * T + t)[:, None] * C + c[None, :],
                 acc.to(Y.dtype.element_ty), mask=m)


@triton.jit
def _select_bwd_w_kernel(GY, TAB, GW, T, L, R, C,
                         BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """gw[b, t, l] = sum over c of gy[b, t, c] * the row t reads at level l."""
    b = tl.program_id(1).to(tl.int64)
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    mt = t < T
    u = t + 1
    cols = tl.arange(0, BLOCK_C)
    off = T * 0                                   # where level l's table starts
    for level in range(L):
        row = off + (u >> level)
        off += (T >> level) + 1
        acc = tl.zeros([BLOCK_T], dtype=tl.float32)
        for c0 in range(0, C, BLOCK_C):
            c = c0 + cols
            m = mt[:, None] & (c < C)[None, :]
            g = tl.load(GY + (b * T + t)[:, None] * C + c[None, :], mask=m,
                        other=0.0).to(tl.float32)
            v = tl.load(TAB + (b * R + row)[:, None] * C + c[None, :], mask=m,
                        other=0.0).to(tl.float32)
            acc += tl.sum(g * v, axis=1)
        tl.store(GW + (b * T + t) * L + level, acc.to(GW.dtype.element_ty), mask=mt)


@triton.jit
def _select_bwd_table_kernel(GY, W, GTAB, T, L, R, C,
                             BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """Packed row r of sequence b, columns of tile pid 2: the sum of w[b, t, l] gy[b, t]
    over the run of positions that read it (none for rows past T)."""
    r = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    c = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    mc = c < C
    off = r * 0                                   # the level of row r and where it starts
    level = r * 0
    end = r * 0
    for i in range(L):
        end += (T >> i) + 1
        past = r >= end
        off += tl.where(past, (T >> i) + 1, 0)
        level += tl.where(past, 1, 0)
    j = r - off
    t_lo = tl.maximum((j << level) - 1, 0)
    t_hi = tl.minimum(((j + 1) << level) - 1, T)
    acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    for t0 in range(t_lo, t_hi, BLOCK_T):
        t = t0 + tl.arange(0, BLOCK_T)
        mt = t < t_hi
        wl = tl.load(W + (b * T + t) * L + level, mask=mt, other=0.0).to(tl.float32)
        g = tl.load(GY + (b * T + t)[:, None] * C + c[None, :],
                    mask=mt[:, None] & mc[None, :], other=0.0).to(tl.float32)
        acc += tl.sum(wl[:, None] * g, axis=0)
    tl.store(GTAB + (b * R + r) * C + c, acc.to(GTAB.dtype.element_ty), mask=mc)


class SelectFunction(torch.autograd.Function):
    """Autograd for `select_triton`: w [B, T, L], table [B, R, C] contiguous, one
    dtype; both passes are Triton kernels."""

    @staticmethod
    def forward(ctx, w, table, block_t=None):
        B, T, L = w.shape
        R, C = table.shape[1], table.shape[2]
        y = torch.empty(B, T, C, device=w.device, dtype=table.dtype)
        BLOCK_T, BLOCK_C = tile_sizes(T, C, block=block_t)
        with launch_device(w):
            _select_fwd_kernel[(triton.cdiv(T, BLOCK_T), B)](
                w, table, y, T, L, R, C, BLOCK_T=BLOCK_T, BLOCK_C=BLOCK_C)
        ctx.save_for_backward(w, table)
        ctx.block_t = block_t
        return y

    @staticmethod
    def backward(ctx, gy):
        w, table = ctx.saved_tensors
        gy = gy.contiguous()
        B, T, L = w.shape
        R, C = table.shape[1], table.shape[2]
        BLOCK_T, BLOCK_C = tile_sizes(T, C, block=ctx.block_t)
        gw = torch.empty_like(w)
        gtab = torch.empty_like(table)
        with launch_device(w):
            _select_bwd_w_kernel[(triton.cdiv(T, BLOCK_T), B)](
                gy, table, gw, T, L, R, C, BLOCK_T=BLOCK_T, BLOCK_C=BLOCK_C)
            _select_bwd_table_kernel[(R, B, triton.cdiv(C, BLOCK_C))](
                gy, w, gtab, T, L, R, C, BLOCK_T=BLOCK_T, BLOCK_C=BLOCK_C)
        return gw, gtab, None


def select_triton(w: torch.Tensor, table: torch.Tensor,
                  block_t: int | None = None) -> torch.Tensor:
    """w [B, T, L], table [B, R, C] -> [B, T, C], equal to `select_reference` to fp32
    rounding. w is cast to the table's dtype (differentiably); `block_t` (positions per
    program, a power of two) is for tests that want several programs."""
    check_select_args(w, table)
    w = w.to(table.dtype).contiguous()
    return SelectFunction.apply(w, table.contiguous(), block_t)
