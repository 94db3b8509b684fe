"""Two small models the Part IV chapters train to isolate one mechanism each.

`FeatureMLP` (Part IV, "The causal dyadic pyramid"): next-token logits from a token's
embedding and the pyramid features of the embeddings, through an MLP. On uniformly
random tokens a causal model cannot beat log V nats; a feature function that reads
the future can, which is how the chapter measures a leak.

`ScaleCopier` (Part IV, "Selection, the open problem"): the token 2**l positions back is
the answer, l announced by a marker at position 0. Its candidates are the dyadic lags
of the embeddings; a `ScaleSelector` picks among them from the query alone.

Both follow the package's model interface: forward(idx [B, T] long, targets | None)
-> (logits [B, T, V], mean cross-entropy or None).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_positive_int
from .selection import ScaleSelector, dyadic_lags

__all__ = ["FeatureMLP", "ScaleCopier"]


def _loss(logits, targets, ignore_index=-100):
    if targets is None:
        return None
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                           ignore_index=ignore_index)


class FeatureMLP(nn.Module):
    """Embed tokens, add features of the embeddings, predict the next token with an MLP.

    feature_fn(e [B, T, D], levels) -> (features [B, T, levels, D+1], anything), e.g.
    `phaselib.pyramid` or `phaselib.leaky_pyramid`. Logits at t are
    MLP([e_t, features_t]) [B, T, vocab]; causal exactly when feature_fn is.
    """

    def __init__(self, feature_fn, vocab: int, dim: int, levels: int,
                 hidden: int = 128):
        super().__init__()
        for name, value in (("vocab", vocab), ("dim", dim), ("levels", levels),
                            ("hidden", hidden)):
            check_positive_int(name, value)
        self.feature_fn, self.levels = feature_fn, levels
        self.emb = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.Linear(dim + levels * (dim + 1), hidden), nn.GELU(),
                                 nn.Linear(hidden, vocab))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        e = self.emb(idx)                                          # [B, T, D]
        f, _ = self.feature_fn(e, self.levels)                     # [B, T, L, D+1]
        logits = self.mlp(torch.cat([e, f.flatten(2)], -1))
        return logits, _loss(logits, targets)


class ScaleCopier(nn.Module):
    """Embeddings, dyadic-lag candidates, a `ScaleSelector` of one kind, a linear head.

    Tokens 0 .. vocab-1 are content, vocab .. vocab+n_levels-1 the markers of the
    scales. The selector's query is ln(e_0 + e_t): the marker's embedding plus the
    current token's. Targets of -1 are not scored.

    Corruption: with `noise` > 0 the candidates other than the announced one get
    Gaussian noise of that standard deviation, drawn from `noise_gen` (a
    torch.Generator on the model's device), so that a selector that gives them exactly
    zero weight is unaffected. It applies in every forward pass, training included: set
    it at test time only to test a clean-trained model, or during training too to train
    the selector with the noise. `weights` [B, T, L] holds the last selection.
    """

    def __init__(self, vocab: int, n_levels: int, n_embd: int, kind: str):
        super().__init__()
        for name, value in (("vocab", vocab), ("n_levels", n_levels),
                            ("n_embd", n_embd)):
            check_positive_int(name, value)
        self.vocab, self.n_levels = vocab, n_levels
        self.wte = nn.Embedding(vocab + n_levels, n_embd)
        self.ln_q, self.ln_o = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.select = ScaleSelector(n_embd, n_levels, kind=kind)
        self.head = nn.Linear(n_embd, vocab)
        self.noise = 0.0      # test-time corruption of the unchosen candidates
        self.noise_gen: torch.Generator | None = None
        self.weights: torch.Tensor | None = None

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        e = self.wte(idx)                                   # [B, T, C]
        cand = dyadic_lags(e, self.n_levels)                # [B, T, L, C]
        if self.noise:
            level = idx[:, 0] - self.vocab                     # the announced scale
            right = F.one_hot(level, self.n_levels).bool()[:, None, :, None]
            noise = torch.randn(cand.shape, generator=self.noise_gen,
                                device=cand.device)
            cand = torch.where(right, cand, cand + self.noise * noise)
        out, w = self.select(self.ln_q(e[:, :1] + e), cand)
        self.weights = w                                    # [B, T, L], for the entropy
        logits = self.head(self.ln_o(out))
        return logits, _loss(logits, targets, ignore_index=-1)
