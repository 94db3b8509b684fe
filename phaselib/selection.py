"""Selection among scales: blend (softmax), sparse blends (sparsemax, 1.5-entmax), or choose
one (straight-through argmax, Gumbel-softmax).

Book: Part IV, "Selection, the open problem". `select_weights(scores [..., L], kind)` turns
scores into weights over L candidates that sum to one; `ScaleSelector` scores the L
scale candidates of each position from that position's query and returns their weighted
sum. sparsemax {cite}`martins2016sparsemax` and 1.5-entmax {cite}`peters2019sparse` are
written here with their exact sort-based thresholds (and closed-form backward passes),
so the package does not depend on `entmax`; the tests hold them equal to it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .taps import Tap

__all__ = ["KINDS", "sparsemax", "entmax15", "select_weights", "selection_entropy",
           "dyadic_lags", "ScaleSelector"]

KINDS = ("softmax", "sparsemax", "entmax15", "hard_st", "gumbel")


class _Sparsemax(torch.autograd.Function):
    """argmin_p ||p - z||^2 over the simplex: p = max(z - tau, 0), along the last dim."""

    @staticmethod
    def forward(ctx, z):
        zs, _ = torch.sort(z, dim=-1, descending=True)
        k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
        cs = zs.cumsum(-1)
        support = (1 + k * zs > cs).sum(-1, keepdim=True)          # |S| >= 1 always
        tau = (cs.gather(-1, support - 1) - 1) / support.to(z.dtype)
        p = (z - tau).clamp(min=0)
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx, g):
        (p,) = ctx.saved_tensors
        supp = (p > 0).to(g.dtype)
        v = (g * supp).sum(-1, keepdim=True) / supp.sum(-1, keepdim=True)
        return supp * (g - v)


class _Entmax15(torch.autograd.Function):
    """1.5-entmax: p = max(z/2 - tau, 0)^2 with tau found exactly by sorting (Peters et al.)."""

    @staticmethod
    def forward(ctx, z):
        z = z / 2
        z = z - z.max(-1, keepdim=True).values
        zs, _ = torch.sort(z, dim=-1, descending=True)
        rho = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
        mean = zs.cumsum(-1) / rho
        mean_sq = (zs ** 2).cumsum(-1) / rho
        delta = (1 - rho * (mean_sq - mean ** 2)) / rho
        tau = mean - delta.clamp(min=0).sqrt()
        support = (tau <= zs).sum(-1, keepdim=True)
        p = (z - tau.gather(-1, support - 1)).clamp(min=0) ** 2
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx, g):
        (p,) = ctx.saved_tensors
        s = p.sqrt()
        dz = g * s
        dz = dz - (dz.sum(-1, keepdim=True) / s.sum(-1, keepdim=True)) * s
        return dz


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of z [..., L] onto the simplex; exact zeros below a threshold."""
    check_float_tensor("z", z, min_ndim=1, shape_doc="of shape [..., L]")
    return _Sparsemax.apply(z)


def entmax15(z: torch.Tensor) -> torch.Tensor:
    """1.5-entmax of z [..., L]: between softmax (dense) and sparsemax (sparser)."""
    check_float_tensor("z", z, min_ndim=1, shape_doc="of shape [..., L]")
    return _Entmax15.apply(z)


def _one_hot_argmax(y: torch.Tensor) -> torch.Tensor:
    return F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)


def select_weights(scores: torch.Tensor, kind: str = "softmax", tau: float = 1.0,
                   training: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Weights [..., L] over L candidates from scores [..., L]; non-negative, sum to one.

    kind: "softmax" (dense blend), "sparsemax", "entmax15" (sparse blends, exact zeros),
    "hard_st" (one-hot argmax forward, softmax(scores / tau) gradient backward),
    "gumbel" (in training, the one-hot argmax of scores plus Gumbel noise forward and the
    gradient of softmax((scores + noise) / tau) backward; out of training, the plain
    one-hot argmax). `tau` is a temperature that divides the scores for every kind.
    """
    check_float_tensor("scores", scores, min_ndim=1, shape_doc="of shape [..., L]")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not (isinstance(tau, (int, float)) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    z = scores / tau
    if kind == "softmax":
        return torch.softmax(z, -1)
    if kind == "sparsemax":
        return _Sparsemax.apply(z)
    if kind == "entmax15":
        return _Entmax15.apply(z)
    if kind == "gumbel":
        if not training:
            return _one_hot_argmax(z)
        u = torch.rand(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        z = (scores - torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))) / tau
    soft = torch.softmax(z, -1)
    return _one_hot_argmax(z) + (soft - soft.detach())   # exactly one-hot forward, softmax gradient


def selection_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats of weights [..., L] -> [...], with 0 log 0 = 0.

    0 for a one-hot choice, log L for a uniform blend: a measure of (in)decisiveness.
    """
    check_float_tensor("weights", weights, min_ndim=1, shape_doc="of shape [..., L]")
    w = weights.detach().clamp(min=0)
    return -(w * torch.where(w > 0, w.log(), torch.zeros_like(w))).sum(-1)


def dyadic_lags(x: torch.Tensor, n_levels: int) -> torch.Tensor:
    """The vectors 1, 2, 4, ..., 2**(n_levels-1) positions back: [B, T, C] -> [B, T, L, C].

    out[:, t, l] = x[:, t - 2**l], zero where t - 2**l < 0. Strictly causal: position t
    sees only earlier positions. The simplest set of scale candidates for a selector.
    """
    check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, C]")
    check_positive_int("n_levels", n_levels)
    T = x.shape[1]
    lags = []
    for l in range(n_levels):
        d = min(2 ** l, T)
        lags.append(torch.cat([x.new_zeros(x.shape[0], d, x.shape[2]), x[:, : T - d]], 1))
    return torch.stack(lags, 2)


class ScaleSelector(nn.Module):
    """Choose among L scale candidates at each position, from that position's query alone.

    forward(query [B, T, C], candidates [B, T, L, C]) -> (out [B, T, C], weights [B, T, L]):
    scores = Linear(C, L)(query), weights = select_weights(scores, kind), and
    out = sum_l weights[..., l] * candidates[..., l, :]. Position t uses only query[:, t]
    and candidates[:, t], so the selector is causal whenever its candidates are.
    O(T L C) work.
    """

    def __init__(self, n_embd: int, n_levels: int, kind: str = "softmax", tau: float = 1.0):
        super().__init__()
        check_positive_int("n_embd", n_embd)
        check_positive_int("n_levels", n_levels)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.n_embd, self.n_levels, self.kind, self.tau = n_embd, n_levels, kind, tau
        self.score = nn.Linear(n_embd, n_levels)
        nn.init.normal_(self.score.weight, std=0.02)
        nn.init.zeros_(self.score.bias)
        self.tap_weights = Tap()  # [B, T, L]

    def forward(self, query: torch.Tensor, candidates: torch.Tensor):
        check_float_tensor("query", query, ndim=3, shape_doc="of shape [B, T, C]")
        check_float_tensor("candidates", candidates, ndim=4, shape_doc="of shape [B, T, L, C]")
        B, T, C = query.shape
        if C != self.n_embd:
            raise ValueError(f"query must have C = n_embd = {self.n_embd} features, got shape {tuple(query.shape)}")
        if candidates.shape != (B, T, self.n_levels, C):
            raise ValueError(f"candidates must have shape [B, T, L, C] = {(B, T, self.n_levels, C)} "
                             f"(L = n_levels), got {tuple(candidates.shape)}")
        w = select_weights(self.score(query), self.kind, self.tau, self.training)
        w = self.tap_weights(w)
        return torch.einsum("btl,btlc->btc", w, candidates), w

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_levels={self.n_levels}, kind={self.kind!r}, tau={self.tau}"
