"""A structural tag given at the input, re-injected at every layer, or kept in slots.

Book: Part II, "F7 Preconditioning decays with depth". Three tasks, `TASKS`:

- "previous" (`tag_task_batch`): each sequence has one of K tags and random tokens; the
  target at t >= 1 is perms[tag, x[t-1]]. The tag is added at every position, so a
  model may apply it to a token before any attention (at t - 1) and copy the answer.
- "lookup" (`lookup_task_batch`): the first T/2 tokens are a context of values, the
  rest are queries, each naming a context position i; the target at a query is
  perms[tag, ctx[i]], and the tag is added at the query positions only
  (`TaggedConfig.tag_from`). The value reaches the query only through attention, so
  the tag can act only after that step (in block 0's MLP at the earliest).
- "chain" (`chain_task_batch`): as "lookup", but the context holds pointers to its own
  positions and the target is perms[tag, ctx[ctx[i]]]: two attention steps before the
  tag can act (in block 1's MLP at the earliest), so it must cross block 0 first.

The three variants of `TaggedTransformer` share TinyTransformer's blocks and differ only
in how the tag reaches them, with e_tag = wtag(tag) [C] (zero at positions before
`tag_from`):

    input:  x_0 = wte(x) + wpe(t) + e_tag;  x_{l+1} = block_l(x_l)
    every:  as input, and block l >= 1 reads x_l + e_tag (the same table, re-added)
    slots:  as input, and every block l reads x_l + R_l r, with
            r = DecisionSlots(ln(x_0)) the read of K gated slots written from the first
            stream (a protected channel: residual updates never touch it)

`every` has exactly the parameters of `input`; `slots` adds the slot module and one
C x C read projection per layer (`num_params` counts them). `measure_tag` scores a model
(held-out loss, the tag's linear readability by layer), `steps_to_loss` a training
curve. The tasks live in `phaselib.preconditioning_tasks` (re-exported here); the
experiment that trains and measures one model, and the sweeps, in
`phaselib.preconditioning_runs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .preconditioning_tasks import (QUERY_TASKS, TASKS, chain_task_batch,
                                    lookup_task_batch, tag_perms, tag_task_batch,
                                    task_shape)
from .probes import fit_linear_probe, fit_logistic_probe
from .slots import DecisionSlots
from .taps import Tap, capture
from .transformer import Block, TransformerConfig

__all__ = ["VARIANTS", "TASKS", "QUERY_TASKS", "tag_perms", "tag_task_batch",
           "lookup_task_batch", "chain_task_batch", "task_shape", "TaggedConfig",
           "TaggedTransformer", "tag_share", "steps_to_loss", "measure_tag"]

VARIANTS = ("input", "every", "slots")


@dataclass
class TaggedConfig:
    vocab_size: int
    n_tags: int
    variant: str = "input"     # one of VARIANTS
    block_size: int = 32
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    n_slots: int = 4           # slots variant only
    tag_from: int = 0          # the tag reaches positions t >= tag_from only

    def __post_init__(self):
        for name in ("vocab_size", "n_tags", "block_size", "n_layer", "n_head",
                     "n_embd", "n_slots"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.tag_from, bool) or not isinstance(self.tag_from, int) or \
                not 0 <= self.tag_from < self.block_size:
            raise ValueError(f"tag_from must be an int in [0, block_size="
                             f"{self.block_size}), got {self.tag_from!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head "
                             f"({self.n_head})")


class TaggedTransformer(nn.Module):
    """TinyTransformer's blocks with a per-sequence tag, routed as `cfg.variant` says.

    forward((idx [B, T] long, tags [B] long), targets [B, T] | None)
    -> (logits [B, T, V], loss | None); targets -1 are ignored. Causal in idx.
    Taps: `tap_embed` (x_0), `block_in.l` (what block l reads),
    `blocks.l.tap_resid_post` (what it writes).
    """

    def __init__(self, cfg: TaggedConfig):
        super().__init__()
        self.cfg = cfg
        C = cfg.n_embd
        tcfg = TransformerConfig(vocab_size=cfg.vocab_size, block_size=cfg.block_size,
                                 n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=C)
        self.wte = nn.Embedding(cfg.vocab_size, C)
        self.wpe = nn.Embedding(cfg.block_size, C)
        self.wtag = nn.Embedding(cfg.n_tags, C)
        self.tap_embed = Tap()  # [B, T, C] x_0, the tag included
        self.block_in = nn.ModuleList(Tap() for _ in range(cfg.n_layer))  # [B, T, C]
        self.blocks = nn.ModuleList(Block(tcfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(C, bias=False)
        self.head = nn.Linear(C, cfg.vocab_size, bias=False)
        self.apply(self._init)
        # The slot channel is built after the shared weights are drawn, so that under
        # one seed the variants start those from the same values.
        self.slots = None
        if cfg.variant == "slots":
            self.ln_s = nn.LayerNorm(C, bias=False)
            self.slots = DecisionSlots(C, n_slots=cfg.n_slots)  # its own init (std 0.02)
            self.read_proj = nn.ModuleList(nn.Linear(C, C, bias=False)
                                           for _ in range(cfg.n_layer))
            self.read_proj.apply(self._init)
        self.tap_read = Tap()  # [B, T, C] the slots' read (slots variant)
        # 1: the tag is given; 0 withholds it (e_tag zero in every route). A training-time
        # switch, for the planted delay of F7's delay sweep (`train_tagged(withhold=)`).
        self.tag_gate = 1.0

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Every parameter, the position table included."""
        return sum(p.numel() for p in self.parameters())

    def _check(self, inp, targets):
        if not (isinstance(inp, (tuple, list)) and len(inp) == 2):
            raise TypeError("inp must be a pair (idx [B, T] long, tags [B] long), got "
                            f"{type(inp).__name__}")
        idx, tags = inp
        for name, t, nd in (("idx", idx, 2), ("tags", tags, 1)):
            if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.dim() != nd:
                raise TypeError(f"{name} must be a long tensor with {nd} dimension(s), got "
                                f"{getattr(t, 'dtype', type(t).__name__)} "
                                f"{tuple(getattr(t, 'shape', ()))}")
        B, T = idx.shape
        if tags.shape != (B,):
            raise ValueError(f"tags must have shape [B] = [{B}], got {tuple(tags.shape)}")
        if not 1 <= T <= self.cfg.block_size:
            raise ValueError(f"idx must have 1 <= T <= block_size={self.cfg.block_size} "
                             f"tokens, got T={T}")
        if tags.min() < 0 or tags.max() >= self.cfg.n_tags:
            raise ValueError(f"tags must lie in [0, n_tags={self.cfg.n_tags}), got "
                             f"[{int(tags.min())}, {int(tags.max())}]")
        if targets is not None and targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got "
                             f"{tuple(targets.shape)}")
        return idx, tags

    def forward(self, inp, targets: torch.Tensor | None = None):
        idx, tags = self._check(inp, targets)
        pos = torch.arange(idx.shape[1], device=idx.device)
        e_tag = self.wtag(tags)[:, None, :]                        # [B, 1, C]
        if self.tag_gate != 1.0:
            e_tag = e_tag * self.tag_gate
        if self.cfg.tag_from:                                      # [B, T, C]
            e_tag = e_tag * (pos >= self.cfg.tag_from)[None, :, None].to(e_tag.dtype)
        x = self.tap_embed(self.wte(idx) + self.wpe(pos) + e_tag)
        read = None
        if self.slots is not None:
            read = self.tap_read(self.slots(self.ln_s(x))[0])
        for l, block in enumerate(self.blocks):
            if self.cfg.variant == "every" and l > 0:
                x = x + e_tag
            if read is not None:
                x = x + self.read_proj[l](read)
            x = block(self.block_in[l](x))
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss


def tag_share(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of the variance of features [N, F] explained by the class means of labels [N]:
    sum over features of the between-class variance / the total variance, in [0, 1].
    1: the features are a function of the label; 0: the class means coincide."""
    check_float_tensor("features", features, ndim=2, shape_doc="of shape [N, F]")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or \
            labels.shape != features.shape[:1]:
        raise TypeError(f"labels must be a long tensor of shape [N] = "
                        f"[{features.shape[0]}], got {getattr(labels, 'dtype', labels)} "
                        f"{tuple(getattr(labels, 'shape', ()))}")
    X = features.detach().double()
    Xc = X - X.mean(0)
    total = Xc.pow(2).sum()
    if total == 0:
        raise ValueError("features must vary (their total variance is 0)")
    n_cls = int(labels.max()) + 1
    counts = torch.bincount(labels, minlength=n_cls).double()
    sums = torch.zeros(n_cls, X.shape[1], dtype=X.dtype).index_add_(0, labels, Xc)
    between = (sums.pow(2).sum(1) / counts.clamp(min=1)).sum()
    return float(between / total)


def steps_to_loss(losses, threshold: float, window: int = 20) -> int | None:
    """The first step s whose trailing mean loss, over steps s - window + 1 .. s, is below
    `threshold`; None if the run never gets there. losses: one float per step."""
    check_positive_int("window", window)
    losses = [float(v) for v in losses]
    run = sum(losses[:window - 1])
    for s in range(window - 1, len(losses)):
        run += losses[s]
        if run / window < threshold:
            return s
        run -= losses[s - window + 1]
    return None


@torch.no_grad()
def measure_tag(model: TaggedTransformer, perms: torch.Tensor, *, n_seq: int = 256,
                T: int = 16, n_probe: int = 2048, seed: int = 0,
                task: str = "previous") -> dict:
    """Held-out task loss and accuracy, and the tag's linear readability by layer.

    Draws n_seq fresh sequences of `task` (generator `seed`); layer 0 is x_0, layer l
    the stream after block l. For each, `probe` is fit_linear_probe's held-out accuracy
    on n_probe positions that have a target, drawn at random (positions of one sequence
    can fall on both sides of its split), `share` the tag's `tag_share` of their
    variance, and `probe_answer` the same probe for the target y_t (what the top must
    hold). With slots, `probe_read` scores the tag in the slots' read. For the query
    tasks ("lookup", "chain"), `probe_seq` and `probe_seq_train` are
    fit_logistic_probe's held-out and train accuracy for the tag at the last position,
    one row per sequence (split by sequence; the train accuracy is the probe's
    ceiling).
    """
    g = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    (idx, tags), y = TASKS[task](n_seq, T, perms, generator=g, device=dev)
    was = model.training
    model.eval()
    L = model.cfg.n_layer
    names = ["tap_embed"] + [f"blocks.{l}.tap_resid_post" for l in range(L)]
    if model.slots is not None:
        names.append("tap_read")
    with capture(model, names) as taps:
        logits, loss = model((idx, tags), y)
    model.train(was)
    keep = y >= 0
    acc = (logits.argmax(-1)[keep] == y[keep]).double().mean().item()
    pick = torch.randperm(int(keep.sum()), generator=g)[:n_probe]
    labels = tags[:, None].expand(n_seq, T)[keep][pick].cpu()
    answers = y[keep][pick].cpu()

    def feats(name):
        return taps[name][keep][pick].float().cpu()

    out = {"loss": float(loss), "acc": acc, "probe": [], "share": [], "probe_answer": []}
    for name in names[:L + 1]:
        out["probe"].append(fit_linear_probe(feats(name), labels, seed=seed))
        out["share"].append(tag_share(feats(name), labels))
        out["probe_answer"].append(fit_linear_probe(feats(name), answers, seed=seed))
    if model.slots is not None:
        out["probe_read"] = fit_linear_probe(feats("tap_read"), labels, seed=seed)
    if task in QUERY_TASKS:
        out["probe_seq"], out["probe_seq_train"] = [], []
        for name in names[:L + 1]:
            te, tr = fit_logistic_probe(taps[name][:, -1].float().cpu(), tags.cpu(),
                                        seed=seed)
            out["probe_seq"].append(te)
            out["probe_seq_train"].append(tr)
    return out
