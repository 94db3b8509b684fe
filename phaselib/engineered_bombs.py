"""F5's retrieval heads against engineered bombs: every distractor the one token that
takes the most weight from the value.

Book: Part II, "F5 Dynamic context collapse". The chapter's token-bomb verdict reads the
head with random distractors. A bomb built to starve the value is one the head itself
scores high: `worst_bomb` tries each distractor token as the whole context (the value
kept) and returns the one under which the value keeps the least weight at a given
length; `bomb_weights` reads the value's weight at each length with every distractor
that token. `run_bomb_cell` trains one of the chapter's three heads exactly as the f5
sweep does (`context_collapse.run_cell`) and measures both; `sweep` is `f5-bombs`.

Registered 2026-12-07 (stop 54) before any of its cells ran. A referee found the
verdict's distractors random, where the seed speaks of bombs; the new parts (BOMB_RULES)
ask whether the two heads that keep their weight against random distractors (trained
at mixed lengths; the s log n scale) keep it against the worst single token, judged by
the same ratio and threshold as the verdict's other parts. For a null (weight kept),
the positive control is the fixed-gap head under the same bombs.
"""

from __future__ import annotations

import torch

from ._checks import check_positive_int
from .context_collapse import NEEDLE_DEFAULTS, train_needle
from .taps import capture
from .tasks import needle_batch
from .transformer import TinyTransformer

__all__ = ["HEADS", "BOMB_SEEDS", "BOMB_LENGTHS", "BOMB_OUT", "BOMB_RULES", "worst_bomb",
           "bomb_weights", "run_bomb_cell", "sweep"]

# The chapter's three heads: {name: (attn_scale, train_lengths)}, as the f5 sweep has them.
HEADS = {"fixed gap": ("standard", (32,)), "s log n": ("log_n", (32,)),
         "mixed lengths": ("standard", (8, 16, 32, 64, 128))}
BOMB_SEEDS = (0, 1, 2, 3, 4)
BOMB_LENGTHS = (32, 1024)       # the training length (the mixed heads' middle) and longest
BOMB_OUT = "book/part2/results/f5_bombs.json"
_EFFECT = ("weight kept on the value at the longest length over that at the training "
           "length, every distractor the single distractor token that takes the most "
           "weight from the value at the training length, {head}; control: the "
           "fixed-gap head under the same bombs")
BOMB_RULES = {"f5-token-bombs": {
    "engineered bombs, mixed lengths": {
        "effect": _EFFECT.format(head="plain softmax trained at mixed lengths"),
        "unit": "ratio", "threshold": 0.5, "direction": -1},
    "engineered bombs, s log n scale": {
        "effect": _EFFECT.format(head="s log n scale trained at one length"),
        "unit": "ratio", "threshold": 0.5, "direction": -1}}}


def _check_model(model) -> None:
    if not isinstance(model, TinyTransformer):
        raise TypeError(f"model must be a phaselib TinyTransformer, got "
                        f"{type(model).__name__}")


@torch.no_grad()
def bomb_weights(model: TinyTransformer, n: int, token: int | None, seed: int, *,
                 n_values: int = 8, n_distractors: int = 32, batch: int = 128) -> float:
    """The last query's mean weight on the value over `batch` contexts of n keys, every
    distractor replaced by `token` (None: the random distractors of `needle_batch`)."""
    _check_model(model)
    check_positive_int("n", n)
    if token is not None and not n_values <= token < n_values + n_distractors:
        raise ValueError(f"token must be a distractor, in [{n_values}, "
                         f"{n_values + n_distractors}), got {token!r}")
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed + 3000 + n)
    x, _ = needle_batch(batch, n, n_values, n_distractors, generator=g, device=dev)
    if token is not None:
        ctx = x[:, :-1]
        ctx[ctx >= n_values] = token
    with capture(model, ["blocks.0.attn.tap_pattern"]) as taps:
        model(x)
    w = taps["blocks.0.attn.tap_pattern"][:, 0, -1]            # [batch, n + 1]
    return float((w * (x < n_values)).sum(-1).mean())


def worst_bomb(model: TinyTransformer, n: int, seed: int, *, n_values: int = 8,
               n_distractors: int = 32) -> int:
    """The distractor token that, filling every distractor place of contexts of n keys,
    leaves the value the least weight (`bomb_weights`)."""
    tokens = range(n_values, n_values + n_distractors)
    return min(tokens, key=lambda t: (bomb_weights(model, n, t, seed, n_values=n_values,
                                                   n_distractors=n_distractors), t))


def run_bomb_cell(seed: int, head: str, device: str = "cpu") -> dict:
    """One cell of `f5-bombs`: the head `head` (a key of HEADS) trained as the f5 sweep
    trains it, its worst bomb at BOMB_LENGTHS[0], and the value's weight at each of
    BOMB_LENGTHS with that bomb ("bomb") and with random distractors ("random")."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}, got {head!r}")
    scale, lengths = HEADS[head]
    model = train_needle(seed, scale, lengths, device=device)
    worst = worst_bomb(model, BOMB_LENGTHS[0], seed)
    return {"worst": worst, "n_values": NEEDLE_DEFAULTS["n_values"],
            "bomb": {str(n): bomb_weights(model, n, worst, seed) for n in BOMB_LENGTHS},
            "random": {str(n): bomb_weights(model, n, None, seed) for n in BOMB_LENGTHS}}


def sweep(seeds=BOMB_SEEDS, device: str = "cpu"):
    """Sweep `f5-bombs` (registered with BOMB_RULES before its runs): every head of
    HEADS on `seeds`."""
    from .sweep import SweepSpec

    cells = [{"seed": s, "head": h} for s in seeds for h in HEADS]
    return SweepSpec(name="f5-bombs", out=BOMB_OUT, cells=cells,
                     run=lambda **c: run_bomb_cell(device=device, **c),
                     description="F5: the three retrieval heads against the worst "
                                 "single-token bomb, at the training length and the "
                                 "longest")
