"""Branching with continuous and with hard decoders: the select task, a ReLU MLP, a hard gate
trained by a straight-through estimator, a top-1 router, and the transition-width metric.

Book: Part II, "F8 MLPs are continuous decoders". The task returns one of two inputs
depending on the sign of a third, y = a if s > 0 else b, a function with a jump at s = 0.
A ReLU MLP is continuous and piecewise linear, so along s it must pass through the values
between b and a: `transition_width` measures the s-interval over which a model's output
goes from 10% to 90% of the way from b to a (2 ln 9 / k for a logistic of slope k);
`choice_readout` reads outputs next to the boundary as a choice (nearer the right
value, or blended between the two).
`HardGate` and `Top1Router` choose one expert per example in the forward pass and get
their gradient from a soft surrogate (straight-through; {cite}`bengio2013estimating`,
{cite}`fedus2022switch`). The experiments that train a model and measure it with these
functions, and the chapter's precomputed sweep `f8`, are in `phaselib.branching_runs`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .selection import select_weights

__all__ = ["KINDS", "select_targets", "select_batch", "MLP", "straight_through_step",
           "HardGate", "Top1Router", "n_params", "expert_width_for_budget", "make_model",
           "transition_width", "transition_center", "profile", "boundary_pairs", "evaluate",
           "slope_bound", "choice_readout", "MIN_GAP"]

KINDS = ("mlp", "soft_gate", "hard_gate", "top1_router")
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


def _loss(pred, y):
    return (pred, None) if y is None else (pred, F.mse_loss(pred, y))


def _mlp(d_in: int, width: int, depth: int) -> nn.Sequential:
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, 1))


class MLP(nn.Module):
    """A ReLU MLP with `depth` hidden layers of `width`: x [N, d_in] -> (pred [N, 1], loss)."""

    def __init__(self, width: int, depth: int = 2, d_in: int = 3):
        super().__init__()
        for name, v in (("width", width), ("depth", depth), ("d_in", d_in)):
            check_positive_int(name, v)
        self.net = _mlp(d_in, width, depth)

    def forward(self, x, y=None):
        return _loss(self.net(x), y)


class _StraightThroughStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, tau):
        ctx.save_for_backward(z)
        ctx.tau = tau
        return (z > 0).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        sig = torch.sigmoid(z / ctx.tau)
        return g * sig * (1 - sig) / ctx.tau, None


def straight_through_step(z: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """1[z > 0] in the forward pass (exactly 0 or 1); the gradient of sigmoid(z / tau)."""
    check_float_tensor("z", z)
    if not (isinstance(tau, (int, float)) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    return _StraightThroughStep.apply(z, float(tau))


class HardGate(nn.Module):
    """g = step(w . x + c) chooses expert 1 (g = 1) or expert 2: y = g e1(x) + (1 - g) e2(x).

    hard=False is the soft control: g = sigmoid(w . x + c), the same parameters.
    factored=True: the experts read only the values x[:, :2] = (a, b), the gate all of x.
    """

    def __init__(self, expert_width: int, depth: int = 2, d_in: int = 3, hard: bool = True,
                 factored: bool = False):
        super().__init__()
        check_positive_int("expert_width", expert_width)
        self.hard, self.factored = hard, factored
        self.gate = nn.Linear(d_in, 1)
        d_e = d_in - 1 if factored else d_in
        self.experts = nn.ModuleList([_mlp(d_e, expert_width, depth) for _ in range(2)])

    def gate_value(self, x):
        z = self.gate(x)
        return straight_through_step(z) if self.hard else torch.sigmoid(z)

    def forward(self, x, y=None):
        g, v = self.gate_value(x), x[:, :-1] if self.factored else x
        return _loss(g * self.experts[0](v) + (1 - g) * self.experts[1](v), y)


class Top1Router(nn.Module):
    """A linear router scores `n_experts` experts; the forward pass uses exactly one per
    example (one-hot argmax), the backward pass the softmax's gradient (straight-through).

    Every expert is evaluated and the unchosen ones are multiplied by an exact zero: simple
    and exact at this size; a real top-1 layer would compute only the chosen expert.
    factored=True: the experts read only the values x[:, :2], the router all of x.
    """

    def __init__(self, expert_width: int, n_experts: int = 4, depth: int = 2, d_in: int = 3,
                 factored: bool = False):
        super().__init__()
        check_positive_int("expert_width", expert_width)
        check_positive_int("n_experts", n_experts)
        self.factored = factored
        self.router = nn.Linear(d_in, n_experts)
        d_e = d_in - 1 if factored else d_in
        self.experts = nn.ModuleList([_mlp(d_e, expert_width, depth)
                                      for _ in range(n_experts)])

    def weights(self, x):
        """Routing weights [N, n_experts]: one-hot in value."""
        return select_weights(self.router(x), "hard_st")

    def forward(self, x, y=None):
        w = self.weights(x)
        v = x[:, :-1] if self.factored else x
        outs = torch.cat([e(v) for e in self.experts], dim=1)
        return _loss((w * outs).sum(1, keepdim=True), y)


def slope_bound(model: MLP, column: int = 2) -> float:
    """An upper bound on |df/dx_column| for a ReLU MLP: the norm of the first layer's column
    times the spectral norms of the later layers (ReLU's slope is 0 or 1). A rise of
    0.8 |a - b| therefore needs an s-interval of at least 0.8 |a - b| / slope_bound."""
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a phaselib.branching.MLP, got {type(model).__name__}")
    lin = [m for m in model.net if isinstance(m, nn.Linear)]
    bound = lin[0].weight[:, column].norm().item()
    for m in lin[1:]:
        bound *= torch.linalg.matrix_norm(m.weight.detach(), ord=2).item()
    return bound


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def expert_width_for_budget(budget: int, kind: str, n_experts: int = 4, depth: int = 2,
                            d_in: int = 3, factored: bool = False) -> int:
    """The largest expert width whose gate/router model has at most `budget` parameters."""
    check_positive_int("budget", budget)
    best = None
    for w in range(1, budget + 1):
        m = make_model(kind, w, n_experts=n_experts, depth=depth, d_in=d_in,
                       factored=factored)
        if n_params(m) > budget:
            break
        best = w
    if best is None:
        raise ValueError(f"budget={budget} is too small for a {kind} model of depth {depth}")
    return best


def make_model(kind: str, width: int, n_experts: int = 4, depth: int = 2,
               d_in: int = 3, factored: bool = False) -> nn.Module:
    """kind in KINDS; `width` is the MLP's width, or each expert's for the others;
    factored: the experts read only the values (not for the MLP, which has no experts)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "mlp":
        if factored:
            raise ValueError("factored=True needs experts; kind='mlp' has none")
        return MLP(width, depth, d_in)
    if kind == "top1_router":
        return Top1Router(width, n_experts, depth, d_in, factored)
    return HardGate(width, depth, d_in, hard=kind == "hard_gate", factored=factored)


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


@torch.no_grad()
def profile(model: nn.Module, a: float, b: float, s: torch.Tensor) -> torch.Tensor:
    """p(s) = (f(a, b, s) - b) / (a - b) along the grid s [G]: 0 at b, 1 at a."""
    check_float_tensor("s", s, ndim=1, shape_doc="of shape [G]")
    if a == b:
        raise ValueError("a and b must differ (the profile divides by a - b)")
    x = torch.stack([torch.full_like(s, a), torch.full_like(s, b), s], dim=1)
    pred, _ = model(x.to(next(model.parameters()).device))
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
