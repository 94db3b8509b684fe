"""Rank collapse: a stack of pure attention layers drives its tokens to one row.

Book: Part II, "F6 In-place evolution", after {cite}`dong2021attention`. Their residual
res(X) = X - 1 x^T, with x chosen to make it smallest, is the distance of X [n, d] to
the nearest matrix of identical rows (rank one, "token uniformity"). In the Frobenius
norm the best x is the mean row, so `rank_one_residual` returns
||X - 1 mean(X)^T||_F / ||X||_F. Their theorem bounds res after L pure attention layers
by a constant to the power (3^L - 1)/2 times ||res(X)||^(3^L) (composite l1/l-inf norm):
the log of the residual can triple per layer, a doubly exponential rate.
`AttentionStack` is such a stack with random weights, with or without skips and MLPs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_float_tensor, check_positive_int

__all__ = ["rank_one_residual", "AttentionStack", "collapse_curve", "fit_rates"]


def rank_one_residual(X: torch.Tensor) -> torch.Tensor:
    """Relative distance of X [..., n, d] to the nearest matrix with identical rows,
    ||X - 1 x*^T||_F / ||X||_F with x* the mean row -> [...], in [0, 1].
    0 exactly when all rows are equal; a zero matrix raises."""
    check_float_tensor("X", X, min_ndim=2, shape_doc="of shape [..., n, d]")
    norm = X.flatten(-2).norm(dim=-1)
    if (norm == 0).any():
        raise ValueError("X must not be a zero matrix (its relative residual is "
                         "undefined)")
    res = X - X.mean(-2, keepdim=True)
    return res.flatten(-2).norm(dim=-1) / norm


class AttentionStack(nn.Module):
    """n_layer multi-head self-attention layers, with or without skips and MLPs, no
    norms.

    Layer: A = attn(X) (softmax(X Wq (X Wk)^T / sqrt(d_h)) X Wv per head, then Wo; all
    tokens see all tokens unless causal); X <- X + A with skip, else A; with mlp,
    X <- X + mlp(X) (skip) or mlp(X). Weights N(0, 1/d), so a layer roughly keeps
    the scale of X. forward(X [B, n, d]) -> [L+1, B, n, d], every layer's output."""

    def __init__(self, d: int, n_layer: int, n_head: int = 1, *, skip: bool = False,
                 mlp: bool = False, causal: bool = False):
        super().__init__()
        for name, v in (("d", d), ("n_layer", n_layer), ("n_head", n_head)):
            check_positive_int(name, v)
        if d % n_head:
            raise ValueError(f"d ({d}) must be divisible by n_head ({n_head})")
        self.d, self.n_head, self.skip, self.causal = d, n_head, skip, causal
        self.qkv = nn.ModuleList(nn.Linear(d, 3 * d, bias=False)
                                 for _ in range(n_layer))
        self.wo = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(n_layer))
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(),
                                                nn.Linear(4 * d, d))
                                  for _ in range(n_layer)) if mlp else None
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 1 / math.sqrt(p.shape[1]))
            else:
                nn.init.zeros_(p)

    def attn(self, l: int, X: torch.Tensor) -> torch.Tensor:
        B, n, d = X.shape
        h = self.n_head
        q, k, v = self.qkv[l](X).view(B, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        s = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        if self.causal:
            s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=X.device)
                              .triu(1), float("-inf"))
        y = torch.softmax(s, -1) @ v                       # [B, h, n, d/h]
        return self.wo[l](y.transpose(1, 2).reshape(B, n, d))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_float_tensor("X", X, ndim=3, shape_doc="of shape [B, n, d]")
        if X.shape[-1] != self.d:
            raise ValueError(f"X must have last dimension d={self.d}, got "
                             f"{tuple(X.shape)}")
        outs = [X]
        for l in range(len(self.qkv)):
            A = self.attn(l, X)
            X = X + A if self.skip else A
            if self.mlps is not None:
                M = self.mlps[l](X)
                X = X + M if self.skip else M
            outs.append(X)
        return torch.stack(outs)


@torch.no_grad()
def collapse_curve(seed: int, depth: int, *, n: int = 16, d: int = 32, n_head: int = 1,
                   batch: int = 32, skip: bool = False,
                   mlp: bool = False) -> list[float]:
    """Median over `batch` Gaussian inputs [n, d] of rank_one_residual at layers
    0..depth of a random AttentionStack (weights and inputs drawn from `seed`), in
    float64."""
    torch.manual_seed(seed)
    stack = AttentionStack(d, depth, n_head, skip=skip, mlp=mlp).double()
    X = torch.randn(batch, n, d, dtype=torch.float64)
    r = rank_one_residual(stack(X))                  # [depth+1, batch]
    return r.median(dim=1).values.tolist()


def fit_rates(r, floor: float = 1e-12) -> dict:
    """Least-squares rates of a residual curve r_0..r_L (floats in (0, 1)), over the
    layers with floor < r_l < 1:
    "single": exp(slope of log r against l), the factor r shrinks by per layer;
    "double": exp(slope of log(-log r) against l), the factor -log r grows by per layer
    (1 for a single exponential's log growing linearly only in the limit; 3 for the
    paper's bound); "n": layers used. Fewer than 3 usable layers raise."""
    pts = [(l, float(v)) for l, v in enumerate(r) if floor < float(v) < 1]
    if len(pts) < 3:
        raise ValueError(f"r must have at least 3 values in ({floor}, 1) to fit, got "
                         f"{len(pts)} of {len(list(r))}")
    ls = torch.tensor([p[0] for p in pts], dtype=torch.float64)
    v = torch.tensor([p[1] for p in pts], dtype=torch.float64)

    def slope(y):
        lc = ls - ls.mean()
        return float((lc * (y - y.mean())).sum() / (lc * lc).sum())

    return {"single": math.exp(slope(v.log())),
            "double": math.exp(slope((-v.log()).log())), "n": len(pts)}
