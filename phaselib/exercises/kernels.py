"""Checkers for Part IV, "GPU kernels".

The Triton checker launches the learner's kernel on CPU tensors, which works only under
the interpreter: TRITON_INTERPRET=1 must be set before triton is imported (the chapter
does it when there is no GPU); on a GPU it runs on CUDA tensors.
"""

from __future__ import annotations

import os

import torch

from ..kernels.pyramid.reference import block_centroids
from ._common import assert_close, attempted, passed

__all__ = ["check_packed_offsets", "check_reader_range", "check_halve_kernel"]


def check_packed_offsets(fn) -> bool:
    """fn(T, levels) -> list of `levels` ints: the first row of each level in the packed
    centroid buffer (level 0 holds T rows, level l holds T >> l)."""
    for T, L in ((1, 1), (3, 1), (8, 3), (100, 6), (257, 8), (20, 8)):
        ok, got = attempted(fn, T, L)
        if not ok:
            return False
        want = [sum(T >> i for i in range(level)) for level in range(L)]
        if list(got) != want:
            raise AssertionError(f"packed_offsets({T}, {L}) should be {want}, got {list(got)}: level l "
                                 f"starts after the rows of levels 0..l-1, which hold T >> i rows each")
    return passed("packed_offsets")


def check_reader_range(fn) -> bool:
    """fn(k, level, T) -> (start, stop): the positions t in [start, stop) whose feature at
    `level` is pair k (blocks k and k+1); the backward pass sums their gradients. An empty
    range (start >= stop) where no position reads the pair."""
    for T in (1, 5, 37, 64):
        for level in range(5):
            idx = ((torch.arange(T) + 1) >> level) - 2
            for k in range(max(1, (T >> level) - 1) + 1):
                ok, got = attempted(fn, k, level, T)
                if not ok:
                    return False
                start, stop = got
                readers = (idx == k).nonzero().flatten().tolist()
                mine = list(range(start, stop))
                if mine != readers:
                    raise AssertionError(
                        f"reader_range(k={k}, level={level}, T={T}) gives positions {mine[:6]}"
                        f"{'...' if len(mine) > 6 else ''}, but the readers are {readers[:6]}"
                        f"{'...' if len(readers) > 6 else ''}: position t reads pair ((t+1) >> level) - 2")
    return passed("reader_range")


def check_halve_kernel(fn) -> bool:
    """fn(c [B, n, D]) -> [B, n // 2, D] computed by a Triton kernel: the means of
    consecutive pairs, (c[:, 2j] + c[:, 2j+1]) / 2, one level of the dyadic reduction."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise AssertionError("no GPU and TRITON_INTERPRET is not 1: set it before importing triton")
    g = torch.Generator().manual_seed(5)
    for B, n, D in ((1, 2, 3), (2, 7, 5), (3, 64, 12), (1, 101, 16)):
        c = torch.randn(B, n, D, generator=g).to(device)
        ok, got = attempted(fn, c)
        if not ok:
            return False
        want = block_centroids(c, 2)[1]
        assert_close(f"halve on shape {(B, n, D)}", got, want, atol=1e-6, rtol=1e-6)
    return passed("halve_kernel")
