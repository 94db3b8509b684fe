"""The decoders of chapter F8: a ReLU MLP, a soft gate, a hard gate trained by a
straight-through estimator, a top-1 router, and a Switch-style router, built to a
parameter budget.

Book: Part II, "F8 MLPs are continuous decoders". `make_model(kind, width)` builds one
of `KINDS`; `expert_width_for_budget` finds the expert width that matches an MLP's
parameter count; `slope_bound` bounds how steeply an MLP can rise along its input.
`HardGate` and `Top1Router` choose one expert per example in the forward pass and get
their gradient from a soft surrogate (straight-through; {cite}`bengio2013estimating`).
`SwitchRouter` chooses one expert as Switch Transformers do {cite}`fedus2022switch`: the
chosen expert's output scaled by its softmax probability, which carries the router's
gradient, optionally with Switch's load-balancing loss. The task and the measurements
are in `phaselib.branching` (which re-exports these names).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .selection import select_weights

__all__ = ["KINDS", "MLP", "straight_through_step", "HardGate", "Top1Router",
           "SwitchRouter", "n_params", "expert_width_for_budget", "make_model",
           "slope_bound"]

KINDS = ("mlp", "soft_gate", "hard_gate", "top1_router", "switch_router")


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

    def choice(self, x):
        """The expert each example uses, one-hot [N, n_experts] (no gradient)."""
        with torch.no_grad():
            z = self.router(x)
            return F.one_hot(z.argmax(-1), z.shape[-1]).to(z.dtype)

    def forward(self, x, y=None):
        w = self.weights(x)
        v = x[:, :-1] if self.factored else x
        outs = torch.cat([e(v) for e in self.experts], dim=1)
        return _loss((w * outs).sum(1, keepdim=True), y)


class SwitchRouter(Top1Router):
    """Top-1 routing as Switch Transformers do it {cite}`fedus2022switch`: the expert of
    the highest score, its output multiplied by its softmax probability p_i(x). The
    router's gradient is the gradient of that product, not a surrogate; the weight on
    the chosen expert is p_i(x) < 1, so the output is continuous in x wherever the
    choice does not change, and jumps where it does.

    balance > 0 adds Switch's load-balancing loss to the training loss (`balance_loss`):
    balance * n_experts * sum_i f_i P_i, with f_i the share of the batch sent to expert
    i and P_i the batch's mean probability of i (Switch Transformers use 0.01). It equals
    `balance` when the batch is sent evenly over the experts (f uniform), and grows as
    the batch crowds onto experts the router also rates high. balance = 0 (the
    default): no such loss."""

    def __init__(self, expert_width: int, n_experts: int = 4, depth: int = 2,
                 d_in: int = 3, factored: bool = False, balance: float = 0.0):
        super().__init__(expert_width, n_experts, depth, d_in, factored)
        if not (isinstance(balance, (int, float)) and not isinstance(balance, bool)
                and math.isfinite(balance) and balance >= 0):
            raise ValueError(f"balance must be a finite number >= 0, got {balance!r}")
        self.balance = float(balance)

    def weights(self, x):
        """Routing weights [N, n_experts]: the chosen expert's softmax probability,
        zero elsewhere."""
        p = torch.softmax(self.router(x), -1)
        return p * F.one_hot(p.argmax(-1), p.shape[-1]).to(p.dtype)

    def balance_loss(self, x):
        """n_experts * sum_i f_i P_i over the batch x (not scaled by `balance`): f_i,
        the share of x whose chosen expert is i, carries no gradient; P_i, the mean
        softmax probability of i, does. 1 when f is uniform."""
        p = torch.softmax(self.router(x), -1)
        f = F.one_hot(p.argmax(-1), p.shape[-1]).to(p.dtype).mean(0)
        return p.shape[-1] * (f * p.mean(0)).sum()

    def forward(self, x, y=None):
        pred, loss = super().forward(x, y)
        if loss is not None and self.balance > 0:
            loss = loss + self.balance * self.balance_loss(x)
        return pred, loss


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
               d_in: int = 3, factored: bool = False,
               balance: float = 0.0) -> nn.Module:
    """kind in KINDS; `width` is the MLP's width, or each expert's for the others;
    factored: the experts read only the values (not for the MLP, which has no experts);
    balance: the Switch router's load-balancing weight (`SwitchRouter`; that kind
    only)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if balance and kind != "switch_router":
        raise ValueError(f"balance is the load-balancing weight of kind='switch_router', "
                         f"got balance={balance!r} for kind={kind!r}")
    if kind == "mlp":
        if factored:
            raise ValueError("factored=True needs experts; kind='mlp' has none")
        return MLP(width, depth, d_in)
    if kind == "top1_router":
        return Top1Router(width, n_experts, depth, d_in, factored)
    if kind == "switch_router":
        return SwitchRouter(width, n_experts, depth, d_in, factored, balance)
    return HardGate(width, depth, d_in, hard=kind == "hard_gate", factored=factored)
