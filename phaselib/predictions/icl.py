"""In-context learning against the number of examples: seed 000's second prediction.

Book: Part V, "The seeds' three predictions". The essay predicts that in-context
learning "should peak then decline with example count as the dispersion of attention
scores increases". The task here rewards more examples, so that a decline could only
come from the model. Each sequence draws a fresh random map from `n_keys` keys to
`n_values` values and plays rounds: a query token names a key k_i, and the model must
answer its value under the map from the rounds before; then a *pair token* (k_i, v_i)
shows the answer, replaced by a random value with probability `noise`. The ideal
observer votes: it answers the commonest value shown with the key so far, so its
accuracy rises with the number of examples toward one. Attention can implement the vote
in one layer (average the values of the earlier pair tokens whose key matches), so a
model that falls away from the observer as examples accumulate shows a capacity limit,
and the entropy of its attention at the query shows whether dispersion comes with it.

Vocabulary: pair token `k * n_values + v`, then query token `n_keys * n_values + k`.

The variant with a growing irrelevant share (`distract` > 0): each round is, with
probability i / (i + distract_half) at round i, a *distractor* round, whose key comes
from `distract` further keys with their own map and whose query is not scored. The
relevant examples keep accumulating (the observer keeps improving), but they are a
shrinking share of the context: from seven in eight tokens irrelevant to the asked key
in the plain task to nearly all of them late in a long sequence. (Keys are then
numbered 0 .. n_keys + distract - 1 in the vocabulary, the distractors last.)

Positions carry no information in this task (the vote is over content), so the model is
trained without a position table by default ("NoPE": the table is zero and frozen).
Such a model can be run on sequences longer than any it was trained on without using a
single untrained parameter, which makes "past the training length" a fair test of the
attention itself rather than of unseen position embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_positive_int
from ..taps import capture
from ..train import TrainConfig, train
from ..transformer import TinyTransformer, TransformerConfig

__all__ = ["ICLTask", "make_batch", "majority_vote", "train_icl", "accuracy_by_n",
           "query_entropy", "same_key_mass", "binned", "largest_fall", "icl_falls"]


@dataclass(frozen=True)
class ICLTask:
    n_keys: int = 8
    n_values: int = 8
    noise: float = 0.2       # the chance an example shows a random value instead
    max_examples: int = 48   # rounds per training sequence
    distract: int = 0        # distractor keys (0: the plain task)
    distract_half: int = 32  # the round at which half the rounds are distractors

    def __post_init__(self):
        check_positive_int("n_keys", self.n_keys)
        check_positive_int("n_values", self.n_values)
        check_positive_int("max_examples", self.max_examples)
        check_positive_int("distract_half", self.distract_half)
        if isinstance(self.distract, bool) or not isinstance(self.distract, int) \
                or self.distract < 0:
            raise ValueError(f"distract must be an int >= 0, got {self.distract!r}")
        if not 0.0 <= self.noise < 1.0:
            raise ValueError(f"noise must be in [0, 1), got {self.noise}")

    @property
    def all_keys(self) -> int:
        """The keys in the vocabulary: the asked ones, then the distractors."""
        return self.n_keys + self.distract

    @property
    def vocab_size(self) -> int:
        return self.all_keys * self.n_values + self.all_keys

    def query_token(self, key: torch.Tensor) -> torch.Tensor:
        return self.all_keys * self.n_values + key

    def distractor_share(self, n: int) -> torch.Tensor:
        """The chance [n] that round i is a distractor round: i / (i + distract_half),
        zero everywhere for the plain task."""
        i = torch.arange(n, dtype=torch.float64)
        return i / (i + self.distract_half) if self.distract else torch.zeros(n)


def make_batch(task: ICLTask, batch: int, n: int, generator: torch.Generator):
    """`batch` sequences of `n` rounds. Round i is a query token for key k_i, then the
    pair token (k_i, v_i): idx [B, 2n] = Q(k_0) P_0 Q(k_1) P_1 ... The query at round
    i is answered from the i examples before it. Returns (idx, targets [B, 2n] with the
    map's value at each query position and -1 elsewhere, keys [B, n], values shown
    [B, n] (noise included), answers [B, n] (the map's values, never noised; -1 at a
    distractor round, whose query is not scored))."""
    check_positive_int("batch", batch)
    check_positive_int("n", n)
    g = generator
    table = torch.randint(task.n_values, (batch, task.all_keys), generator=g)
    keys = torch.randint(task.n_keys, (batch, n), generator=g)
    if task.distract:
        other = task.n_keys + torch.randint(task.distract, (batch, n), generator=g)
        is_other = torch.rand(batch, n, generator=g, dtype=torch.float64) \
            < task.distractor_share(n)
        keys = torch.where(is_other, other, keys)
    answers = table.gather(1, keys)
    flip = torch.rand(batch, n, generator=g) < task.noise
    values = torch.where(flip, torch.randint(task.n_values, (batch, n), generator=g),
                         answers)
    idx = torch.stack([task.query_token(keys), keys * task.n_values + values], dim=2)
    if task.distract:
        answers = answers.masked_fill(is_other, -1)
    targets = torch.stack([answers, torch.full_like(answers, -1)], dim=2)
    return idx.flatten(1), targets.flatten(1), keys, values, answers


def majority_vote(task: ICLTask, keys, values, generator: torch.Generator):
    """The ideal observer's answer at every round [B, n]: the commonest value shown
    with that round's key in the rounds before it, ties broken at random (a random
    value when the key was never shown)."""
    B, n = keys.shape
    onehot_k = torch.nn.functional.one_hot(keys, task.all_keys).float()    # [B, n, K]
    onehot_v = torch.nn.functional.one_hot(values, task.n_values).float()  # [B, n, V]
    counts = torch.einsum("bik,biv->bikv", onehot_k, onehot_v).cumsum(1)    # through i
    before = torch.cat([torch.zeros_like(counts[:, :1]), counts[:, :-1]], 1)
    votes = before.gather(2, keys[:, :, None, None].expand(B, n, 1, task.n_values))
    jitter = torch.rand(votes.shape, generator=generator) * 0.5          # ties only
    return (votes + jitter)[:, :, 0].argmax(-1)


def train_icl(task: ICLTask, *, n_head: int = 4, n_embd: int = 64, n_layer: int = 2,
              steps: int = 1000, batch: int = 32, lr: float = 1e-3, seed: int = 0,
              positions: bool = False, block_size: int = 512,
              progress: bool = False) -> TinyTransformer:
    """A small transformer trained on sequences of `task.max_examples` rounds, with a
    loss at every query. positions=False: no position table (zero, frozen), so the
    model runs on up to `block_size` tokens using only trained parameters."""
    check_positive_int("block_size", block_size)
    if block_size < 2 * task.max_examples:
        raise ValueError(f"block_size must be >= 2 * task.max_examples = "
                         f"{2 * task.max_examples}, got {block_size}")
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=task.vocab_size, block_size=block_size,
                            n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    model = TinyTransformer(cfg)
    if not positions:
        model.wpe.weight.data.zero_()
        model.wpe.weight.requires_grad_(False)
    g = torch.Generator().manual_seed(seed + 1000)

    def get_batch(step):
        idx, targets, *_ = make_batch(task, batch, task.max_examples, g)
        return idx, targets

    train(model, get_batch, TrainConfig(steps=steps, lr=lr, progress=progress))
    return model.eval()


@torch.no_grad()
def accuracy_by_n(model, task: ICLTask, *, n_rounds: int | None = None, batch: int = 512,
                  seed: int = 0) -> dict[str, list[float]]:
    """Accuracy of `model` and of the ideal observer against the number of examples
    before the query (0 .. n_rounds - 1; default task.max_examples), on the same
    sequences. n_rounds may exceed the training length when the model's block allows.
    With distractors, each round's accuracy is over the sequences where it is scored,
    and "scored" holds how many those are."""
    n_rounds = task.max_examples if n_rounds is None else n_rounds
    check_positive_int("n_rounds", n_rounds)
    block = model.cfg.block_size
    if 2 * n_rounds > block:
        raise ValueError(f"n_rounds must be <= block_size / 2 = {block // 2} for this "
                         f"model, got {n_rounds}")
    g = torch.Generator().manual_seed(seed + 2000)
    idx, targets, keys, values, answers = make_batch(task, batch, n_rounds, g)
    logits, _ = model(idx)
    pred = logits[:, 0::2].argmax(-1)                                   # [B, n]
    vote = majority_vote(task, keys, values, g)
    if not task.distract:
        return {"n": list(range(n_rounds)),
                "model": (pred == answers).float().mean(0).tolist(),
                "observer": (vote == answers).float().mean(0).tolist()}
    scored = answers >= 0
    count = scored.sum(0)
    if (count == 0).any():
        raise ValueError(f"batch={batch} leaves a round with no scored query; raise it")
    return {"n": list(range(n_rounds)),
            "model": (((pred == answers) & scored).sum(0) / count).tolist(),
            "observer": (((vote == answers) & scored).sum(0) / count).tolist(),
            "scored": count.tolist()}


@torch.no_grad()
def query_entropy(model, task: ICLTask, *, n_rounds: int | None = None, batch: int = 256,
                  seed: int = 0):
    """Entropy (nats) of each layer's attention at every query, averaged over heads and
    sequences: [n_rounds][n_layer]. Query i sees 2i + 1 tokens, so the uniform bound
    is log(2i + 1)."""
    n_rounds = task.max_examples if n_rounds is None else n_rounds
    check_positive_int("n_rounds", n_rounds)
    g = torch.Generator().manual_seed(seed + 3000)
    idx, *_ = make_batch(task, batch, n_rounds, g)
    with capture(model) as store:
        model(idx)
    layers = []
    for name in sorted(k for k in store if k.endswith("tap_pattern")):
        p = store[name][:, :, 0::2, :].clamp_min(1e-12)                # [B, H, n, T]
        layers.append((-(p * p.log()).sum(-1)).mean((0, 1)))             # [n]
    return torch.stack(layers, 1).tolist()


@torch.no_grad()
def same_key_mass(model, task: ICLTask, *, n_rounds: int | None = None, batch: int = 256,
                  seed: int = 0) -> dict[str, list]:
    """Where the attention at each query goes: the weight each layer puts on the earlier
    pair tokens of the query's own key (the tokens the vote needs), averaged over heads
    and sequences ("mass": [n_rounds][n_layer]), and those tokens' share of the tokens
    the query sees, the mass uniform attention would give them ("share": [n_rounds])."""
    n_rounds = task.max_examples if n_rounds is None else n_rounds
    check_positive_int("n_rounds", n_rounds)
    g = torch.Generator().manual_seed(seed + 3000)
    idx, _, keys, _, _ = make_batch(task, batch, n_rounds, g)
    same = keys[:, :, None] == keys[:, None, :]                           # [B, i, j]
    earlier = torch.ones(n_rounds, n_rounds).tril(-1).bool()
    target = torch.zeros(batch, n_rounds, 2 * n_rounds, dtype=torch.bool)
    target[:, :, 1::2] = same & earlier                                    # pair j < i
    with capture(model) as store:
        model(idx)
    mass = []
    for name in sorted(k for k in store if k.endswith("tap_pattern")):
        p = store[name][:, :, 0::2, :].mean(1)                            # [B, n, T]
        mass.append((p * target).sum(-1).mean(0))                         # [n]
    share = target.sum(-1).float() / (2 * torch.arange(n_rounds) + 1)
    return {"mass": torch.stack(mass, 1).tolist(), "share": share.mean(0).tolist()}


def binned(acc, width: int = 8) -> list[float]:
    """Mean of `acc` over consecutive bins of `width` example counts."""
    check_positive_int("width", width)
    t = torch.as_tensor(acc, dtype=torch.float64)
    if t.ndim != 1 or len(t) < width:
        raise ValueError(f"acc must be a 1-d list of at least width={width} numbers, "
                         f"got shape {tuple(t.shape)}")
    n = len(t) // width * width
    return t[:n].reshape(-1, width).mean(1).tolist()


def largest_fall(curve) -> float:
    """The largest fall of `curve` below its running maximum (0 for a rising curve)."""
    t = torch.as_tensor(curve, dtype=torch.float64)
    if t.ndim != 1 or len(t) == 0:
        raise ValueError(f"curve must be a non-empty 1-d list, got shape {tuple(t.shape)}")
    return (t.cummax(0).values - t).max().item()


def icl_falls(curves, train_bins: int) -> dict:
    """Each seed's largest fall below its running maximum (`largest_fall`) in binned
    accuracy curves (one per seed, the first `train_bins` bins inside the training
    length): {"fall_within": inside the training length, "fall_anywhere": over every
    bin}. The chapter judges "peaks then declines" from these by the book's rule
    (phaselib.claims.rule.judge), not here."""
    c = torch.as_tensor(curves, dtype=torch.float64)
    if c.ndim != 2 or c.shape[0] < 1 or not 1 <= train_bins <= c.shape[1]:
        raise ValueError(f"curves must be [seeds >= 1, bins >= train_bins={train_bins}], "
                         f"got shape {tuple(c.shape)}")
    return {"fall_within": [largest_fall(row[:train_bins]) for row in c],
            "fall_anywhere": [largest_fall(row) for row in c]}
