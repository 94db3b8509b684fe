"""The F7 experiment: train one tagged model on the tag task and measure it; the sweep.

Book: Part II, "F7 Preconditioning decays with depth". `run_cell` trains one
`TaggedTransformer` of `phaselib.preconditioning` (one seed, one depth, one variant:
input, every or slots) and measures it with `measure_tag` and `steps_to_loss`;
`sweep` is the precomputed sweep `f7` (`python -m phaselib.sweep f7`).
"""

from __future__ import annotations

import torch

from .preconditioning import (VARIANTS, TaggedConfig, TaggedTransformer, measure_tag,
                              steps_to_loss, tag_perms, tag_task_batch)
from .train import TrainConfig, train

__all__ = ["run_cell", "sweep"]


def run_cell(seed: int, depth: int, variant: str, *, steps: int = 400, n_embd: int = 32,
             vocab: int = 16, n_tags: int = 4, T: int = 16, batch: int = 32,
             lr: float = 3e-3, solve_loss: float = 0.1, device: str = "cpu") -> dict:
    """Train one TaggedTransformer on the tag task and measure it (`measure_tag`), with
    `solve_step` = steps_to_loss(training losses, solve_loss).

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
    res = measure_tag(model, perms, T=T, seed=10_000 + seed)
    every = max(1, steps // 50)
    res.update(params=model.num_params(), solve_step=steps_to_loss(hist.loss, solve_loss),
               train_loss=hist.loss[::every],
               train_step=hist.step[::every])
    return res


def sweep(seeds=(0, 1, 2)):
    """The F7 sweep: every seed x depth (2, 4, 8) x variant, with run_cell's defaults."""
    from .sweep import SweepSpec

    cells = [{"seed": s, "depth": d, "variant": v}
             for s in seeds for d in (2, 4, 8) for v in VARIANTS]
    return SweepSpec(name="f7", out="book/part2/results/f7.json", cells=cells, run=run_cell,
                     description="F7: tag task loss/accuracy and tag probes by layer, "
                                 "input vs every-layer vs slots, depths 2/4/8")
