"""The F4 experiments: one block-local model per partition, the same-characters measure,
and the sweep `f4`.

Book: Part II, "F4 Geometric, not semantic partitions". `run_f4` trains the block-local
model on one partition of the training text (`phaselib.partitions`), scores the
held-out text under the same kind of partition, and scores a validation slice of the
held-out text (after the scored part) to choose its rate; `same_chars_gap` compares a
control and an aligned partition on the same characters near a boundary of either;
`sweep` is `python -m phaselib.sweep f4`: every partition at F4_SWEEP_STEPS, five
times the chapter's live budget, at its best rate of F4_RATES.
"""

from __future__ import annotations

import numpy as np
import torch

from .partitions import (PARTITIONS, budget_batch, loss_by_char, loss_by_offset,
                         near_boundary, partition_starts)

__all__ = ["F4_DEFAULTS", "F4_RATES", "F4_SWEEP_STEPS", "VAL_CHARS", "run_f4",
           "SAME_CHARS_PAIR", "SAME_CHARS_PAIRS", "SAME_CHARS_HEAD", "same_chars_gap",
           "sweep", "SAME_SEEDS", "SAME_OUT", "SAME_RULES", "sweep_same"]

F4_DEFAULTS = dict(block=64, n_layer=2, n_head=2, n_embd=64, steps=250, batch=32,
                   lr=3e-3, eval_chars=60_000)
F4_SWEEP_STEPS = 1250                  # the sweep's budget: five times the live run's
F4_RATES = (1e-3, 3e-3, 1e-2)          # each partition's rate is its best of these
VAL_CHARS = 20_000                     # the validation slice, after the scored text

# The pair the same-characters measure compares (control first), and how many
# characters after a boundary of either partition it scores.
SAME_CHARS_PAIR = ("line lengths, shuffled", "line-aligned")
SAME_CHARS_PAIRS = {"line": SAME_CHARS_PAIR,
                    "word": ("word lengths, shuffled", "word-aligned")}
SAME_CHARS_HEAD = 8
# The pairs on the same characters, on new seeds (`sweep_same`, sweep `f4-same`),
# registered 2026-12-07 (stop 54) before any of its cells ran. A referee found the word
# part judged over the whole text, whose gain includes one far from any boundary, where
# the cut cannot matter; the same-characters measure isolates the cut, but a rule on it
# read from the f4 sweep's seeds would be chosen after they were seen. So: new seeds
# (SAME_SEEDS, none run before), both pairs, each partition at seed 0's best rate in
# the f4 sweep and the sweep's budget. The new part judges the word pair; the line
# pair's gap on the same characters and seeds is its positive control.
SAME_SEEDS = (5, 6, 7, 8, 9)
SAME_OUT = "book/part2/results/f4_same.json"
SAME_RULES = {"f4-misaligned": {"word starts, same characters": {
    "effect": "held-out loss on the characters near a boundary of either partition, "
              "shuffled-length control minus word-aligned, the same-characters "
              "sweep's new seeds; control: the line pair's same gap on those seeds",
    "unit": "nats per character", "threshold": 0.01, "direction": 1}}}


def run_f4(seed: int, partition: str, device="cpu", by_char: bool = False,
           out: str | None = None, **hp) -> dict:
    """Train the F4 block-local model on one partition of the training text, with
    batch * block characters per step, and score the held-out text under the same kind
    of partition: {"loss" (nats per character), "loss_sum" and "count" by offset,
    "near_loss" (for each pair of SAME_CHARS_PAIRS holding this partition, the mean loss
    on the characters within SAME_CHARS_HEAD of a block of either partition of the
    pair), "val_loss" (on the VAL_CHARS after the scored text, the split that chooses
    the rate), "lr"}; with `by_char`, also "char_loss" ([n] per held-out character,
    `loss_by_char`) and "starts" (the held-out partition). `lr` may be "best": the
    seed-0 rate of this partition with the lowest `val_loss` in the results file `out`.
    """
    from .data import CharTokenizer, load_shakespeare, split_text
    from .rates import stored_best_rate
    from .train import TrainConfig, train
    from .transformer import TinyTransformer, TransformerConfig

    p = {**F4_DEFAULTS, **hp}
    if p["lr"] == "best":
        if out is None:
            raise ValueError("lr='best' needs out, the results file of the rate cells")
        p["lr"] = stored_best_rate(out, "val_loss", F4_RATES, partition=partition,
                                   steps=p["steps"])
    if not isinstance(p["lr"], float) or p["lr"] <= 0:
        raise ValueError(f"lr must be a positive float or 'best', got {p['lr']!r}")
    text = load_shakespeare()
    train_text, held_all = split_text(text)
    held_text = held_all[: p["eval_chars"]]
    val_text = held_all[p["eval_chars"]: p["eval_chars"] + VAL_CHARS]
    tok = CharTokenizer(text)
    bos = tok.vocab_size
    d_train, d_held, d_val = (tok.encode(t) for t in (train_text, held_text, val_text))
    st_train = partition_starts(train_text, p["block"], partition, seed=seed)
    st_held = partition_starts(held_text, p["block"], partition, seed=seed)
    st_val = partition_starts(val_text, p["block"], partition, seed=seed)
    cfg = TransformerConfig(vocab_size=bos + 1, block_size=2 * p["block"],
                            n_layer=p["n_layer"], n_head=p["n_head"],
                            n_embd=p["n_embd"])
    torch.manual_seed(seed)
    model = TinyTransformer(cfg).to(device)
    g = torch.Generator().manual_seed(seed + 1)
    n_chars = p["batch"] * p["block"]

    def get_batch(step):
        x, y = budget_batch(d_train, st_train, n_chars, bos, generator=g)
        return x.to(device), y.to(device)

    train(model, get_batch, TrainConfig(steps=p["steps"], lr=p["lr"], progress=False))
    tot, cnt = loss_by_offset(model, d_held, st_held, bos, max_offset=2 * p["block"])
    vtot, vcnt = loss_by_offset(model, d_val, st_val, bos, max_offset=2 * p["block"])
    char_loss = loss_by_char(model, d_held, st_held, bos)
    near = {}
    for key, pair in SAME_CHARS_PAIRS.items():
        if partition in pair:
            both = [st_held if name == partition else
                    partition_starts(held_text, p["block"], name, seed=seed)
                    for name in pair]
            mask = near_boundary(len(char_loss), both, SAME_CHARS_HEAD)
            near[key] = float(char_loss[mask].mean())
    res = {"loss": float(tot.sum() / cnt.sum()), "loss_sum": tot.tolist(),
           "count": cnt.tolist(), "n_blocks_train": int(len(st_train)),
           "near_loss": near, "val_loss": float(vtot.sum() / vcnt.sum()),
           "lr": p["lr"]}
    if by_char:
        res["char_loss"] = char_loss
        res["starts"] = st_held
    return res


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


def sweep(seeds=(0, 1, 2, 3, 4), steps: int = F4_SWEEP_STEPS, device: str = "cpu",
          out: str = "book/part2/results/f4.json"):
    """The F4 sweep: every partition's block-local model at `steps`, seed 0 at every
    rate of F4_RATES, then the other seeds at seed 0's best rate by validation loss
    (`rates.rates_then_best`). Each cell also holds its losses on the characters near a
    boundary of either partition of its pairs ("near_loss"), so the same-characters
    measure needs no models of its own. Five seeds: at three, the word pair's interval
    over the whole text straddled the verdict's threshold."""
    from functools import partial

    from .rates import rates_then_best
    from .sweep import SweepSpec

    base = [{"partition": name, "steps": int(steps)} for name in PARTITIONS]
    return SweepSpec(name="f4", out=out,
                     cells=rates_then_best(base, F4_RATES, seeds, out),
                     run=partial(run_f4, device=device),
                     description="F4: block-local char models on geometric, word- and "
                                 "line-aligned partitions and their shuffled-length "
                                 "controls, equal characters per step, each at its "
                                 "best rate of three by validation loss, held-out "
                                 "loss")


def sweep_same(seeds=SAME_SEEDS, device: str = "cpu"):
    """Sweep `f4-same` (registered with SAME_RULES before its runs; see their comment):
    the four partitions of SAME_CHARS_PAIRS on `seeds`, each at seed 0's best rate in
    the f4 sweep, F4_SWEEP_STEPS steps."""
    from functools import partial

    from .sweep import SweepSpec

    names = [n for pair in SAME_CHARS_PAIRS.values() for n in pair]
    cells = [{"seed": s, "partition": n, "steps": F4_SWEEP_STEPS, "lr": "best",
              "out": "book/part2/results/f4.json"} for s in seeds for n in names]
    return SweepSpec(name="f4-same", out=SAME_OUT, cells=cells,
                     run=partial(run_f4, device=device),
                     description="F4: the word and line pairs on new seeds, each "
                                 "partition at its best rate, scored on the same "
                                 "characters near a boundary of either partition")
