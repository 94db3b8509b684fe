"""Two small models the Part IV chapters train to isolate one mechanism each.

`FeatureMLP` (Part IV, "The causal dyadic pyramid"): next-token logits from a token's
embedding and the pyramid features of the embeddings, through an MLP. On uniformly
random tokens a causal model cannot beat log V nats; a feature function that reads
the future can, which is how the chapter measures a leak.

`ScaleCopier` (Part IV, "Selection, the open problem"): the token 2**l positions back is
the answer, l announced by a marker at position 0. Its candidates are the dyadic lags
of the embeddings; a `ScaleSelector` picks among them from the query alone.

`ContentScaleCopier` (the same chapter, "A scale inferred from content"): no marker; the
sequence copies itself with a period 2**k (`periodic_copy_batch`), and the selector's
query is built from the causal pyramid features of the sequence, the only evidence of k.

All three follow the package's model interface: forward(idx [B, T] long, targets | None)
-> (logits [B, T, V], mean cross-entropy or None).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_positive_int
from .pyramid import pyramid
from .selection import ScaleSelector, dyadic_lags

__all__ = ["FeatureMLP", "ScaleCopier", "ContentScaleCopier", "periodic_copy_batch"]


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


def periodic_copy_batch(batch: int, T: int, vocab: int = 16, n_levels: int = 5,
                        p_copy: float = 0.8, *, generator: torch.Generator | None = None,
                        device=None):
    """Sequences that copy themselves with period 2**k, k drawn per sequence, no marker.

    -> (x [B, T], y [B, T], k [B]). x[t] = x[t - 2**k] with probability p_copy (where
    t >= 2**k), otherwise a fresh uniform token, so the lag 2**k is the best single
    predictor and its multiples are worse. y[t] = x[t + 1] (next token) from position
    2**n_levels on, -1 before (and at the last position). The best accuracy with the
    right lag is p_copy + (1 - p_copy) / vocab.
    """
    for name, value in (("batch", batch), ("T", T), ("vocab", vocab),
                        ("n_levels", n_levels)):
        check_positive_int(name, value)
    if T <= 2 ** n_levels:
        raise ValueError(f"T must exceed 2**n_levels = {2 ** n_levels}, got T={T}")
    if not 0.0 <= p_copy <= 1.0:
        raise ValueError(f"p_copy must be in [0, 1], got {p_copy!r}")
    k = torch.randint(n_levels, (batch,), generator=generator)
    x = torch.randint(vocab, (batch, T), generator=generator)
    keep = torch.rand(batch, T, generator=generator) < p_copy
    period = 2 ** k
    for t in range(1, T):
        ok = keep[:, t] & (period <= t)
        rows = ok.nonzero()[:, 0]
        x[rows, t] = x[rows, t - period[rows]]
    y = torch.full((batch, T), -1)
    y[:, 2 ** n_levels:-1] = x[:, 2 ** n_levels + 1:]
    return x.to(device), y.to(device), k.to(device)


class ContentScaleCopier(nn.Module):
    """Next token from the dyadic lags, the lag chosen from the sequence's pyramid features.

    Candidates at t: the embeddings of x[t + 1 - 2**l], l = 0 .. n_levels-1 (the token
    one period back from the next one). Query: an MLP of the causal pyramid features
    (levels 1 .. n_levels) of a `proj`-wide projection of the embeddings. No marker: the
    period is evidence in the content. `weights` [B, T, L] holds the last selection.
    Causal: logits at t use x[:, :t+1] only.
    """

    def __init__(self, vocab: int, n_levels: int, n_embd: int, kind: str,
                 proj: int = 8, hidden: int = 64):
        super().__init__()
        for name, value in (("vocab", vocab), ("n_levels", n_levels),
                            ("n_embd", n_embd), ("proj", proj), ("hidden", hidden)):
            check_positive_int(name, value)
        self.n_levels = n_levels
        self.wte = nn.Embedding(vocab, n_embd)
        self.proj = nn.Linear(n_embd, proj, bias=False)
        self.query = nn.Sequential(nn.Linear(n_levels * (proj + 1), hidden), nn.GELU(),
                                   nn.Linear(hidden, n_embd))
        self.ln_q, self.ln_o = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.select = ScaleSelector(n_embd, n_levels, kind=kind)
        self.head = nn.Linear(n_embd, vocab)
        self.weights: torch.Tensor | None = None

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        e = self.wte(idx)                                        # [B, T, C]
        f, _ = pyramid(self.proj(e), self.n_levels + 1)         # [B, T, L+1, P+1]
        # x[t + 1 - 2**l], the token one period 2**l before the next one: [B, T, L, C]
        cand = torch.stack([_shift(e, 2 ** l - 1) for l in range(self.n_levels)], 2)
        out, w = self.select(self.ln_q(self.query(f[:, :, 1:].flatten(2))), cand)
        self.weights = w
        logits = self.head(self.ln_o(out))
        return logits, _loss(logits, targets, ignore_index=-1)


def _shift(e: torch.Tensor, d: int) -> torch.Tensor:
    """e[:, t - d] ([B, T, C]), zero where t < d."""
    T = e.shape[1]
    d = min(d, T)
    return torch.cat([e.new_zeros(e.shape[0], d, e.shape[2]), e[:, :T - d]], 1)
