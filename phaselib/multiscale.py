"""Explicit multi-scale features for a transformer: the pyramid as an extra embedding.

Book: Part II, "F3 No intrinsic multi-scale structure". A standard block has no notion
of scale; every head must find its own distances. `PyramidFeatureEmbedding` hands the
model one feature per dyadic scale (1, 2, 4, ... tokens) at every position, computed by
the causal pyramid (`phaselib.pyramid`), and `MultiScaleTransformer` adds it to the
token and position embeddings of a `TinyTransformer`.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .pyramid import default_levels, pyramid
from .taps import Tap
from .transformer import TinyTransformer, TransformerConfig

__all__ = ["PyramidFeatureEmbedding", "MultiScaleTransformer", "attention_distance_profile"]


class PyramidFeatureEmbedding(nn.Module):
    """Pyramid features of x, one linear map per level, summed: `x [B, T, C] -> [B, T, C]`.

    x is first projected to `d_proj` dimensions (the transport of a 64-dimensional vector
    costs 65 numbers per level; a few are enough to say "this block differs from the
    last"). Level l's feature [B, T, d_proj+1] goes through its own map to C, and the
    levels are summed. A level that has not completed two blocks at position t (masked
    by the pyramid) contributes exactly zero there: the maps have no bias.

    Guarantees: causal (output at t depends on x[:, :t+1] only), O(T d_proj log T) for
    the features plus O(T L d_proj C) for the maps; gradients reach x and every weight.
    """

    def __init__(self, n_embd: int, levels: int, d_proj: int | None = 8):
        super().__init__()
        check_positive_int("n_embd", n_embd)
        check_positive_int("levels", levels)
        check_positive_int("d_proj", d_proj, allow_none=True)
        d = n_embd if d_proj is None else d_proj
        if d < 2:
            raise ValueError(f"the transport needs at least 2 dimensions: got n_embd={n_embd}, "
                             f"d_proj={d_proj}")
        self.n_embd, self.levels, self.d = n_embd, levels, d
        self.down = None if d_proj is None else nn.Linear(n_embd, d, bias=False)
        self.up = nn.Parameter(torch.randn(levels, d + 1, n_embd) * 0.02)  # [L, d+1, C]
        self.tap_features = Tap()  # [B, T, L, d+1] the masked pyramid features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, C]")
        if x.shape[-1] != self.n_embd:
            raise ValueError(f"x must have C = n_embd = {self.n_embd} features (shape [B, T, C]), "
                             f"got shape {tuple(x.shape)}")
        z = x if self.down is None else self.down(x)
        # The reference backend: it is differentiable everywhere and runs on any device.
        feats, mask = pyramid(z, self.levels, backend="reference")
        feats = self.tap_features(feats * mask[None, :, :, None].to(feats.dtype))
        return torch.einsum("btlf,lfc->btc", feats, self.up)


class MultiScaleTransformer(TinyTransformer):
    """A `TinyTransformer` whose first residual stream also holds pyramid features.

    x_0 = wte(idx) + wpe(t) + PyramidFeatureEmbedding(wte(idx)). The pyramid reads the
    token embeddings only: position vectors are the same in every sequence, so their
    block centroids carry no information. Everything after the embedding is unchanged,
    so the two models differ by `multiscale`'s parameters alone
    (n_embd * d_proj + levels * (d_proj + 1) * n_embd).

    forward(idx [B, T] long, targets [B, T] long | None) -> (logits [B, T, V], loss | None).
    Causal: the logits at t depend only on idx[:, :t+1].
    """

    def __init__(self, cfg: TransformerConfig, levels: int | None = None, d_proj: int | None = 8):
        super().__init__(cfg)
        if levels is None:
            levels = default_levels(cfg.block_size)
        self.multiscale = PyramidFeatureEmbedding(cfg.n_embd, levels, d_proj)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        tok = self.wte(idx)
        pos = torch.arange(idx.shape[1], device=idx.device)
        return tok + self.wpe(pos) + self.multiscale(tok)


def attention_distance_profile(weights: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Mean attention mass at each distance, per head: `weights [B, H, T, T] -> [H, T]`.

    profile[h, d] is the weight that a query i puts on key i - d, averaged over the batch
    and over the queries i >= start (a query with i < d puts nothing there). Each row sums
    to one when every row of weights does.
    """
    check_float_tensor("weights", weights, ndim=4, shape_doc="of shape [B, H, T, T]")
    B, H, T, Tk = weights.shape
    if T != Tk:
        raise ValueError(f"weights must be square in its last two axes (self-attention), got "
                         f"shape {tuple(weights.shape)}")
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < T:
        raise ValueError(f"start must be an int in [0, T) = [0, {T}), got {start!r}")
    i = torch.arange(start, T, device=weights.device)[:, None]
    d = torch.arange(T, device=weights.device)[None, :]
    j = i - d                                                  # [Tq, T] key at distance d
    w = weights[:, :, start:].gather(-1, j.clamp(min=0).expand(B, H, -1, -1))
    w = torch.where((j >= 0)[None, None], w, torch.zeros_like(w))
    return w.mean(dim=(0, 2))
