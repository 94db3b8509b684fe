"""A scale inferred from content, with the pyramid's levels as the candidates.

Book: Part IV, "Selection, the open problem". Each sequence is made of segments of
2**k equal tokens, k drawn per sequence and announced by nothing; the target at a
position is whether the last completed segment's token is larger than the one before
(`segment_compare_batch`). The pyramid's level k compares exactly those two segments, so
one level's transport feature holds the answer and which level must be read from the
content. `LevelSelector` scores the L levels from a causal summary of how much each level
has moved so far (`level_evidence`) and reads the answer from the selected mix of the
levels' features; `fit` trains one, with the softmax told to choose by a temperature
or an entropy penalty annealed during training if asked (`ANNEALS`). The sweeps that
train them over seeds and rates are in `phaselib.scale_content_runs`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .pyramid import pyramid
from .selection import KINDS, ScaleSelector, selection_entropy

__all__ = ["segment_compare_batch", "segment_labels", "level_evidence", "level_rule",
           "LevelSelector", "evaluate", "fit", "ANNEALS", "TAU_END",
           "LATE_ENTROPY_WEIGHT"]

# The softmax told to choose: "temperature" divides its scores by a temperature that
# falls geometrically from 1 to TAU_END over training (and stays there at test time);
# "late_entropy" adds LATE_ENTROPY_WEIGHT times the selection entropy to the loss from
# half-way through training, once the right level has had time to be found.
ANNEALS = ("temperature", "late_entropy")
TAU_END, LATE_ENTROPY_WEIGHT = 0.05, 0.1


def _check_sizes(T: int, vocab: int, n_levels: int) -> None:
    for name, value in (("T", T), ("vocab", vocab), ("n_levels", n_levels)):
        check_positive_int(name, value)
    if vocab < 2:
        raise ValueError(f"vocab must be >= 2 (two tokens to compare), got {vocab}")
    if T < 2 ** n_levels:
        raise ValueError(f"T must be >= 2**n_levels = {2 ** n_levels} (two completed "
                         f"blocks at the top level), got T={T}")


def segment_labels(x: torch.Tensor, k: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Targets [B, T] for sequences x [B, T] of segments of 2**k[b] tokens.

    At position t, with n = (t + 1) >> k completed segments, the target is 1 if segment
    n-1 holds a larger token than segment n-2, 0 if smaller, and -1 (not scored) if they
    are equal or t < 2**n_levels - 1 (before every level has two completed blocks).
    """
    if x.ndim != 2 or k.shape != x.shape[:1]:
        raise ValueError(f"x must have shape [B, T] and k shape [B], got "
                         f"{tuple(x.shape)} and {tuple(k.shape)}")
    B, T = x.shape
    t = torch.arange(T, device=x.device)[None]
    n = (t + 1) >> k[:, None]                               # [B, T] completed segments
    last = (n - 1).clamp(min=0) << k[:, None]               # first position of each
    prev = (n - 2).clamp(min=0) << k[:, None]
    a, b = x.gather(1, prev), x.gather(1, last)
    y = (b > a).long()
    y[(a == b) | (n < 2) | (t < 2 ** n_levels - 1).expand(B, T)] = -1
    return y


def segment_compare_batch(batch: int, T: int, vocab: int = 16, n_levels: int = 5, *,
                          generator: torch.Generator | None = None, device=None):
    """-> (x [B, T], y [B, T], k [B]): segments of 2**k equal tokens, k uniform in
    0 .. n_levels-1 per sequence, each segment's token fresh and uniform; y from
    `segment_labels` (is the last completed segment's token larger than the one before).
    Nothing but the content says k: the first change of token comes at a multiple of 2**k.
    """
    check_positive_int("batch", batch)
    _check_sizes(T, vocab, n_levels)
    k = torch.randint(n_levels, (batch,), generator=generator)
    seg = torch.randint(vocab, (batch, T), generator=generator)    # a token per segment
    t = torch.arange(T)[None]
    x = seg.gather(1, t >> k[:, None])
    y = segment_labels(x, k, n_levels)
    return x.to(device), y.to(device), k.to(device)


def level_evidence(feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How much each level has moved so far: [B, T, L, F], [T, L] -> [B, T, L].

    out[:, t, l] = mean over s <= t where level l is valid (mask) of |feats[:, s, l]|,
    zero before the level's first valid position. Causal and parameter-free: a level
    that compares two halves of one segment moves rarely, one at or above the segment's
    scale moves almost always.
    """
    check_float_tensor("feats", feats, ndim=4, shape_doc="of shape [B, T, L, F]")
    if mask.shape != feats.shape[1:3]:
        raise ValueError(f"mask must have shape [T, L] = {tuple(feats.shape[1:3])}, "
                         f"got {tuple(mask.shape)}")
    m = mask.to(feats.dtype)
    size = feats.norm(dim=-1) * m                             # [B, T, L]
    return size.cumsum(1) / m.cumsum(0).clamp(min=1)


def level_rule(x: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Each level's answer without training: [B, T] tokens -> [B, T, L] predictions.

    Token v is embedded as (v + 1, 0), so the last coordinate of a pyramid feature (the
    log change of length) is > 0 exactly when the later block's mean token is larger.
    Level l's prediction is that sign (1: larger, 0: not). At level k it is the target
    wherever the target is scored; the other levels compare the wrong blocks.
    """
    if x.ndim != 2 or x.dtype != torch.long:
        raise TypeError(f"x must be a long tensor of shape [B, T], got {x.dtype} of "
                        f"shape {tuple(x.shape)}")
    check_positive_int("n_levels", n_levels)
    e = torch.stack([x.double() + 1, torch.zeros_like(x, dtype=torch.double)], -1)
    feats, _ = pyramid(e, n_levels, backend="reference")
    return (feats[..., -1] > 0).long()


class LevelSelector(nn.Module):
    """Read a comparison from one pyramid level, the level chosen from the content.

    Tokens -> embedding -> a `proj`-wide projection -> `pyramid` features [B, T, L, P+1]
    (level l compares the last two completed blocks of 2**l tokens): these L features are
    the candidates. The query is an MLP of `level_evidence` (how much each level has
    moved so far); a `ScaleSelector` of `kind` weighs the candidates from it; an MLP head
    reads 2 logits from the mix. `weights` [B, T, L] holds the last selection. Causal:
    the logits at t use x[:, :t+1] only. `entropy_weight` > 0 adds that multiple of the
    mean selection entropy at the scored positions to the training loss (a penalty on
    blending; 0, the default, trains on the cross-entropy alone).
    """

    def __init__(self, vocab: int, n_levels: int, kind: str = "softmax", n_embd: int = 16,
                 proj: int = 4, hidden: int = 32, entropy_weight: float = 0.0):
        super().__init__()
        if not entropy_weight >= 0:
            raise ValueError(f"entropy_weight must be >= 0, got {entropy_weight}")
        self.entropy_weight = float(entropy_weight)
        for name, value in (("vocab", vocab), ("n_levels", n_levels), ("n_embd", n_embd),
                            ("proj", proj), ("hidden", hidden)):
            check_positive_int(name, value)
        if proj < 2:
            raise ValueError(f"proj must be >= 2 (the pyramid needs D >= 2), got {proj}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.n_levels, self.kind = n_levels, kind
        self.wte = nn.Embedding(vocab, n_embd)
        self.proj = nn.Linear(n_embd, proj, bias=False)
        self.query = nn.Sequential(nn.Linear(n_levels, hidden), nn.GELU(),
                                   nn.Linear(hidden, proj + 1))
        self.select = ScaleSelector(proj + 1, n_levels, kind=kind)
        self.head = nn.Sequential(nn.Linear(proj + 1, hidden), nn.GELU(),
                                  nn.Linear(hidden, 2))
        self.weights: torch.Tensor | None = None

    def candidates(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pyramid features [B, T, L, P+1] of idx [B, T] and their mask [T, L]."""
        if idx.ndim != 2 or idx.dtype != torch.long:
            raise TypeError(f"idx must be a long tensor of shape [B, T], got "
                            f"{idx.dtype} of shape {tuple(idx.shape)}")
        return pyramid(self.proj(self.wte(idx)), self.n_levels)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        feats, mask = self.candidates(idx)
        q = self.query(level_evidence(feats, mask))
        out, w = self.select(q, feats)
        self.weights = w
        logits = self.head(out)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
            if self.entropy_weight > 0:     # selection_entropy detaches: a live copy
                h = -(w * w.clamp(min=1e-12).log()).sum(-1)
                loss = loss + self.entropy_weight * h[targets >= 0].mean()
        return logits, loss


def evaluate(model: LevelSelector, x, y, k) -> dict:
    """Accuracy on the scored positions, the share of them whose largest weight is on
    level k, the mean selection entropy there (nats), and the accuracy per k."""
    model.eval()
    with torch.no_grad():
        logits, _ = model(x)
    scored = y >= 0
    kk = k[:, None].expand_as(y)
    right = (model.weights.argmax(-1) == kk)[scored].float().mean().item()
    ok = logits.argmax(-1) == y
    per_k = [ok[scored & (kk == j)].float().mean().item() for j in range(model.n_levels)]
    return {"acc": ok[scored].float().mean().item(), "right_level": right,
            "entropy": selection_entropy(model.weights)[scored].mean().item(),
            "acc_per_k": per_k}


def fit(seed: int, kind: str, steps: int = 300, T: int = 64, vocab: int = 16,
        n_levels: int = 5, batch: int = 32, lr: float = 3e-3, n_test: int = 256,
        eval_every: int = 50, device="cpu", entropy_weight: float = 0.0,
        anneal: str | None = None):
    """Train one LevelSelector of `kind` from `seed`, scoring it every `eval_every` steps
    on held-out sequences (the same for every seed); `entropy_weight` as in
    LevelSelector; `anneal` one of ANNEALS (a softmax only) or None.
    -> (model, history, (x, y, k))."""
    from .train import TrainConfig, train

    torch.manual_seed(seed)
    model = LevelSelector(vocab, n_levels, kind, entropy_weight=entropy_weight).to(device)
    gen = torch.Generator().manual_seed(seed + 100)
    test = segment_compare_batch(n_test, T, vocab, n_levels, device=device,
                                 generator=torch.Generator().manual_seed(10_000))
    hist = train(model, lambda step: segment_compare_batch(
        batch, T, vocab, n_levels, generator=gen, device=device)[:2],
        TrainConfig(steps=steps, lr=lr, eval_every=eval_every, progress=False),
        eval_fn=lambda m: evaluate(m, *test)["acc"],
        on_step=None if anneal is None else _annealer(model, anneal, steps))
    return model, hist, test


def _annealer(model: LevelSelector, anneal: str, steps: int):
    """The on_step hook of `anneal` (see ANNEALS), its starting value set on `model`."""
    if model.kind != "softmax" or model.entropy_weight != 0:
        raise ValueError(f"anneal needs a softmax selector with no fixed entropy weight, "
                         f"got kind {model.kind!r}, entropy_weight {model.entropy_weight}")
    if anneal == "temperature":
        model.select.tau = 1.0

        def on_step(done, opt, hist):
            model.select.tau = TAU_END ** (done / steps)
    elif anneal == "late_entropy":
        def on_step(done, opt, hist):
            model.entropy_weight = LATE_ENTROPY_WEIGHT if done >= steps // 2 else 0.0
    else:
        raise ValueError(f"anneal must be one of {ANNEALS} or None, got {anneal!r}")
    return on_step
