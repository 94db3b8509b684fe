"""F9 to the held-out minimum: local skill with the context cut, and a planted erosion.

Book: Part II, "F9 Local patterns erode", section "To the minimum, with a planted
erosion". The curves of `erosion_runs` stop before the held-out minimum, score local
skill with the whole window as context, and plant nothing for the instrument to find.
Here:

- `cut_context_accuracy`: next-character accuracy inside words (previous and next
  character both letters) predicted from only the last `cut` characters, so that no
  longer context can stand in for the local habit; `cut_context_loss`, the loss at
  every position from those characters only, which against the whole window's loss
  says what the longer context is worth to the model (the regularities whose learning
  is said to erode the local ones);
- the *natural* arm (`run_minimum`): the F9 model (2 layers, 64 wide) trained on a small
  text, SMALL_CHARS characters of the plays' training split, for far more steps than it
  needs to reach its held-out minimum, scored every `eval_every` steps;
- the *planted* arm: the same model and text, but from half-way on the training text is
  re-spelled (`respell`: every lower-case vowel inside a word becomes the next vowel,
  a -> e -> i -> o -> u -> a), and its held-out loss is scored on held-out text half
  plain and half re-spelled. That loss keeps falling as the new spelling is learned,
  while the old in-word habits, scored on the plain held-out text, are overwritten: a
  habit lost in service of a broader distribution, built in.

The rule, fixed before the runs (`MINIMUM_RULE`): per seed, `erosion` of the cut-context
in-word accuracy against the held-out loss over the checkpoints, threshold the record's;
the planted arm's erosion is the positive control. Two conditions make the verdict
inconclusive whatever the interval: a seed whose held-out loss does not end at least
MIN_RISE nats above its minimum (not trained past it), and natural runs whose longer
context is not worth LONG_GAIN nats per character at their minimum (`cut_loss` minus
`plain_loss`, its interval over the seeds wholly above it): a model that learns nothing
beyond the last few characters has no broader regularity for its local habits to give
way to. (The second condition was added after the first runs had started and before any
had finished.) The sweep is `f9-minimum`.
"""

from __future__ import annotations

import math
import re
import time

import torch
import torch.nn.functional as F

from dataclasses import replace

from ._checks import check_positive_int
from .claims.rule import Effect, Judgement, Rule, judge
from .data import random_windows
from .erosion import (erosion, held_windows, in_word_mask, letter_mask,
                      paired_difference_se)
from .erosion_runs import _data, make_model
from .train import TrainConfig, evaluate_loss, train

__all__ = ["respell", "cut_context_accuracy", "cut_context_loss", "run_minimum",
           "ARMS", "SMALL_CHARS", "HELD_CHARS", "CUT", "STEPS", "EVAL_EVERY",
           "MIN_RISE", "LONG_GAIN", "MINIMUM_RULE", "MINIMUM_OUT", "run_cell",
           "sweep", "long_gain", "judge_minimum"]

ARMS = ("natural", "planted")
SMALL_CHARS = 100_000     # characters of training text: small enough to overfit
HELD_CHARS = 16_384       # characters of held-out text (each arm's own, see above)
CUT = 4                   # characters of context for the local skill
STEPS, EVAL_EVERY = 3000, 100
MIN_RISE = 0.01           # nats above the minimum at the end: trained past it
_NEXT_VOWEL = dict(zip("aeiou", "eioua"))
MINIMUM_OUT = "book/part2/results/f9_minimum.json"
LONG_GAIN = 0.1           # nats the whole window must be worth over the last CUT chars
MINIMUM_RULE = {"metric": "cut_acc", "threshold": 0.02, "control": "planted",
                "min_rise": MIN_RISE, "long_gain": LONG_GAIN,
                "registered": "2026-12-06"}


def respell(text: str) -> str:
    """`text` with every lower-case vowel that follows a letter replaced by the next
    vowel (a -> e -> i -> o -> u -> a): the words' first letters, capitals, spaces and
    punctuation are kept, so only habits inside words change."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return re.sub(r"(?<=[A-Za-z])[aeiou]", lambda m: _NEXT_VOWEL[m.group()], text)


def _check_ids(ids, cut: int) -> None:
    check_positive_int("cut", cut)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.dtype != torch.long:
        raise TypeError("ids must be a 1-D long tensor of token ids")
    if len(ids) < cut + 1:
        raise ValueError(f"ids must hold at least cut + 1 = {cut + 1} ids, got "
                         f"{len(ids)}")


@torch.no_grad()
def cut_context_loss(model, ids: torch.Tensor, cut: int = CUT) -> float:
    """Mean cross-entropy (nats) of every next id of the 1-D `ids` from the cut-th on,
    predicted from only the last `cut` ids: against the loss with the whole window, what
    the longer context is worth to the model."""
    _check_ids(ids, cut)
    dev = next(model.parameters()).device
    windows, targets = ids[:-1].unfold(0, cut, 1), ids[cut:]
    model.eval()
    total = 0.0
    for i in range(0, len(targets), 4096):
        logits = model(windows[i:i + 4096].to(dev))[0][:, -1].double()
        total += F.cross_entropy(logits, targets[i:i + 4096].to(dev),
                                 reduction="sum").item()
    return total / len(targets)


@torch.no_grad()
def cut_context_accuracy(model, ids: torch.Tensor, letters: torch.Tensor,
                         cut: int = CUT) -> torch.Tensor:
    """Hits (1.0 or 0.0), one per in-word position of the 1-D `ids` from the cut-th
    character on, of the model's next-character prediction from only the last `cut`
    characters: [n] float (n the number of such positions)."""
    _check_ids(ids, cut)
    dev = next(model.parameters()).device
    t = torch.arange(cut - 1, len(ids) - 1)                 # the last input position
    inside = in_word_mask(ids[t].view(1, -1), ids[t + 1].view(1, -1), letters)[0]
    t = t[inside]
    windows = ids.unfold(0, cut, 1)[t - cut + 1]            # [n, cut], ending at t
    model.eval()
    hits = []
    for i in range(0, len(t), 4096):
        logits = model(windows[i:i + 4096].to(dev))[0][:, -1]
        hits.append((logits.argmax(-1).cpu() == ids[t[i:i + 4096] + 1]).double())
    return torch.cat(hits)


def _in_word_accuracy(model, ids: torch.Tensor, letters: torch.Tensor,
                      block: int) -> float:
    """In-word accuracy with the whole window as context (non-overlapping windows)."""
    dev = next(model.parameters()).device
    x, y = held_windows(ids, block)
    with torch.no_grad():
        pred = model(x.to(dev))[0].argmax(-1).cpu()
    m = in_word_mask(x, y, letters)
    return (pred == y)[m].double().mean().item()


def run_minimum(seed: int = 0, arm: str = "natural", steps: int = STEPS,
                eval_every: int = EVAL_EVERY, small_chars: int = SMALL_CHARS,
                held_chars: int = HELD_CHARS, cut: int = CUT, n_layer: int = 2,
                n_embd: int = 64, block: int = 64, batch: int = 32, lr: float = 1e-2,
                device: str = "cpu") -> dict:
    """Train one arm (see ARMS and the module docstring) from `seed` and score it at
    step 0 and every `eval_every` steps: {"step", "loss" (held-out, nats per character:
    the arm's own held-out text), "plain_loss" (on the plain held-out text), "cut_loss"
    (there, from the last `cut` characters only), "in_word_acc" (whole window),
    "cut_acc" (the last `cut` characters),
    "cut_paired_se" (of the change of cut_acc since the previous checkpoint, paired on
    the same positions; NaN at step 0), "erosion" (of cut_acc against loss),
    "erosion_full" (of in_word_acc), "min_step", "min_loss", "rise" (final loss minus
    the minimum), "n_params", "seconds"}."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    for name, v in (("steps", steps), ("eval_every", eval_every),
                    ("small_chars", small_chars), ("held_chars", held_chars)):
        check_positive_int(name, v)
    start = time.process_time()
    torch.manual_seed(seed)
    _, tok, tr, he = _data()
    text = tr[:small_chars]
    plain, held = tok.encode(text), tok.encode(he[:held_chars])
    switch = steps // 2 if arm == "planted" else steps + 1
    second = tok.encode(respell(text)) if arm == "planted" else plain
    scored = (torch.cat([held, tok.encode(respell(he[held_chars:2 * held_chars]))])
              if arm == "planted" else held)
    letters = letter_mask(tok)
    model = make_model(tok.vocab_size, n_layer, n_embd, block).to(device)
    g = torch.Generator().manual_seed(seed)
    rows, prev = [], []

    def eval_fn(m):
        hits = cut_context_accuracy(m, held, letters, cut)
        plain_loss = evaluate_loss(m, held, block)
        rows.append({"loss": (evaluate_loss(m, scored, block) if arm == "planted"
                              else plain_loss),
                     "plain_loss": plain_loss,
                     "cut_loss": cut_context_loss(m, held, cut),
                     "in_word_acc": _in_word_accuracy(m, held, letters, block),
                     "cut_acc": hits.mean().item(),
                     "cut_paired_se": (paired_difference_se(hits, prev[0]) if prev
                                       else math.nan)})
        prev[:] = [hits]
        return rows[-1]["loss"]

    eval_fn(model)
    train(model, lambda step: random_windows(plain if step < switch else second, block,
                                             batch, generator=g, device=device),
          TrainConfig(steps=steps, lr=lr, eval_every=eval_every, progress=False),
          eval_fn)
    res = {k: [r[k] for r in rows] for k in rows[0]}
    res["step"] = [0] + list(range(eval_every, steps + 1, eval_every))[:len(rows) - 1]
    i_min = min(range(len(res["loss"])), key=res["loss"].__getitem__)
    res |= {"erosion": erosion(res["cut_acc"], res["loss"]),
            "erosion_full": erosion(res["in_word_acc"], res["loss"]),
            "min_step": res["step"][i_min], "min_loss": res["loss"][i_min],
            "rise": res["loss"][-1] - res["loss"][i_min], "switch_step": (
                switch if arm == "planted" else None),
            "n_params": sum(p.numel() for p in model.parameters()),
            "seconds": time.process_time() - start}
    return res


def run_cell(seed: int, arm: str) -> dict:
    """One cell of `f9-minimum`: `run_minimum` of `arm` from `seed` at its defaults."""
    return run_minimum(seed, arm)


def sweep(seeds=(0, 1, 2, 3, 4)):
    """Sweep `f9-minimum`: both ARMS for every seed at run_minimum's defaults, the rule
    MINIMUM_RULE fixed before the runs (see the module docstring)."""
    from .sweep import SweepSpec

    cells = [{"seed": int(s), "arm": a} for s in seeds for a in ARMS]
    return SweepSpec(name="f9-minimum", out=MINIMUM_OUT, cells=cells,
                     run=run_cell,
                     description="F9: the small-text model trained past its held-out "
                                 "minimum, and a planted erosion as the control")


def long_gain(r: dict) -> float:
    """What the whole window is worth over the last CUT characters at a run's held-out
    minimum: cut_loss minus plain_loss there (nats per character)."""
    i = r["step"].index(r["min_step"])
    return r["cut_loss"][i] - r["plain_loss"][i]


def judge_minimum(rows: list[dict], rule: Rule) -> tuple[Judgement, dict]:
    """The verdict of MINIMUM_RULE on the results of `f9-minimum` (`rows`: every cell's
    parameters and result, both arms of each seed): `judge` of the natural arm's
    erosion against `rule` with the planted arm's as the control, made inconclusive when
    a natural seed ends less than MIN_RISE past its minimum or the natural runs' long
    gain is not wholly above LONG_GAIN (each failed condition is named in the reason,
    whatever the interval says). Returns (Judgement, readings), readings holding
    the seeds, the effects and each condition."""
    by = {(r["seed"], r["arm"]): r for r in rows}
    seeds = sorted(s for s, a in by if a == "natural" and (s, "planted") in by)
    if len(seeds) < 3:
        raise ValueError(f"rows must hold both arms of at least 3 seeds, got {seeds}")
    nat = [by[s, "natural"] for s in seeds]
    fall = Effect("largest fall of in-word accuracy from the last characters while the "
                  "loss improves", tuple(r["erosion"] for r in nat), "of accuracy")
    planted = Effect("the same, with an erosion planted", tuple(
        by[s, "planted"]["erosion"] for s in seeds), "of accuracy")
    gain = Effect("loss from the last characters minus from the whole window, at the "
                  "minimum", tuple(long_gain(r) for r in nat), "nats per character")
    rises = [r["rise"] for r in nat]
    past = min(rises) >= MINIMUM_RULE["min_rise"]
    learns = gain.interval()[0] > MINIMUM_RULE["long_gain"]
    j = judge(fall, rule, planted)
    reasons = []
    if not past:
        reasons.append(f"a seed ends only {min(rises):+.3f} nats above its held-out "
                       f"minimum, short of {MINIMUM_RULE['min_rise']}: not trained "
                       f"past it")
    if not learns:
        lo, hi = gain.interval()
        reasons.append(f"the whole window is worth {lo:.3f} to {hi:.3f} nats per "
                       f"character over the last characters, not wholly above "
                       f"{MINIMUM_RULE['long_gain']}: no broader regularity to give "
                       f"way to")
    if reasons:
        j = replace(j, verdict="inconclusive",
                    reason=j.reason + " And " + "; and ".join(reasons) + ".",
                    change="runs that meet the conditions the rule names, then "
                           + j.change)
    return j, {"seeds": seeds, "fall": fall, "planted": planted, "gain": gain,
               "rises": rises, "past_minimum": past, "learns_beyond": learns}
