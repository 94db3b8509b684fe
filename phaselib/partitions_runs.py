"""The F4 experiments: one block-local model per partition, the same-characters measure,
and the sweep `f4`.

Book: Part II, "F4 Geometric, not semantic partitions". `run_f4` trains the block-local
model on one partition of the training text (`phaselib.partitions`) and scores the
held-out text under the same kind of partition; `same_chars_gap` compares a control and
an aligned partition on the same characters near a boundary of either; `sweep` is
`python -m phaselib.sweep f4`.
"""

from __future__ import annotations

import numpy as np
import torch

from .partitions import (PARTITIONS, budget_batch, loss_by_char, loss_by_offset,
                         near_boundary, partition_starts)

__all__ = ["F4_DEFAULTS", "run_f4", "SAME_CHARS_PAIR", "SAME_CHARS_PAIRS",
           "SAME_CHARS_HEAD", "same_chars_gap", "sweep"]

F4_DEFAULTS = dict(block=64, n_layer=2, n_head=2, n_embd=64, steps=250, batch=32, lr=3e-3,
                   eval_chars=60_000)


def run_f4(seed: int, partition: str, device="cpu", by_char: bool = False,
           **hp) -> dict:
    """Train the F4 block-local model on one partition of the training text, with
    batch * block characters per step, and score the held-out text under the same kind
    of partition: {"loss" (nats per character), "loss_sum" and "count" by offset}; with
    `by_char`, also "char_loss" ([n] per held-out character, `loss_by_char`) and
    "starts" (the held-out partition)."""
    from .data import CharTokenizer, load_shakespeare, split_text
    from .train import TrainConfig, train
    from .transformer import TinyTransformer, TransformerConfig

    p = {**F4_DEFAULTS, **hp}
    text = load_shakespeare()
    train_text, held_text = split_text(text)
    held_text = held_text[: p["eval_chars"]]
    tok = CharTokenizer(text)
    bos = tok.vocab_size
    d_train, d_held = tok.encode(train_text), tok.encode(held_text)
    st_train = partition_starts(train_text, p["block"], partition, seed=seed)
    st_held = partition_starts(held_text, p["block"], partition, seed=seed)
    cfg = TransformerConfig(vocab_size=bos + 1, block_size=2 * p["block"], n_layer=p["n_layer"],
                            n_head=p["n_head"], n_embd=p["n_embd"])
    torch.manual_seed(seed)
    model = TinyTransformer(cfg).to(device)
    g = torch.Generator().manual_seed(seed + 1)
    n_chars = p["batch"] * p["block"]

    def get_batch(step):
        x, y = budget_batch(d_train, st_train, n_chars, bos, generator=g)
        return x.to(device), y.to(device)

    train(model, get_batch, TrainConfig(steps=p["steps"], lr=p["lr"], progress=False))
    tot, cnt = loss_by_offset(model, d_held, st_held, bos, max_offset=2 * p["block"])
    out = {"loss": float(tot.sum() / cnt.sum()), "loss_sum": tot.tolist(),
           "count": cnt.tolist(), "n_blocks_train": int(len(st_train))}
    if by_char:
        out["char_loss"] = loss_by_char(model, d_held, st_held, bos)
        out["starts"] = st_held
    return out


# The pair the same-characters measure compares (control first), and how many
# characters after a boundary of either partition it scores.
SAME_CHARS_PAIR = ("line lengths, shuffled", "line-aligned")
SAME_CHARS_PAIRS = {"line": SAME_CHARS_PAIR,
                    "word": ("word lengths, shuffled", "word-aligned")}
SAME_CHARS_HEAD = 8


def same_chars_gap(seed: int, pair=SAME_CHARS_PAIR, head_chars: int = SAME_CHARS_HEAD,
                   device="cpu", runs: dict | None = None, **hp) -> dict:
    """Control minus aligned, on the same characters: the mean held-out loss of each
    model of `pair` on the characters within the first `head_chars` of a block of
    either partition (`near_boundary`). `runs` may hold `run_f4(..., by_char=True)`
    results already computed for this seed ({partition: result}). Returns {"gap"
    (nats per character), "share" (of the held-out characters scored), "loss"
    (each model's whole held-out loss)}."""
    runs = dict(runs or {})
    for name in pair:
        if name not in runs:
            runs[name] = run_f4(seed, name, device=device, by_char=True, **hp)
    a, b = (runs[name] for name in pair)
    near = near_boundary(len(a["char_loss"]), [a["starts"], b["starts"]], head_chars)
    return {"gap": float(np.mean(a["char_loss"][near]) - np.mean(b["char_loss"][near])),
            "share": float(near.mean()), "loss": [a["loss"], b["loss"]]}


def _f4_cell(device, same_chars=None, **c):
    if same_chars is None:
        return run_f4(device=device, **c)
    if same_chars not in SAME_CHARS_PAIRS:
        raise ValueError(f"same_chars must be one of {sorted(SAME_CHARS_PAIRS)}, got "
                         f"{same_chars!r}")
    return same_chars_gap(c["seed"], SAME_CHARS_PAIRS[same_chars], device=device)


def sweep(seeds=(0, 1, 2, 3, 4), device: str = "cpu"):
    """The F4 sweep: every partition's block-local model over seeds, then the
    same-characters measure of the line pair, then of the word pair, over the same
    seeds (two models a cell). Five seeds: at three, the word pair's interval over the
    whole text straddled the verdict's threshold."""
    from functools import partial

    from .sweep import SweepSpec

    return SweepSpec(name="f4", out="book/part2/results/f4.json",
                     cells=[{"seed": s, "partition": name} for s in seeds
                            for name in PARTITIONS]
                     + [{"seed": s, "same_chars": "line"} for s in seeds]
                     + [{"seed": s, "same_chars": "word"} for s in seeds],
                     run=partial(_f4_cell, device),
                     description="F4: block-local char models on geometric, word- and "
                                 "line-aligned partitions and their shuffled-length "
                                 "controls, equal characters per step, held-out loss")
