"""How softmax attention thins out as the context grows: closed forms for the book.

Book: Part II, "F5 Dynamic context collapse". One relevant key whose score beats each of
n distractors by delta keeps the weight w = e^delta / (e^delta + n); the entropy of a
row of attention weights is at most log n, the uniform row's.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_float_tensor

__all__ = ["salience_weight", "distractors_to_drop_below", "attention_entropy", "uniform_entropy",
           "read_accuracy"]


def _as_tensor(name: str, x) -> torch.Tensor:
    if isinstance(x, bool):
        raise TypeError(f"{name} must be a number or a tensor, got {x!r}")
    if isinstance(x, (int, float)):
        return torch.tensor(float(x), dtype=torch.float64)
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.to(torch.float64)
    raise TypeError(f"{name} must be a number or a tensor, got {type(x).__name__}")


def salience_weight(delta, n) -> torch.Tensor:
    """Weight on one key whose score exceeds each of n equal distractors by delta.

    w = e^delta / (e^delta + n) = sigmoid(delta - log n), computed in that stable form.
    delta (any real) and n (>= 0 distractors) broadcast; returns a float tensor.
    """
    d, k = _as_tensor("delta", delta), _as_tensor("n", n)
    if (k < 0).any():
        raise ValueError(f"n counts distractors and must be >= 0, got min {k.min().item()}")
    d, k = torch.broadcast_tensors(d, k.to(d.dtype))
    return torch.sigmoid(d - torch.log(k))  # log 0 = -inf gives weight 1: nothing to compete


def distractors_to_drop_below(delta: float, threshold: float = 0.01) -> int:
    """The smallest number of distractors n with salience_weight(delta, n) < threshold.

    From e^delta / (e^delta + n) < threshold: n > e^delta (1 - threshold) / threshold.
    """
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not math.isfinite(delta):
        raise TypeError(f"delta must be a finite number, got {delta!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
    bound = math.exp(delta) * (1.0 - threshold) / threshold
    n = math.floor(bound) + 1
    # Guard the floor against rounding at the boundary: step to the exact smallest n.
    while n > 0 and salience_weight(delta, n - 1).item() < threshold:
        n -= 1
    while salience_weight(delta, n).item() >= threshold:
        n += 1
    return n


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of attention weights: `[..., Tk] -> [...]`.

    Zero weights (masked keys) contribute zero (0 log 0 = 0). Rows must be non-negative
    and sum to one within 1e-3.
    """
    check_float_tensor("weights", weights, min_ndim=1, shape_doc="of shape [..., Tk]")
    if (weights < 0).any():
        raise ValueError("weights must be non-negative")
    sums = weights.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        raise ValueError(f"each row of weights must sum to one, got sums in "
                         f"[{sums.min().item():.4g}, {sums.max().item():.4g}]")
    logw = torch.log(weights.clamp_min(torch.finfo(weights.dtype).tiny))
    return -(torch.where(weights > 0, weights * logw, torch.zeros_like(weights))).sum(-1)


def uniform_entropy(T: int) -> torch.Tensor:
    """log(t + 1) for t = 0 .. T-1: the largest entropy a causal row at position t can have."""
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    return torch.arange(1, T + 1, dtype=torch.float64).log()


def read_accuracy(w: float, n: int, n_classes: int = 8, distractors: str = "random", *,
                  trials: int = 1000, generator: torch.Generator | None = None) -> float:
    """How often the class of one value key is read off an attention output by argmax.

    One key holds the one-hot vector e_k of a random class k and gets weight w; n
    distractor keys share 1 - w equally and hold the zero vector (distractors="zero") or
    a one-hot vector of a uniformly random class ("random"). The output is
    w e_k + (1 - w)/n * (counts of the distractors' classes); the read is correct when
    its argmax is k. Returns the share of `trials` reads that are correct.
    """
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1:
        raise ValueError(f"w must be a number in [0, 1], got {w!r}")
    for name, v in (("n", n), ("n_classes", n_classes), ("trials", trials)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if distractors not in ("zero", "random"):
        raise ValueError(f"distractors must be 'zero' or 'random', got {distractors!r}")
    k = torch.randint(n_classes, (trials,), generator=generator)
    out = w * torch.nn.functional.one_hot(k, n_classes).double()
    if distractors == "random":
        # Multinomial counts of n draws over the classes, one binomial per class.
        left = torch.full((trials,), float(n), dtype=torch.float64)
        counts = torch.zeros(trials, n_classes, dtype=torch.float64)
        for c in range(n_classes - 1):
            p = torch.full_like(left, 1.0 / (n_classes - c))
            counts[:, c] = torch.binomial(left, p, generator=generator)
            left = left - counts[:, c]
        counts[:, -1] = left
        out = out + (1 - w) / n * counts
    return float((out.argmax(-1) == k).double().mean())
