"""Checkers for Part IV, "The phase-transport language model"."""

from __future__ import annotations

import math

import torch

from ..attention import causal_mask
from ._common import attempted, passed

__all__ = ["check_unigram_entropy", "check_near_field_mask", "check_sliding_windows"]


def _unigram_entropy(ids: torch.Tensor, vocab_size: int) -> float:
    p = torch.bincount(ids, minlength=vocab_size).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def check_unigram_entropy(fn) -> bool:
    """fn(ids [N] long, vocab_size) -> float: the entropy in nats of the token frequencies."""
    g = torch.Generator().manual_seed(0)
    cases = {"uniform over 4": (torch.arange(4).repeat(25), 4),
             "one token only": (torch.zeros(10, dtype=torch.long), 3),
             "skewed, unused ids": (torch.randint(5, (500,), generator=g) ** 2 % 7, 9)}
    for name, (ids, V) in cases.items():
        ok, got = attempted(fn, ids, V)
        if not ok:
            return False
        want = _unigram_entropy(ids, V)
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise AssertionError(f"unigram_entropy on {name}: expected a number, got {type(got).__name__}")
        if math.isnan(got):
            raise AssertionError(f"unigram_entropy on {name} is NaN: an unused token has p = 0, "
                                 "and 0 * log 0 must count as 0")
        if abs(got - want) > 1e-6:
            hint = " (natural log, not log2?)" if abs(got - want / math.log(2)) < 1e-6 else ""
            raise AssertionError(f"unigram_entropy on {name}: expected {want:.6f} nats, got {got:.6f}{hint}")
    return passed("unigram_entropy")


def check_near_field_mask(fn) -> bool:
    """fn(T, w) -> [T, T] bool, True where query i may see key j: the last w tokens, itself included."""
    for T, w in ((1, 1), (5, 1), (6, 3), (9, 4), (4, 10)):
        ok, got = attempted(fn, T, w)
        if not ok:
            return False
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool or got.shape != (T, T):
            raise AssertionError(f"near_field_mask({T}, {w}) must be a bool tensor of shape {(T, T)}, got "
                                 f"{getattr(got, 'dtype', type(got).__name__)} {tuple(getattr(got, 'shape', ()))}")
        want = causal_mask(T, w)
        if not torch.equal(got, want):
            i, j = (got != want).nonzero()[0].tolist()
            raise AssertionError(f"near_field_mask({T}, {w}) is wrong at query {i}, key {j}: it should be "
                                 f"{bool(want[i, j])} (query i sees keys i - w < j <= i)")
    return passed("near_field_mask")


def check_sliding_windows(fn) -> bool:
    """fn(n, block, stride) -> list of (start, length, first_scored): windows that score each
    target 1 .. n-1 of an n-token split exactly once, every scored target after the first
    window with at least block - stride tokens of context. Any valid plan passes."""
    for n, block, stride in ((2, 4, 4), (10, 4, 4), (10, 4, 2), (100, 16, 5), (65, 8, 1), (33, 64, 16)):
        ok, got = attempted(fn, n, block, stride)
        if not ok:
            return False
        seen = []
        for start, length, first in got:
            if not (1 <= length <= block and 0 <= first < length and start >= 0 and start + length <= n - 1):
                raise AssertionError(f"sliding_windows({n}, {block}, {stride}): window {(start, length, first)} "
                                     f"is invalid (it must read tokens [start, start + length) with "
                                     f"1 <= length <= block and predict tokens up to index n - 1)")
            targets = range(start + 1 + first, start + 1 + length)
            if start > 0 and first < block - stride:
                raise AssertionError(f"sliding_windows({n}, {block}, {stride}): window starting at {start} "
                                     f"scores its position {first}, which has only {first + 1} tokens of "
                                     f"context; score only its last {stride} positions")
            seen += targets
        missing = sorted(set(range(1, n)) - set(seen))
        twice = sorted({t for t in seen if seen.count(t) > 1})
        if missing or twice or len(seen) != n - 1:
            raise AssertionError(f"sliding_windows({n}, {block}, {stride}): targets never scored "
                                 f"{missing[:5]}, scored more than once {twice[:5]}; each of 1 .. {n - 1} "
                                 "must be scored exactly once")
    return passed("sliding_windows")
