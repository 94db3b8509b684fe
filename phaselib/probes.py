"""Linear probes: how well a linear read-out decodes a label from a layer's activations.

Book: Part IV, "Decision slots" (is the early choice still linearly readable from the
slots, from the residual stream?). A probe in the sense of {cite}`alain2017probes`: a
linear classifier trained on frozen features, scored on held-out examples. High held-out
accuracy says the label is linearly present; low accuracy says a *linear* read-out
cannot find it (not that the information is gone).
"""

from __future__ import annotations

import torch

from ._checks import check_float_tensor

__all__ = ["fit_linear_probe", "fit_logistic_probe"]


def fit_linear_probe(features: torch.Tensor, labels: torch.Tensor, *, test_frac: float = 0.3,
                     l2: float = 1e-2, seed: int = 0, return_train: bool = False):
    """Held-out accuracy of a ridge-regression probe: features [N, F], labels [N] long -> float.

    The examples are shuffled with `seed` and split into train (1 - test_frac) and test.
    Features are standardised with the training mean and spread; the probe solves, in
    closed form, min_W ||X W - Y||^2 + l2 * N_train * ||W||^2 with Y the one-hot labels
    (plus a bias), and predicts the argmax of X W. Deterministic; O(N F^2 + F^3).
    With `return_train`, returns (test accuracy, train accuracy).
    """
    check_float_tensor("features", features, ndim=2, shape_doc="of shape [N, F]")
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.long, torch.int32, torch.int64):
        raise TypeError(f"labels must be an integer torch.Tensor of shape [N], got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels must have shape [N] = [{features.shape[0]}] to match features "
                         f"[N, F], got {tuple(labels.shape)}")
    if not 0 < test_frac < 1:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    N = features.shape[0]
    n_test = int(round(N * test_frac))
    if n_test < 1 or N - n_test < 2:
        raise ValueError(f"features has N={N} examples, too few to split with test_frac={test_frac}")
    X = features.detach().to("cpu", torch.float64)
    y = labels.detach().to("cpu").long()
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
    te, tr = perm[:n_test], perm[n_test:]
    mu, sd = X[tr].mean(0), X[tr].std(0).clamp(min=1e-8)
    X = torch.cat([(X - mu) / sd, torch.ones(N, 1, dtype=X.dtype)], 1)
    n_cls = int(y.max()) + 1
    Y = torch.nn.functional.one_hot(y, n_cls).to(X.dtype)
    Xtr = X[tr]
    reg = l2 * len(tr) * torch.eye(X.shape[1], dtype=X.dtype)
    reg[-1, -1] = 0.0  # no penalty on the bias
    W = torch.linalg.solve(Xtr.T @ Xtr + reg, Xtr.T @ Y[tr])
    pred = (X @ W).argmax(1)
    acc_te = (pred[te] == y[te]).double().mean().item()
    if return_train:
        return acc_te, (pred[tr] == y[tr]).double().mean().item()
    return acc_te


def fit_logistic_probe(features: torch.Tensor, labels: torch.Tensor, *,
                       test_frac: float = 0.3, l2: float = 1e-3, seed: int = 0,
                       iters: int = 200) -> tuple[float, float]:
    """(held-out accuracy, train accuracy) of a multinomial logistic-regression probe.

    features [N, F], labels [N] long. The rows are shuffled with `seed` and split into
    train (1 - test_frac) and test, so when each row is one sequence the split is by
    sequence. Features are standardised with the training mean and spread; the probe
    minimises the mean cross-entropy plus l2 * ||W||^2 (no penalty on the bias) by
    full-batch L-BFGS for `iters` iterations from zero, in float64: deterministic. The
    train accuracy is the probe's ceiling on these features: a held-out accuracy far
    below it says the probe overfits, not that the label is absent."""
    check_float_tensor("features", features, ndim=2, shape_doc="of shape [N, F]")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or \
            labels.shape != features.shape[:1]:
        raise TypeError(f"labels must be a long tensor of shape [N] = "
                        f"[{features.shape[0]}], got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)} "
                        f"{tuple(getattr(labels, 'shape', ()))}")
    if not 0 < test_frac < 1:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an int >= 1, got {iters!r}")
    N = features.shape[0]
    n_test = int(round(N * test_frac))
    if n_test < 1 or N - n_test < 2:
        raise ValueError(f"features has N={N} examples, too few to split with "
                         f"test_frac={test_frac}")
    X = features.detach().to("cpu", torch.float64)
    y = labels.detach().to("cpu")
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
    te, tr = perm[:n_test], perm[n_test:]
    mu, sd = X[tr].mean(0), X[tr].std(0).clamp(min=1e-8)
    X = (X - mu) / sd
    n_cls = int(y.max()) + 1
    W = torch.zeros(X.shape[1], n_cls, dtype=X.dtype, requires_grad=True)
    b = torch.zeros(n_cls, dtype=X.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(X[tr] @ W + b, y[tr]) \
            + l2 * W.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        pred = (X @ W + b).argmax(1)
    return ((pred[te] == y[te]).double().mean().item(),
            (pred[tr] == y[tr]).double().mean().item())
