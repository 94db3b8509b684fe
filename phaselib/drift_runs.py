"""F6's runs: train one char model, take every drift measurement of it, the sweep.

Book: Part II, "F6 In-place evolution". `train_char_model` trains a TinyTransformer on
one play; `measure_drift` applies the measurements of `phaselib.drift` (cosine to x_0,
probes by layer, an injected tag, the logit lens, late correction, token bombs) to the
held-out windows of `drift_windows`; `run_cell` is both, one cell of the sweep `f6`
(`python -m phaselib.sweep f6`).
"""

from __future__ import annotations

import torch

from .drift import (bomb_effect, cosine, drift_windows, inject, late_correction,
                    probe_by_layer, residual_streams, tag_vectors)
from .transformer import TinyTransformer

__all__ = ["train_char_model", "measure_drift", "run_cell", "sweep", "CONTEXT_SEEDS",
           "CONTEXT_OUT", "CONTEXT_RULES", "CONTEXT_LARGE", "CONTEXT_LARGE_RULES",
           "run_context_cell", "sweep_context"]

# What a bomb does to the context (`sweep_context`, sweep `f6-context`), registered
# 2026-12-07 (stop 54) before any of its cells ran. A referee found f6-bomb-dominates
# judged on the share of windows predicting the bomb character, where the seed's
# consequence is that the context is forgotten, and its control planted at the last
# position while the effect is read eight characters later. The new part reads the
# next-character loss at the last position, a bomb of eight copies of the commonest
# letter minus the same span of other real text, eight real characters between it and
# the prediction; its positive control, at the same gap, replaces every character
# before those eight (the context lost, the local characters kept), minus the same
# span of other text. The chapter's model on CONTEXT_SEEDS, each trained as the f6
# sweep trains it.
CONTEXT_SEEDS = (0, 1, 2, 3, 4)
CONTEXT_OUT = "book/part2/results/f6_context.json"
CONTEXT_RULES = {"f6-bomb-dominates": {"forgets context": {
    "effect": "next-character loss at the last position, a bomb of eight copies of the "
              "commonest letter minus the same span of other real text, eight real "
              "characters before the prediction, mean over held-out windows; control: "
              "every character before those eight replaced by other text, minus the "
              "same span",
    "unit": "nats", "threshold": 0.1, "direction": 1}}}
# Registered 2026-12-07 (stop 54), after the cells above had been read and before any
# run of these: the chapter's model barely reads eight characters back (removing the
# context costs it less than the threshold), so it cannot test the claim. The same
# measure on a model that may read more of its context: a window of 64, width 64,
# trained CONTEXT_LARGE["steps"] steps, the same seeds; a part of its own, with the same
# threshold and control. If its control fails too, the part is inconclusive again.
CONTEXT_LARGE = {"T": 64, "n_embd": 64, "steps": 1500}
CONTEXT_LARGE_RULES = {"f6-bomb-dominates": {"forgets context, a larger model": {
    "effect": "the same next-character loss difference as 'forgets context', on a char "
              "model with a window of 64 and width 64 trained for 1500 steps; control: "
              "every character before those eight replaced by other text, minus the "
              "same span",
    "unit": "nats", "threshold": 0.1, "direction": 1}}}


def train_char_model(seed: int, *, n_layer: int = 4, n_embd: int = 48, n_head: int = 4,
                     T: int = 32, steps: int = 400, batch: int = 32, lr: float = 5e-3,
                     play: str = "romeo-and-juliet", device: str = "cpu"):
    """(model, tokenizer, held-out tokens [N], final held-out loss): a TinyTransformer
    trained with phaselib.train on one play's first 90% (weights and batches from
    `seed`), scored on the last 10%."""
    from .data import CharTokenizer, load_shakespeare, random_windows, split_text
    from .train import TrainConfig, evaluate_loss, train
    from .transformer import TransformerConfig

    text = load_shakespeare([play])
    tok = CharTokenizer(text)
    tr, va = (tok.encode(s) for s in split_text(text))
    torch.manual_seed(seed)
    model = TinyTransformer(TransformerConfig(vocab_size=tok.vocab_size, block_size=T,
                                              n_layer=n_layer, n_head=n_head,
                                              n_embd=n_embd)).to(device)
    gen = torch.Generator().manual_seed(seed)
    hist = train(model, lambda step: random_windows(tr, T, batch, generator=gen,
                                                    device=device),
                 TrainConfig(steps=steps, lr=lr, progress=False),
                 eval_fn=lambda m: evaluate_loss(m, va.to(device), T))
    return model, tok, va, hist.eval[-1]


@torch.no_grad()
def measure_drift(model: TinyTransformer, tok, va: torch.Tensor, *, seed: int = 0,
                  n_windows: int = 256, n_probe: int = 2000, n_tags: int = 4,
                  bomb_char: str = "e", span: int = 8) -> dict:
    """Every F6 measurement of one trained char model on held-out windows (`seed`):
    "cos" [L+1] mean cosine of x_l to x_0; "probe_token" / "probe_tag" [L+1] held-out
    probe accuracy of the input token / of an injected tag (one of n_tags random
    vectors of the mean length of x_0, added at the input); "lens" (lens_stats);
    "correction" (late_correction, the `span` tokens before the last replaced by other
    text); "bomb" (bomb_effect with `bomb_char`)."""
    from .lens import lens_stats, logit_lens

    dev = next(model.parameters()).device
    x, y, other, tags = drift_windows(va, model.cfg.block_size, n_windows=n_windows,
                                      n_tags=n_tags, seed=seed, device=dev)
    streams, _ = residual_streams(model, x)
    out = {"cos": cosine(streams, streams[:1].expand_as(streams)).mean((1, 2)).tolist(),
           "probe_token": probe_by_layer(streams, x, n=n_probe, seed=seed)}
    norm = float(streams[0].norm(dim=-1).mean())
    vecs = tag_vectors(n_tags, model.cfg.n_embd, norm, seed=seed).to(dev)
    with inject(model, vecs[tags][:, None, :]):
        s_tag, _ = residual_streams(model, x)
    out["probe_tag"] = probe_by_layer(s_tag, tags[:, None].expand_as(x).contiguous(),
                                      n=n_probe, seed=seed)
    out["lens"] = lens_stats(logit_lens(model, streams), y)
    wrong = x.clone()
    wrong[:, -1 - span:-1] = other[:, -1 - span:-1]
    out["correction"] = late_correction(model, x, wrong)
    out["bomb"] = bomb_effect(model, x, other, tok.stoi[bomb_char], length=span)
    return out


def run_cell(seed: int, *, n_layer: int = 4, n_embd: int = 48, steps: int = 400,
             device: str = "cpu") -> dict:
    """Train one char model (`train_char_model`) and measure it (`measure_drift`)."""
    model, tok, va, loss = train_char_model(seed, n_layer=n_layer, n_embd=n_embd,
                                            steps=steps, device=device)
    return {"val_loss": loss, **measure_drift(model, tok, va, seed=seed)}


def sweep(seeds=(0, 1, 2)):
    """The F6 sweep: the char model's drift measurements for every seed."""
    from .sweep import SweepSpec

    return SweepSpec(name="f6", out="book/part2/results/f6.json",
                     cells=[{"seed": s} for s in seeds], run=run_cell,
                     description="F6: cosine drift, token/tag probes, logit lens, late "
                                 "correction and token bombs by layer, 4-layer char "
                                 "model")


def run_context_cell(seed: int, *, size: str = "chapter", bomb_char: str = "e",
                     span: int = 8, gap: int = 8) -> dict:
    """One cell of `f6-context`: the chapter's char model trained as `run_cell` trains
    it (size "chapter"), or the larger one of CONTEXT_LARGE (size "large"), then
    `context_loss` on its held-out windows (`drift_windows`, `seed`)."""
    from .drift_controls import context_loss

    if size not in ("chapter", "large"):
        raise ValueError(f"size must be 'chapter' or 'large', got {size!r}")
    model, tok, va, loss = train_char_model(
        seed, **(CONTEXT_LARGE if size == "large" else {}))
    x, y, other, _ = drift_windows(va, model.cfg.block_size, seed=seed)
    return {"val_loss": loss, "gap": gap, "length": span,
            **context_loss(model, x, y[:, -1], other, tok.stoi[bomb_char],
                           length=span, gap=gap)}


def sweep_context(seeds=CONTEXT_SEEDS):
    """Sweep `f6-context` (registered with CONTEXT_RULES before its runs; see their
    comment)."""
    from .sweep import SweepSpec

    cells = [{"seed": s} for s in seeds]
    cells += [{"seed": s, "size": "large"} for s in seeds]       # CONTEXT_LARGE_RULES
    return SweepSpec(name="f6-context", out=CONTEXT_OUT, cells=cells,
                     run=run_context_cell,
                     description="F6: next-character loss with a token bomb, with "
                                 "other text in its place, and with the context "
                                 "removed, eight characters before the prediction")
