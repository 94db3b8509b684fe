"""The F7 experiment: train one tagged model on the tag task and measure it; the sweep.

Book: Part II, "F7 Preconditioning decays with depth". `run_cell` trains one
`TaggedTransformer` of `phaselib.preconditioning` (one seed, one depth, one variant:
input, every or slots) and measures it with `measure_tag` and `steps_to_loss`;
`sweep` is the precomputed sweep `f7` (`python -m phaselib.sweep f7`).
`train_tagged` is its training half, for a chapter that needs the model itself, and
`erased_accuracy` measures use rather than legibility: the task's accuracy when the
tag's class means are erased from the input of one block (a causal erasure).
Every sweep model is trained at each rate of `RATES`; `validation_loss`, on sequences
of their own, chooses among them (never the test set that `measure_tag` scores).
"""

from __future__ import annotations

import torch

from .preconditioning import (VARIANTS, TaggedConfig, TaggedTransformer, measure_tag,
                              steps_to_loss, tag_perms, tag_task_batch)
from .rates import best_rows
from .taps import capture
from .train import TrainConfig, train

__all__ = ["train_tagged", "run_cell", "erased_accuracy", "validation_loss", "sweep",
           "RATES", "best_rate_cells"]

RATES = (1e-3, 3e-3, 1e-2)     # each sweep model's rate is its best of these


def train_tagged(seed: int, depth: int, variant: str, *, steps: int = 400,
                 n_embd: int = 32, vocab: int = 16, n_tags: int = 4, T: int = 16,
                 batch: int = 32, lr: float = 3e-3, device: str = "cpu"):
    """(model, perms [n_tags, vocab], history): one TaggedTransformer trained on the tag
    task, as `run_cell` trains it.

    Fair by construction: the data (batches and permutations) depend on `seed` alone and
    the shared weights start from the same draw, so variants of one seed see the same
    batches in the same order for the same number of steps; only the tag's route differs.
    """
    perms = tag_perms(n_tags, vocab, seed=1000 + seed)
    cfg = TaggedConfig(vocab_size=vocab, n_tags=n_tags, variant=variant, block_size=T,
                       n_layer=depth, n_embd=n_embd)
    torch.manual_seed(seed)
    model = TaggedTransformer(cfg).to(device)
    gen = torch.Generator().manual_seed(seed)
    hist = train(model, lambda step: tag_task_batch(batch, T, perms, generator=gen,
                                                    device=device),
                 TrainConfig(steps=steps, lr=lr, progress=False))
    return model, perms, hist


def run_cell(seed: int, depth: int, variant: str, *, steps: int = 400, n_embd: int = 32,
             vocab: int = 16, n_tags: int = 4, T: int = 16, batch: int = 32,
             lr: float = 3e-3, solve_loss: float = 0.1, device: str = "cpu") -> dict:
    """Train one TaggedTransformer on the tag task (`train_tagged`) and measure it
    (`measure_tag`), with `solve_step` = steps_to_loss(training losses, solve_loss)."""
    model, perms, hist = train_tagged(seed, depth, variant, steps=steps, n_embd=n_embd,
                                      vocab=vocab, n_tags=n_tags, T=T, batch=batch,
                                      lr=lr, device=device)
    res = measure_tag(model, perms, T=T, seed=10_000 + seed)
    every = max(1, steps // 50)
    res.update(params=model.num_params(), solve_step=steps_to_loss(hist.loss, solve_loss),
               train_loss=hist.loss[::every],
               train_step=hist.step[::every],
               val_loss=validation_loss(model, perms, T=T, seed=30_000 + seed))
    return res


@torch.no_grad()
def validation_loss(model: TaggedTransformer, perms: torch.Tensor, *, n_seq: int = 256,
                    T: int = 16, seed: int = 0) -> float:
    """The task loss on n_seq fresh sequences of generator `seed`: what chooses a
    model's learning rate. run_cell draws them from seed 30_000 + its seed, apart from
    the training batches (seed), the test set (10_000 + seed) and the erasure's
    sequences (20_000 + seed)."""
    dev = next(model.parameters()).device
    (idx, tags), y = tag_task_batch(n_seq, T, perms,
                                    generator=torch.Generator().manual_seed(seed),
                                    device=dev)
    was = model.training
    model.eval()
    try:
        return float(model((idx, tags), y)[1])
    finally:
        model.train(was)


def best_rate_cells(rows) -> dict:
    """{(seed, depth, variant): the row of that model at its best rate}: of the sweep's
    rows (params | result, e.g. `SweepResults.results()`), per model the one with the
    lowest `val_loss` (`rates.best_rows`). Raises ValueError when a model lacks a rate
    of RATES."""
    return best_rows(rows, ("seed", "depth", "variant"), "val_loss", RATES)


@torch.no_grad()
def erased_accuracy(model: TaggedTransformer, perms: torch.Tensor, layer: int, *,
                    sham: bool = False, n_seq: int = 512, T: int = 16,
                    seed: int = 0) -> float:
    """Task accuracy with the tag's class means erased from what block `layer` reads.

    The class means mu_k of that input (over sequences with tag k and all positions) are
    measured on one batch of n_seq fresh sequences; on a second batch each stream then
    becomes x - (mu_tag - mu), which removes the tag's linear trace there, and the
    accuracy over targets t >= 1 is returned. layer = n_layer erases nothing (the plain
    accuracy). sham=True erases the class means of a random labelling of the sequences
    into as many classes instead, one that carries no information: the cost of the
    erasure itself, the instrument's control."""
    L = model.cfg.n_layer
    if not 0 <= layer <= L:
        raise ValueError(f"layer must be in [0, n_layer={L}], got {layer}")
    K = perms.shape[0]
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    (ridx, rtags), _ = tag_task_batch(n_seq, T, perms, generator=g, device=dev)
    (idx, tags), y = tag_task_batch(n_seq, T, perms, generator=g, device=dev)
    rlab, lab = rtags, tags
    if sham:
        rlab = torch.randint(K, rtags.shape, generator=g).to(dev)
        lab = torch.randint(K, tags.shape, generator=g).to(dev)
    was = model.training
    model.eval()
    try:
        if layer == L:
            logits, _ = model((idx, tags))
        else:
            with capture(model, [f"block_in.{layer}"]) as taps:
                model((ridx, rtags))
            X = taps[f"block_in.{layer}"]                             # [n, T, C]
            mu = X.mean((0, 1))
            shift = torch.stack([X[rlab == k].mean((0, 1)) - mu for k in range(K)])
            h = model.block_in[layer].register_forward_hook(
                lambda _m, _i, out: out - shift[lab][:, None])
            try:
                logits, _ = model((idx, tags))
            finally:
                h.remove()
    finally:
        model.train(was)
    keep = y >= 0
    return float((logits.argmax(-1)[keep] == y[keep]).double().mean())


def sweep(seeds=(0, 1, 2, 3, 4)):
    """The F7 sweep: every seed x depth (2, 4, 8) x variant x rate of RATES, with
    run_cell's other defaults; the chapter keeps each model at its best rate by
    `validation_loss` (`best_rate_cells`). Five seeds: at three, the intervals of its
    verdicts straddled their thresholds."""
    from .sweep import SweepSpec

    cells = [{"seed": s, "depth": d, "variant": v, "lr": lr}
             for s in seeds for d in (2, 4, 8) for v in VARIANTS for lr in RATES]
    return SweepSpec(name="f7", out="book/part2/results/f7.json", cells=cells, run=run_cell,
                     description="F7: tag task loss/accuracy and tag probes by layer, "
                                 "input vs every-layer vs slots, depths 2/4/8")
