"""Checkers for Part V, "Seed 000's three predictions, tested"."""

from __future__ import annotations

import torch

from ._common import attempted, passed


def _vote(keys, values, key):
    shown = [v for k, v in zip(keys, values) if k == key]
    if not shown:
        return -1
    counts = {v: shown.count(v) for v in shown}
    best = max(counts.values())
    return min(v for v, c in counts.items() if c == best)


def check_vote(fn) -> bool:
    """`fn(keys, values, key) -> int`: the ideal observer of the in-context task. keys
    and values are equal-length lists of ints (the examples shown so far); the answer is
    the value shown most often with `key`, the smallest such value on a tie, and -1 when
    `key` was never shown."""
    cases = [([0, 1, 0, 0], [3, 2, 3, 5], 0), ([0, 1, 0, 0], [3, 2, 3, 5], 1),
             ([2, 2, 2, 2], [4, 1, 1, 4], 2), ([0, 1], [3, 2], 5), ([], [], 0),
             ([1, 0, 1, 1, 0], [7, 7, 6, 6, 7], 1)]
    for keys, values, key in cases:
        ok, got = attempted(fn, keys, values, key)
        if not ok:
            return False
        want = _vote(keys, values, key)
        if not isinstance(got, int) or isinstance(got, bool):
            raise AssertionError(f"vote{(keys, values, key)}: expected an int, got "
                                 f"{type(got).__name__}")
        if got != want:
            raise AssertionError(f"vote(keys={keys}, values={values}, key={key}) should be "
                                 f"{want}, got {got} (commonest value with that key; "
                                 f"smallest on a tie; -1 if never shown)")
    return passed("vote")


def _loss(logits, actions, rewards, baseline):
    logp = torch.log_softmax(logits, -1).gather(1, actions[:, None])[:, 0]
    return -((rewards - baseline) * logp).mean()


def check_reinforce_loss(fn) -> bool:
    """`fn(logits [B, A], actions [B] long, rewards [B] float, baseline float) -> scalar
    tensor` whose gradient is the REINFORCE estimate with a baseline:
    -mean((r - b) log softmax(logits)[a])."""
    g = torch.Generator().manual_seed(0)
    for b, a, baseline in [(6, 4, 0.0), (16, 10, 0.25), (3, 2, 0.9)]:
        logits = torch.randn(b, a, generator=g)
        actions = torch.randint(a, (b,), generator=g)
        rewards = (torch.rand(b, generator=g) < 0.5).float()
        ok, got = attempted(fn, logits.clone(), actions, rewards, baseline)
        if not ok:
            return False
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise AssertionError(f"expected a scalar tensor, got {type(got).__name__} "
                                 f"{tuple(getattr(got, 'shape', ()))}")
        want = _loss(logits, actions, rewards, baseline)
        if abs(got.item() - want.item()) > 1e-5:
            raise AssertionError(f"B={b}, A={a}, baseline={baseline}: loss should be "
                                 f"{want.item():.5f}, got {got.item():.5f} (is the baseline "
                                 f"subtracted from the reward, and the sign such that "
                                 f"descent raises the log-probability of rewarded actions?)")
    return passed("reinforce_loss")
