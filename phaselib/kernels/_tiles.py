"""Tile sizes for every kernel, chosen in one place.

A kernel works on [rows, BLOCK_D] register tiles. BLOCK_D is the next power of two of the
row width, capped at MAX_BLOCK_D: a wider row is walked in tiles of MAX_BLOCK_D columns
(every kernel loops over D), so a large D never needs a giant register block. The rows
per program fill a budget of elements: large under the interpreter (each program is a
Python call, so few big tiles run fastest), about 2k elements on a GPU (the transport's
dozen live tiles then fit in registers; the backward keeps more and gets half). A
kernel that spills even so caps its rows per program on a GPU (`max_rows`, measured
with ptxas, see each kernel's launcher).
"""

from __future__ import annotations

import triton

from .._checks import triton_interpreting

__all__ = ["MAX_BLOCK_D", "tile_sizes"]

MAX_BLOCK_D = 128
GPU_BUDGET = 1 << 11
INTERPRETER_BUDGET = 1 << 14


def tile_sizes(rows: int, width: int, *, block: int | None = None,
               budget: int | None = None, max_rows: int | None = None) -> tuple[int, int]:
    """(rows per program, BLOCK_D) for `rows` rows of `width` columns.

    `block` (a power of two) overrides the rows per program, for tests that want many
    programs; `budget` overrides the elements per tile on a GPU; `max_rows` (a power of
    two) caps the rows per program on a GPU (not under the interpreter, where registers
    do not spill, and not when `block` is given)."""
    for name, v in (("block", block), ("max_rows", max_rows)):
        if v is not None and (v < 1 or v & (v - 1)):
            raise ValueError(f"{name} must be a power of two, got {v}")
    block_d = min(triton.next_power_of_2(max(width, 1)), MAX_BLOCK_D)
    if triton_interpreting():
        budget = INTERPRETER_BUDGET
    elif budget is None:
        budget = GPU_BUDGET
    if block is not None:
        return block, block_d
    rows_per = max(1, min(triton.next_power_of_2(max(rows, 1)), budget // block_d))
    if max_rows is not None and not triton_interpreting():
        rows_per = min(rows_per, max_rows)
    return rows_per, block_d
