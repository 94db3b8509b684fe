"""The GPU-kernels chapter's checkers accept right answers, reject wrong ones with a
message, and report stubs as not attempted. The Triton one runs compiled on a GPU and
under the interpreter on a CPU (the `device` fixture skips where neither is possible)."""

import pytest
import torch
import triton
import triton.language as tl

from phaselib.exercises import check_halve_kernel, check_packed_offsets, check_reader_range


def packed_offsets(T, levels):
    return [sum(T >> i for i in range(level)) for level in range(levels)]


def reader_range(k, level, T):
    s = 1 << level
    return (k + 2) * s - 1, min((k + 3) * s - 1, T)


@triton.jit
def _halve_kernel(C, OUT, n_out, n_in, D, BLOCK_J: tl.constexpr, BLOCK_D: tl.constexpr):
    j = tl.program_id(0) * BLOCK_J + tl.arange(0, BLOCK_J)
    b = tl.program_id(1)
    cols = tl.arange(0, BLOCK_D)
    m = (j < n_out)[:, None] & (cols < D)[None, :]
    src = C + b * n_in * D + (2 * j)[:, None] * D + cols[None, :]
    left = tl.load(src, mask=m, other=0.0)
    right = tl.load(src + D, mask=m, other=0.0)
    tl.store(OUT + b * n_out * D + j[:, None] * D + cols[None, :], 0.5 * (left + right), mask=m)


def halve(c):
    c = c.contiguous()
    B, n, D = c.shape
    out = torch.empty(B, n // 2, D, dtype=c.dtype, device=c.device)
    grid = (triton.cdiv(max(n // 2, 1), 16), B)
    _halve_kernel[grid](c, out, n // 2, n, D, BLOCK_J=16, BLOCK_D=triton.next_power_of_2(D))
    return out


def stub(*args):
    raise NotImplementedError


def test_solutions_pass(device):
    assert check_packed_offsets(packed_offsets)
    assert check_reader_range(reader_range)
    assert check_halve_kernel(halve)


def test_stubs_are_reported_not_attempted(device):
    assert check_packed_offsets(stub) is False
    assert check_reader_range(stub) is False
    assert check_halve_kernel(stub) is False


def test_wrong_answers_are_explained(device):
    with pytest.raises(AssertionError, match="packed_offsets"):
        check_packed_offsets(lambda T, L: [l * T for l in range(L)])
    with pytest.raises(AssertionError, match="reader_range"):
        check_reader_range(lambda k, level, T: ((k + 1) << level, (k + 2) << level))   # off by one
    with pytest.raises(AssertionError, match="halve"):
        check_halve_kernel(lambda c: c[:, 0:2 * (c.shape[1] // 2):2])                # no mean
