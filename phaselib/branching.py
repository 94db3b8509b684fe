"""Branching with continuous and with hard decoders: the select task, a ReLU MLP, a hard gate
trained by a straight-through estimator, top-1 and Switch-style routers, and the
transition-width metric.

Book: Part II, "F8 MLPs are continuous decoders". The task returns one of two inputs
depending on the sign of a third, y = a if s > 0 else b, a function with a jump at s = 0.
A ReLU MLP is continuous and piecewise linear, so along s it must pass through the values
between b and a: `transition_width` measures the s-interval over which a model's output
goes from 10% to 90% of the way from b to a (2 ln 9 / k for a logistic of slope k);
`choice_readout` reads outputs next to the boundary as a choice (nearer the right
value, or blended between the two).
The decoders (MLP, soft and hard gates, the top-1 and Switch-style routers) are in
`phaselib.branching_models`, re-exported here. The experiments that train a model and
measure it with these functions, and the chapter's precomputed sweep `f8`, are in
`phaselib.branching_runs`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .branching_models import (KINDS, MLP, HardGate, SwitchRouter, Top1Router,
                               expert_width_for_budget, make_model, n_params,
                               slope_bound, straight_through_step)

__all__ = ["KINDS", "select_targets", "select_batch", "MLP", "straight_through_step",
           "HardGate", "Top1Router", "SwitchRouter", "n_params",
           "expert_width_for_budget", "make_model", "transition_width",
           "transition_center", "profile", "boundary_pairs", "evaluate", "slope_bound",
           "choice_readout", "route_purity", "rise_where_choice_holds", "MIN_GAP"]

EPS = (1.0, 0.3, 0.1, 0.03, 0.01)   # half-widths of the test bands |s| < eps
MIN_GAP = 0.5                       # choice_readout scores points with |a - b| >= this


def select_targets(x: torch.Tensor) -> torch.Tensor:
    """y = a where s > 0, else b, for x [N, 3] = (a, b, s) -> y [N, 1]."""
    check_float_tensor("x", x, ndim=2, shape_doc="of shape [N, 3] = (a, b, s)")
    if x.shape[1] != 3:
        raise ValueError(f"x must have shape [N, 3] = (a, b, s), got {tuple(x.shape)}")
    return torch.where(x[:, 2:] > 0, x[:, :1], x[:, 1:2])


def select_batch(n: int, generator: torch.Generator | None = None, s_range: float = 1.0,
                 device=None, s_min: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [n, 3], y [n, 1]): a, b ~ U(-1, 1), |s| ~ U(s_min, s_range) with a random
    sign, y = select_targets(x). s_min > 0 leaves a margin around the boundary s = 0."""
    check_positive_int("n", n)
    if not (isinstance(s_range, (int, float)) and s_range > 0):
        raise ValueError(f"s_range must be a positive number, got {s_range!r}")
    if not (isinstance(s_min, (int, float)) and 0 <= s_min < s_range):
        raise ValueError(f"s_min must be a number in [0, s_range), got {s_min!r}")
    x = torch.rand(n, 3, generator=generator) * 2 - 1
    if s_min == 0:
        x[:, 2] *= s_range
    else:
        x[:, 2] = torch.sign(x[:, 2]) * (s_min + x[:, 2].abs() * (s_range - s_min))
    x = x.to(device) if device is not None else x
    return x, select_targets(x)


def _as_np(name, v):
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().double().numpy()
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {v.shape}")
    return v


def _last_crossing(s, p, level):
    """The s where p last rises through `level` (linear interpolation); None if never."""
    below = np.flatnonzero(p <= level)
    if len(below) == 0 or below[-1] == len(p) - 1:
        return None, None
    i = below[-1]
    return s[i] + (level - p[i]) / (p[i + 1] - p[i]) * (s[i + 1] - s[i]), i


def transition_width(s, p, low: float = 0.1, high: float = 0.9) -> float:
    """Width of the rise of p(s) from `low` to `high`: s_high - s_low, with s_low where p
    last rises through `low` and s_high where it next reaches `high` (linear interpolation
    on the grid s). inf when p never goes from below `low` to `high`. For p = sigmoid(k s)
    it is 2 ln 9 / k; for a step sampled on a grid of spacing h it is 0.8 h.
    """
    s, p = _as_np("s", s), _as_np("p", p)
    if s.shape != p.shape or len(s) < 2 or not (np.diff(s) > 0).all():
        raise ValueError("s must be an increasing 1-D grid of at least 2 points and p the "
                         f"same shape; got {s.shape} and {p.shape}")
    if not 0 < low < high < 1:
        raise ValueError(f"need 0 < low < high < 1, got low={low}, high={high}")
    s_lo, i = _last_crossing(s, p, low)
    if s_lo is None:
        return math.inf
    above = np.flatnonzero(p[i + 1:] >= high)
    if len(above) == 0:
        return math.inf
    j = i + 1 + above[0]
    s_hi = s[j - 1] + (high - p[j - 1]) / (p[j] - p[j - 1]) * (s[j] - s[j - 1])
    return float(s_hi - s_lo)


def transition_center(s, p) -> float:
    """The s where p last rises through 1/2 (the model's decision boundary); nan if never."""
    c, _ = _last_crossing(_as_np("s", s), _as_np("p", p), 0.5)
    return math.nan if c is None else float(c)


def choice_readout(pred: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                   a_chosen: torch.Tensor, min_gap: float = MIN_GAP) -> dict:
    """The output read as a choice: where between the two values does it land?

    pred, a, b [N] or [N, 1], a_chosen [N] bool (the target is a). With p = (pred -
    other) / (target - other), 1 at the target and 0 at the other value: "right" is the
    share of points with p > 1/2 (nearer the target: the choice is right), "blend" the
    share with 1/4 < p < 3/4 (in the middle half between the two: neither chosen).
    Only points with |a - b| >= `min_gap` count, where the two are far enough apart
    to tell; "n" is how many."""
    pred, a, b = (t.reshape(-1) for t in (pred, a, b))
    a_chosen = a_chosen.reshape(-1)
    if not (pred.shape == a.shape == b.shape == a_chosen.shape):
        raise ValueError(f"pred, a, b and a_chosen must hold one value per point, got "
                         f"{[tuple(t.shape) for t in (pred, a, b, a_chosen)]}")
    keep = (a - b).abs() >= min_gap
    if not keep.any():
        raise ValueError(f"no point has |a - b| >= min_gap={min_gap}")
    target = torch.where(a_chosen, a, b)[keep]
    other = torch.where(a_chosen, b, a)[keep]
    p = (pred[keep] - other) / (target - other)
    return {"right": float((p > 0.5).float().mean()),
            "blend": float(((p > 0.25) & (p < 0.75)).float().mean()),
            "n": int(keep.sum())}


def _along_s(model: nn.Module, a: float, b: float, s: torch.Tensor) -> torch.Tensor:
    """The inputs (a, b, s_g) for each point s_g of the grid s, on the model's device."""
    x = torch.stack([torch.full_like(s, a), torch.full_like(s, b), s], dim=1)
    return x.to(next(model.parameters()).device)


@torch.no_grad()
def profile(model: nn.Module, a: float, b: float, s: torch.Tensor) -> torch.Tensor:
    """p(s) = (f(a, b, s) - b) / (a - b) along the grid s [G]: 0 at b, 1 at a."""
    check_float_tensor("s", s, ndim=1, shape_doc="of shape [G]")
    if a == b:
        raise ValueError("a and b must differ (the profile divides by a - b)")
    pred, _ = model(_along_s(model, a, b, s))
    return (pred[:, 0].cpu() - b) / (a - b)


def boundary_pairs(n: int = 16, seed: int = 12345) -> list[tuple[float, float]]:
    """n fixed (a, b) pairs with |a - b| >= 0.5, the same for every model."""
    g, out = torch.Generator().manual_seed(seed), []
    while len(out) < n:
        a, b = (torch.rand(2, generator=g) * 2 - 1).tolist()
        if abs(a - b) >= 0.5:
            out.append((a, b))
    return out


@torch.no_grad()
def evaluate(model: nn.Module, n_test: int = 4096, eps=EPS, n_pairs: int = 16,
             grid: int = 4001, s_max: float = 0.5) -> dict:
    """{"mse": {eps: test MSE on |s| < eps}, "choice": {eps: `choice_readout` on the
    same points}, "transition": median transition width,
    "centre": median |transition_center|, "widths": per pair, "grid_step"}, over fixed
    (a, b) pairs (`boundary_pairs`) on a grid of `grid` points in [-s_max, s_max].
    Seeded: the same test sets for every model."""
    model.eval()
    dev = next(model.parameters()).device
    out = {"mse": {}, "choice": {}, "grid_step": 2 * s_max / (grid - 1)}
    for k, e in enumerate(eps):
        x, y = select_batch(n_test, torch.Generator().manual_seed(1000 + k), e, dev)
        pred = model(x)[0]
        out["mse"][str(e)] = F.mse_loss(pred, y).item()
        out["choice"][str(e)] = choice_readout(pred, x[:, 0], x[:, 1], x[:, 2] > 0)
    s = torch.linspace(-s_max, s_max, grid)
    widths, centres = [], []
    for a, b in boundary_pairs(n_pairs):
        p = profile(model, a, b, s).numpy()
        widths.append(transition_width(s, p))
        centres.append(transition_center(s, p))
    out["transition"] = float(np.median(widths))
    out["centre"] = float(np.nanmedian(np.abs(centres))) if not np.isnan(centres).all() \
        else math.nan
    out["widths"] = widths
    return out


def route_purity(choice: torch.Tensor, s: torch.Tensor) -> float:
    """How far a router's choice follows the condition: each expert is credited with the
    examples on the side of s = 0 (s > 0, or not) where most of its own examples lie,
    and the share credited is returned. choice [N, n_experts] one-hot (a router's
    `choice(x)`), s [N]. 1 when every expert's examples lie on one side; a choice that
    ignores s gives about one half (a little more on a finite sample)."""
    check_float_tensor("choice", choice, ndim=2, shape_doc="of shape [N, n_experts]")
    check_float_tensor("s", s, ndim=1, shape_doc="of shape [N]")
    if choice.shape[0] == 0 or s.shape[0] != choice.shape[0]:
        raise ValueError(f"s must have shape [N] with N = choice's rows >= 1, got s "
                         f"{tuple(s.shape)} and choice {tuple(choice.shape)}")
    if not bool(((choice == 0) | (choice == 1)).all() and (choice.sum(1) == 1).all()):
        raise ValueError("choice must be one-hot: one 1 per row, zeros elsewhere")
    if not bool(torch.isfinite(s).all()):
        raise ValueError("s must be finite (a NaN has no side of s = 0)")
    pos = (s > 0).to(choice.dtype)[:, None]
    on_pos, on_neg = (choice * pos).sum(0), (choice * (1 - pos)).sum(0)
    return (torch.maximum(on_pos, on_neg).sum() / choice.shape[0]).item()


@torch.no_grad()
def rise_where_choice_holds(model: nn.Module, a: float, b: float,
                            s: torch.Tensor) -> float:
    """How much of a router's profile along s (`profile`) moves where its choice of
    expert holds: the profile's total variation over the steps of the grid s [G] whose
    two ends choose the same expert, over its total variation. 0 when the output moves
    only where the choice changes (a one-hot router's switch); near 1 when it moves
    while the same expert stays chosen (a weight that follows s). `model` must have
    `choice(x)` (a router); the variation must not be zero."""
    if not hasattr(model, "choice"):
        raise TypeError(f"model must be a router with choice(x), got "
                        f"{type(model).__name__}")
    check_float_tensor("s", s, ndim=1, shape_doc="of shape [G]")
    if s.shape[0] < 2 or not bool((s[1:] > s[:-1]).all()):
        raise ValueError(f"s must be an increasing grid of at least 2 points, got shape "
                         f"{tuple(s.shape)}")
    p = profile(model, a, b, s)
    c = model.choice(_along_s(model, a, b, s)).argmax(1).cpu()
    step = (p[1:] - p[:-1]).abs()
    total = step.sum().item()
    if total == 0:
        raise ValueError("the profile does not move along s: nothing to split")
    return step[c[1:] == c[:-1]].sum().item() / total
