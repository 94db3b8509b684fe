"""Local skills through training, a learned association, and memorisation (Part II, F9).

Book: Part II, "F9 Local patterns erode". A character model is scored at checkpoints
through ordinary training (`phaselib.train.train` with an `eval_fn`) on

- the global held-out loss (nats per character, `evaluate_loss`);
- next-character accuracy *inside words* (previous and target character both letters)
  and its loss, against the same at all other positions (`local_accuracy`);
- the share of sampled words that are words of the training text (`real_word_share`);
- the share of word bigrams of a sample already seen earlier in it (`repetition_rate`);
- how much more likely a speaker "Nurse:" is after a speech by Romeo than after the same
  speech by a character of another play (`association_score`, in nats).

`continuation_length` counts how many characters of a passage a model reproduces
greedily from a prompt taken from it; `with_copies` inserts a passage into a training
text. The experiments that train and score models with these measurements, and the
sweep `f9`, are in `phaselib.erosion_runs`.
"""

from __future__ import annotations

import math
import random
import re
import string

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .data import CharTokenizer

__all__ = ["PLAYS", "SPEECHES", "CONTROLS", "letter_mask", "in_word_mask",
           "held_windows", "local_accuracy", "words", "corpus_vocab", "real_word_share",
           "repetition_rate", "sequence_logprob", "association_score",
           "greedy_repetition", "exact_prefix_length", "continuation_length",
           "with_copies", "erosion", "first_crossing", "paired_difference_se"]

PLAYS = ("romeo-and-juliet", "hamlet", "macbeth", "othello")
# Neutral speeches: the association probe changes only the speaker's name before them.
SPEECHES = (("Good night, good night.", "What news?"),
            ("Come hither, sir.", "I pray you."),
            ("What say you?", "Farewell, my lord."),
            ("Peace, I say.", "O, speak again."))
# Pairs of speakers of the other three plays.
CONTROLS = (("Hamlet", "Horatio"), ("Macbeth", "Banquo"), ("Othello", "Iago"))
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def letter_mask(tok: CharTokenizer) -> torch.Tensor:
    """[V] bool: which token ids of a character tokenizer are ASCII letters."""
    return torch.tensor([c in string.ascii_letters for c in tok.chars])


def in_word_mask(x: torch.Tensor, y: torch.Tensor,
                 letters: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: positions whose input x (the previous character) and target y are
    both letters, i.e. predictions made inside a word."""
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long:
            raise TypeError(f"{name} must be a long tensor of token ids [B, T]")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape [B, T], got "
                         f"{tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if not isinstance(letters, torch.Tensor) or letters.dtype != torch.bool \
            or letters.dim() != 1:
        raise TypeError("letters must be a 1-D bool tensor [V] (see letter_mask)")
    return letters[x] & letters[y]


def held_windows(ids: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`ids` [N] cut into non-overlapping windows of `block`: (x, y), each [n, block]
    long, y the character after each of x (the tail that fills no window is left
    out)."""
    check_positive_int("block", block)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or len(ids) <= block:
        raise ValueError(f"ids must be a 1-D tensor longer than block = {block}, got "
                         f"shape {tuple(getattr(ids, 'shape', ()))}")
    n = (len(ids) - 1) // block * block
    return ids[:n].view(-1, block), ids[1:n + 1].view(-1, block)


def local_accuracy(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                   letters: torch.Tensor) -> dict:
    """Argmax accuracy and mean loss (nats) inside words and at all other positions.

    logits [B, T, V]; x, y [B, T] long (y = x shifted by one); letters [V] bool. Returns
    {"in_word_acc", "in_word_loss", "in_word_n", "other_acc", "other_loss", "other_n"}
    (NaN where a group is empty).
    """
    check_float_tensor("logits", logits, ndim=3, shape_doc="[B, T, V]")
    inside = in_word_mask(x, y, letters)
    if logits.shape[:2] != x.shape or logits.shape[-1] != len(letters):
        raise ValueError(f"logits must be [B, T, V] = [{x.shape[0]}, {x.shape[1]}, "
                         f"{len(letters)}], got {tuple(logits.shape)}")
    hit = (logits.argmax(-1) == y).double()
    ce = F.cross_entropy(logits.flatten(0, 1).double(), y.flatten(), reduction="none")
    ce = ce.view(y.shape)
    out = {}
    for name, m in (("in_word", inside), ("other", ~inside)):
        n = int(m.sum())
        out[f"{name}_acc"] = hit[m].mean().item() if n else math.nan
        out[f"{name}_loss"] = ce[m].mean().item() if n else math.nan
        out[f"{name}_n"] = n
    return out


def paired_difference_se(hits_a: torch.Tensor, hits_b: torch.Tensor) -> float:
    """Standard error of mean(hits_a) - mean(hits_b) when both are scored on the same
    positions (1-D, one value per position): sqrt(var(a - b) / n). Paired, it counts
    only the positions where the two disagree, so it is far below the unpaired
    sqrt(2 p (1 - p) / n) when two checkpoints agree on most positions."""
    for name, t in (("hits_a", hits_a), ("hits_b", hits_b)):
        if not isinstance(t, torch.Tensor) or t.dim() != 1:
            raise TypeError(f"{name} must be a 1-D tensor, one value per position")
    if len(hits_a) != len(hits_b) or len(hits_a) < 2:
        raise ValueError(f"hits_a and hits_b must score the same >= 2 positions, got "
                         f"{len(hits_a)} and {len(hits_b)}")
    d = hits_a.double() - hits_b.double()
    return math.sqrt(d.var().item() / len(d))


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased: runs of letters, inner apostrophes kept."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [w.lower() for w in _WORD.findall(text)]


def corpus_vocab(text: str) -> frozenset[str]:
    """The set of (lower-cased) words of `text`."""
    return frozenset(words(text))


def real_word_share(text: str, vocab) -> float:
    """Share of the words of `text` that are in `vocab` (NaN when it has no words)."""
    ws = words(text)
    return sum(w in vocab for w in ws) / len(ws) if ws else math.nan


def repetition_rate(text: str, n: int = 2) -> float:
    """Share of the word n-grams of `text` that already occurred earlier in it (NaN when
    it has no n-gram). Real text repeats some ("my lord"); a looping sampler, many."""
    check_positive_int("n", n)
    ws = words(text)
    grams = [tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)]
    if not grams:
        return math.nan
    seen, rep = set(), 0
    for g in grams:
        rep += g in seen
        seen.add(g)
    return rep / len(grams)


@torch.no_grad()
def sequence_logprob(model: nn.Module, tok: CharTokenizer, prompt: str,
                     target: str) -> float:
    """log p(target | prompt) in nats: the sum over the target's characters."""
    if not prompt or not target:
        raise ValueError("prompt and target must be non-empty strings")
    dev = next(model.parameters()).device
    ids = tok.encode(prompt + target).to(dev)
    block = model.cfg.block_size
    if len(ids) - 1 > block:
        raise ValueError(f"prompt + target must fit in block_size + 1 = {block + 1} "
                         f"characters, got {len(ids)}")
    model.eval()
    logits, _ = model(ids[None, :-1])
    logp = torch.log_softmax(logits[0].double(), -1)
    pos = torch.arange(len(prompt) - 1, len(ids) - 1, device=dev)
    return logp[pos, ids[len(prompt):]].sum().item()


def _prompt(names, speeches) -> str:
    return "".join(f"{n}:\n{s}\n\n" for n, s in zip(names, speeches))


def association_score(model: nn.Module, tok: CharTokenizer, names=("Romeo", "Juliet"),
                      target: str = "Nurse:", controls=CONTROLS,
                      speeches=SPEECHES) -> float:
    """How much more likely (nats) the next speaker is `target` after speeches by
    `names` than after the same speeches by the speakers of each control: the mean
    over `speeches` (tuples, one speech per name) of log p(target | names speaking)
    minus the mean over `controls` (tuples of names) of log p(target | control
    speaking)."""
    if not controls or not speeches:
        raise ValueError("controls and speeches must be non-empty")
    if any(len(c) != len(names) for c in controls) or \
            any(len(s) != len(names) for s in speeches):
        raise ValueError(f"every control and every speech tuple must have len(names) = "
                         f"{len(names)} entries")
    diffs = []
    for s in speeches:
        lp = sequence_logprob(model, tok, _prompt(names, s), target)
        lc = [sequence_logprob(model, tok, _prompt(c, s), target) for c in controls]
        diffs.append(lp - sum(lc) / len(lc))
    return sum(diffs) / len(diffs)


def exact_prefix_length(a: str, b: str) -> int:
    """How many leading characters `a` and `b` share."""
    if not isinstance(a, str) or not isinstance(b, str):
        raise TypeError("a and b must be str")
    n = 0
    for ca, cb in zip(a, b):
        if ca != cb:
            break
        n += 1
    return n


@torch.no_grad()
def continuation_length(model: nn.Module, tok: CharTokenizer, passage: str,
                        prompt_len: int = 32) -> int:
    """Characters of `passage` after its first `prompt_len` that greedy decoding from
    those reproduces exactly (0 .. len(passage) - prompt_len)."""
    check_positive_int("prompt_len", prompt_len)
    if len(passage) <= prompt_len:
        raise ValueError(f"passage must be longer than prompt_len={prompt_len}, "
                         f"got {len(passage)} characters")
    dev = next(model.parameters()).device
    model.eval()
    idx = tok.encode(passage[:prompt_len])[None].to(dev)
    out = model.generate(idx, len(passage) - prompt_len, top_k=1)
    return exact_prefix_length(tok.decode(out[0, prompt_len:].tolist()),
                               passage[prompt_len:])


def with_copies(text: str, passage: str, copies: int, seed: int = 0) -> str:
    """`text` with `copies` copies of `passage` inserted at random line starts."""
    check_positive_int("copies", copies)
    lines = text.split("\n")
    rng = random.Random(seed)
    spots = [rng.randrange(len(lines) + 1) for _ in range(copies)]
    for at in sorted(spots, reverse=True):
        lines.insert(at, passage.rstrip("\n"))
    return "\n".join(lines)


def erosion(metric, loss, higher_is_better: bool = True) -> float:
    """The largest fall of `metric` below its best value so far, taken at checkpoints
    where `loss` reaches a new low: how much a local skill got worse while the global
    loss improved (0.0 when it never did). Sequences of one length, in training
    order."""
    if len(metric) != len(loss) or len(metric) < 2:
        raise ValueError(f"metric and loss must be sequences of one length >= 2, got "
                         f"{len(metric)} and {len(loss)}")
    sign = 1.0 if higher_is_better else -1.0
    best_m, best_l, worst = sign * metric[0], loss[0], 0.0
    for m, l in zip(metric[1:], loss[1:]):
        if l < best_l:
            worst = max(worst, best_m - sign * m)
            best_l = l
        best_m = max(best_m, sign * m)
    return worst


def first_crossing(values, threshold: float) -> int | None:
    """Index of the first value >= threshold after which every value stays >= it (the
    point where a score crosses for good), or None if the last value is below it."""
    idx = None
    for i, v in enumerate(values):
        if v >= threshold:
            idx = i if idx is None else idx
        else:
            idx = None
    return idx


@torch.no_grad()
def greedy_repetition(model: nn.Module, tok: CharTokenizer, prompts, n_chars: int = 200,
                      n: int = 2) -> float:
    """Mean repetition_rate (word n-grams) of greedy continuations of `prompts` (strings
    of one length, continued together); a continuation without n-grams counts 0."""
    if not prompts or len({len(p) for p in prompts}) != 1:
        raise ValueError("prompts must be a non-empty list of strings of one length")
    dev = next(model.parameters()).device
    model.eval()
    idx = torch.stack([tok.encode(p) for p in prompts]).to(dev)
    out = model.generate(idx, n_chars, top_k=1)[:, idx.shape[1]:]
    rates = [repetition_rate(tok.decode(row.tolist()), n) for row in out]
    return sum(0.0 if math.isnan(r) else r for r in rates) / len(rates)
