"""Plain PyTorch reference for the transport between two vectors (the ground truth).

The math is derived in the book, chapter "Transport between two vectors". In short, for
a, b in R^D with directions u = a/|a|, v = b/|b|:

    w     = v - (u.v) u                 the part of v orthogonal to u
    theta = atan2(|w|, u.v)             the angle, stable for tiny and for near-pi angles
    log_u(v) = theta * w / |w|          the log map on the unit sphere (a tangent vector at u)
    rho   = log|b| - log|a|             the log change of length

and transport(a, b) = [log_u(v), rho] of shape [..., D+1].

Guards, each chosen so that values *and gradients* stay finite:
  * norms are computed from a sum of squares clamped below at EPS**2 (the gradient of the
    clamp is zero, not NaN, at the zero vector);
  * a (near-)zero a or b, a sum of squares <= EPS**2, gives the zero delta: there is no
    direction to compare. The test is on the squared norm, not on sqrt of it, so it does
    not depend on how a GPU's fast sqrt rounds (the Triton kernel tests the same sums);
  * |w| is clamped at EPS, and theta/|w| -> 1 as both vanish, so equal vectors give 0;
  * (near-)antipodal directions (|w| < ANTIPODAL_TOL and u.v < 0) give theta = pi along a
    deterministic tangent: the coordinate axis on which u is smallest, made orthogonal
    to u. Any choice breaks rotation equivariance there; this one is reproducible.
"""

from __future__ import annotations

import torch

EPS = 1e-6            # floor for norms; below it a vector counts as zero
ANTIPODAL_TOL = 1e-4  # |w| below this with u.v < 0 counts as antipodal


def safe_norm(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Euclidean norm over the last axis, keepdim, with a finite gradient at zero."""
    return torch.sqrt(torch.clamp((x * x).sum(-1, keepdim=True), min=eps * eps))


def fallback_tangent(u: torch.Tensor) -> torch.Tensor:
    """A unit tangent at unit vector u: the axis where |u| is smallest, minus its u part."""
    k = u.abs().argmin(dim=-1, keepdim=True)
    e = torch.zeros_like(u).scatter_(-1, k, 1.0)
    t = e - (e * u).sum(-1, keepdim=True) * u
    return t / safe_norm(t)


def transport_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[..., D], [..., D] -> [..., D+1]: log map of b's direction at a's, and log(|b|/|a|)."""
    sa, sb = (a * a).sum(-1, keepdim=True), (b * b).sum(-1, keepdim=True)
    na = torch.sqrt(torch.clamp(sa, min=EPS * EPS))
    nb = torch.sqrt(torch.clamp(sb, min=EPS * EPS))
    u, v = a / na, b / nb
    cos = (u * v).sum(-1, keepdim=True)
    w = v - cos * u
    sin = safe_norm(w)
    theta = torch.atan2(sin, cos)
    antipodal = (sin < ANTIPODAL_TOL) & (cos < 0)
    # Double-where: the branch not taken still gets finite inputs, so its gradient is 0, not NaN.
    direction = torch.where(antipodal, fallback_tangent(u), w / sin)
    log_map = torch.where(antipodal, torch.pi * direction, theta * direction)
    rho = torch.log(nb) - torch.log(na)
    delta = torch.cat([log_map, rho], dim=-1)
    degenerate = (sa <= EPS * EPS) | (sb <= EPS * EPS)
    return torch.where(degenerate, torch.zeros_like(delta), delta)


def transport_exp_reference(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """[..., D], [..., D+1] -> [..., D]: the vector reached from a by moving along delta.

    Inverts transport_reference: the tangent part delta[..., :D] is taken orthogonal to a
    (its component along a is removed), its length is the angle to turn through.
    """
    na = safe_norm(a)
    u = a / na
    tangent, rho = delta[..., :-1], delta[..., -1:]
    tangent = tangent - (tangent * u).sum(-1, keepdim=True) * u
    theta = torch.sqrt((tangent * tangent).sum(-1, keepdim=True))
    # sin(theta)/theta written as sinc so the gradient is smooth at theta = 0.
    direction = torch.cos(theta) * u + torch.sinc(theta / torch.pi) * tangent
    return na * torch.exp(rho) * direction


def transport_complex_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rotary variant: [..., D] pairs (x0, x1), (x2, x3), ... read as complex numbers.

    Returns [..., D] with (phase change, log change of modulus) for each pair, phases in
    (-pi, pi] from atan2 of b * conj(a). A pair whose a or b is (near-)zero gives (0, 0).
    """
    ar, ai = a[..., 0::2], a[..., 1::2]
    br, bi = b[..., 0::2], b[..., 1::2]
    ma2, mb2 = ar * ar + ai * ai, br * br + bi * bi
    re = ar * br + ai * bi          # Re(b * conj(a))
    im = ar * bi - ai * br          # Im(b * conj(a))
    degenerate = (ma2 <= EPS * EPS) | (mb2 <= EPS * EPS)
    # Keep atan2's inputs away from (0, 0), where its gradient is NaN.
    phase = torch.atan2(torch.where(degenerate, torch.zeros_like(im), im),
                        torch.where(degenerate, torch.ones_like(re), re))
    logmod = 0.5 * (torch.log(torch.clamp(mb2, min=EPS * EPS)) - torch.log(torch.clamp(ma2, min=EPS * EPS)))
    logmod = torch.where(degenerate, torch.zeros_like(logmod), logmod)
    return torch.stack([phase, logmod], dim=-1).flatten(-2)


def transport_complex_exp_reference(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Inverse of transport_complex_reference: rotate and scale each pair of a by delta."""
    phase, logmod = delta[..., 0::2], delta[..., 1::2]
    ar, ai = a[..., 0::2], a[..., 1::2]
    scale = torch.exp(logmod)
    c, s = torch.cos(phase) * scale, torch.sin(phase) * scale
    return torch.stack([ar * c - ai * s, ar * s + ai * c], dim=-1).flatten(-2)
