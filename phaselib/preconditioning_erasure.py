"""Erasing the tag from what one block reads (chapter F7): the measure of use and the
planted loss.

Book: Part II, "F7 Preconditioning decays with depth". The class means of the tag, in
the stream that block l reads at the tagged positions, are measured on a reference
batch and subtracted (x - (mu_tag - mu)), which removes the tag's linear trace there
and nothing else on average. `erased_accuracies` scores the task with that erasure at
each of several blocks (with `sham`, the means of a random labelling instead: the
instrument's control); `tag_erased` keeps the erasure on for every forward inside a
`with` block, a loss of the tag planted for a probe to detect. `deepest_use` reads
erasure rows: the deepest block whose erasure still costs accuracy. Re-exported by
`phaselib.preconditioning_runs`.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .preconditioning import TASKS, TaggedTransformer
from .taps import capture

__all__ = ["erased_accuracies", "erased_accuracy", "tag_erased", "deepest_use"]


def _class_shift(X: torch.Tensor, labels: torch.Tensor, K: int) -> torch.Tensor:
    """[K, C]: the mean of X [n, T', C] over the sequences of each class of labels [n]
    and all positions, minus the mean over every sequence."""
    mu = X.mean((0, 1))
    return torch.stack([X[labels == k].mean((0, 1)) - mu for k in range(K)])


def _subtract_at(t0: int, shift: torch.Tensor, labels):
    """A forward hook that subtracts shift[labels()] from the output at positions >= t0
    (labels: a callable giving the [B] labels of the forward being run)."""
    def erase(_m, _i, out):
        out = out.clone()
        out[:, t0:] -= shift[labels()][:, None]
        return out

    return erase


@torch.no_grad()
def erased_accuracies(model: TaggedTransformer, perms: torch.Tensor, layers, *,
                      sham: bool = False, n_seq: int = 512, T: int = 16,
                      seed: int = 0, task: str = "previous") -> list[float]:
    """Task accuracy with the tag's class means erased from what block l reads, for each
    l of `layers` (one reference forward serves them all).

    The class means mu_k of that input (over sequences with tag k and all positions) are
    measured on one batch of n_seq fresh sequences of `task`, over the positions that
    receive the tag (t >= tag_from); on a second batch each stream there then becomes
    x - (mu_tag - mu), which removes the tag's linear trace, and the accuracy over the
    targets is returned. l = n_layer erases nothing (the plain accuracy). sham=True
    erases the class means of a random labelling of the sequences into as many classes
    instead, one that carries no information: the cost of the erasure itself, the
    instrument's control."""
    L = model.cfg.n_layer
    layers = list(layers)
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= L:
            raise ValueError(f"layers must be ints in [0, n_layer={L}], got {layer!r}")
    K = perms.shape[0]
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    (ridx, rtags), _ = TASKS[task](n_seq, T, perms, generator=g, device=dev)
    (idx, tags), y = TASKS[task](n_seq, T, perms, generator=g, device=dev)
    rlab, lab = rtags, tags
    if sham:
        rlab = torch.randint(K, rtags.shape, generator=g).to(dev)
        lab = torch.randint(K, tags.shape, generator=g).to(dev)
    keep = y >= 0
    t0 = model.cfg.tag_from
    was = model.training
    model.eval()
    try:
        inner = sorted({l for l in layers if l < L})
        with capture(model, [f"block_in.{l}" for l in inner]) as taps:
            if inner:
                model((ridx, rtags))
        out = []
        for layer in layers:
            if layer == L:
                logits, _ = model((idx, tags))
            else:
                shift = _class_shift(taps[f"block_in.{layer}"][:, t0:], rlab, K)
                h = model.block_in[layer].register_forward_hook(
                    _subtract_at(t0, shift, lambda: lab))
                try:
                    logits, _ = model((idx, tags))
                finally:
                    h.remove()
            out.append(float((logits.argmax(-1)[keep] == y[keep]).double().mean()))
        return out
    finally:
        model.train(was)


@contextlib.contextmanager
def tag_erased(model: TaggedTransformer, perms: torch.Tensor, layer: int, *,
               n_seq: int = 512, T: int = 16, seed: int = 0, task: str = "previous"):
    """Within the block, every forward of `model` has the tag's class means erased from
    what block `layer` reads, at the positions that receive the tag: a planted loss of
    the tag, for a probe to detect. The means are measured as `erased_accuracies`
    measures them (the first batch of n_seq sequences of generator `seed`); each
    forward's own tags pick the shift."""
    L = model.cfg.n_layer
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < L:
        raise ValueError(f"layer must be an int in [0, n_layer={L}), got {layer!r}")
    K = perms.shape[0]
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    (ridx, rtags), _ = TASKS[task](n_seq, T, perms, generator=g, device=dev)
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), capture(model, [f"block_in.{layer}"]) as taps:
            model((ridx, rtags))
    finally:
        model.train(was)
    t0 = model.cfg.tag_from
    shift = _class_shift(taps[f"block_in.{layer}"][:, t0:], rtags, K)
    current = {}

    def remember(_m, args):                  # each forward's own tags pick the shift
        current["tags"] = args[0][1]

    hooks = [model.register_forward_pre_hook(remember),
             model.block_in[layer].register_forward_hook(
                 _subtract_at(t0, shift, lambda: current["tags"]))]
    try:
        yield model
    finally:
        for h in hooks:
            h.remove()


def erased_accuracy(model: TaggedTransformer, perms: torch.Tensor, layer: int, *,
                    sham: bool = False, n_seq: int = 512, T: int = 16,
                    seed: int = 0, task: str = "previous") -> float:
    """`erased_accuracies` at one layer: the task accuracy with the tag's class means
    erased from what block `layer` reads (layer = n_layer: nothing erased)."""
    L = model.cfg.n_layer
    if not 0 <= layer <= L:
        raise ValueError(f"layer must be in [0, n_layer={L}], got {layer}")
    return erased_accuracies(model, perms, [layer], sham=sham, n_seq=n_seq, T=T,
                             seed=seed, task=task)[0]


def deepest_use(erased, margin: float = 0.05) -> list[int]:
    """Per row of `erased` ([runs, L + 1]: the accuracies of `erased_accuracies` at
    layers 0..L, the last erasing nothing), the deepest block l whose erasure costs
    more than `margin` accuracy (untouched minus erased at l), or -1 where none does."""
    erased = np.asarray(erased, dtype=float)
    if erased.ndim != 2 or erased.shape[1] < 2:
        raise ValueError(f"erased must be [runs, L + 1] with L >= 1, got shape "
                         f"{erased.shape}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0 (accuracy), got {margin!r}")
    cost = erased[:, -1:] - erased[:, :-1]
    return [int(np.nonzero(c > margin)[0].max()) if (c > margin).any() else -1
            for c in cost]
