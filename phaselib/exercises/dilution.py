"""Checkers for Part II, "F5 Dynamic context collapse"."""

from __future__ import annotations

import math

import torch

from ..attention import causal_mask
from ..dilution import attention_entropy, salience_weight
from ._common import assert_close, attempted, passed

__all__ = ["check_salience_weight", "check_attention_entropy"]


def check_salience_weight(fn) -> bool:
    """fn(delta [N] float64, n [N] float64) -> [N]: the weight e^delta / (e^delta + n)."""
    cases = {
        "small values": ([0.0, 1.0, 2.5, -1.0], [1.0, 3.0, 10.0, 2.0]),
        "no distractors": ([0.0, 4.0], [0.0, 0.0]),
        "long contexts": ([3.0, 6.0, 9.0], [1e3, 1e5, 1e7]),
        "large advantages (e^delta overflows)": ([800.0, 1000.0], [10.0, 1e6]),
    }
    for name, (d, n) in cases.items():
        d = torch.tensor(d, dtype=torch.float64)
        n = torch.tensor(n, dtype=torch.float64)
        ok, got = attempted(fn, d, n)
        if not ok:
            return False
        assert_close(f"salience weight on {name}", got, salience_weight(d, n), atol=1e-9, rtol=1e-7)
    # One relevant key among n equal distractors is what a softmax computes.
    scores = torch.zeros(51, dtype=torch.float64)
    scores[0] = 2.0
    assert_close("salience weight against a real softmax (delta 2, 50 distractors)",
                 fn(torch.tensor([2.0], dtype=torch.float64), torch.tensor([50.0], dtype=torch.float64)),
                 torch.softmax(scores, 0)[:1], atol=1e-9)
    return passed("salience_weight")


def check_attention_entropy(fn) -> bool:
    """fn(weights [..., Tk]) -> [...]: entropy in nats of each row, 0 log 0 = 0."""
    g = torch.Generator().manual_seed(0)
    T = 9
    causal = causal_mask(T)
    cases = {
        "dense rows": torch.softmax(torch.randn(2, 3, 7, generator=g), -1),
        "causal rows (zeros above the diagonal)": torch.softmax(
            torch.randn(2, T, T, generator=g).masked_fill(~causal, float("-inf")), -1),
        "one-hot rows": torch.eye(5),
    }
    for name, w in cases.items():
        ok, got = attempted(fn, w)
        if not ok:
            return False
        assert_close(f"entropy of {name}", got, attention_entropy(w), atol=1e-5)
    uniform = causal.float() / causal.float().sum(-1, keepdim=True)
    want = torch.log(torch.arange(1, T + 1, dtype=torch.float32))
    assert_close("entropy of uniform causal rows (should be log(t + 1))", fn(uniform), want, atol=1e-5)
    assert math.isclose(float(fn(torch.tensor([1.0, 0.0]))), 0.0, abs_tol=1e-7), \
        "a row with all weight on one key has entropy 0 (is 0 log 0 giving NaN?)"
    return passed("attention_entropy")
