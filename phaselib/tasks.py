"""Synthetic sequence tasks, generated on the fly from a seeded generator.

Each returns `(x, y)` long tensors of shape [B, T] for next-token training; positions
whose target cannot be known from the past carry the target -1 (ignored by the loss).
New generators are appended at the end of this file, one function each.
"""

from __future__ import annotations

import torch

def induction_batch(batch: int, n: int, vocab: int, *, generator: torch.Generator | None = None,
                    device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random sequence of n tokens, then the same n tokens again: [B, 2n-1] inputs.

    The first half is unpredictable (targets -1); in the second half each next token is
    the one that followed the current token's earlier occurrence, the pattern an
    "induction head" learns. Tokens are drawn without repetition inside a sequence when
    vocab >= n, so the earlier occurrence is unique.
    """
    if vocab < 2 or n < 2:
        raise ValueError(f"induction_batch needs vocab >= 2 and n >= 2, got vocab={vocab}, n={n}")
    if vocab >= n:
        first = torch.rand(batch, vocab, generator=generator).argsort(-1)[:, :n]
    else:
        first = torch.randint(vocab, (batch, n), generator=generator)
    seq = torch.cat([first, first], dim=1)
    x, y = seq[:, :-1].clone(), seq[:, 1:].clone()
    y[:, : n - 1] = -1
    return x.to(device), y.to(device)
