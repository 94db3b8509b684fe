"""Checkers for Part II, "F9 Local patterns erode"."""

from __future__ import annotations

import math

import torch

from ..data import CharTokenizer
from ..erosion import letter_mask, local_accuracy, repetition_rate
from ._common import attempted, passed

__all__ = ["check_in_word_accuracy", "check_repetition_rate"]


def check_in_word_accuracy(fn) -> bool:
    """fn(logits [B, T, V], x [B, T], y [B, T], letters [V] bool) -> float: argmax
    accuracy over the positions whose x and y are both letters."""
    tok = CharTokenizer("abc ,.\n")
    letters = letter_mask(tok)
    g = torch.Generator().manual_seed(0)
    cases = []
    text = "ab c,\nba. cab abc"
    ids = tok.encode(text)
    x, y = ids[:-1][None], ids[1:][None]
    logits = torch.full((1, x.shape[1], tok.vocab_size), -1.0)
    logits[0, torch.arange(x.shape[1]), y[0]] = 1.0            # all right ...
    logits[0, 1, tok.stoi["a"]] = 2.0                          # ... but two, one in
    logits[0, 7, tok.stoi["c"]] = 2.0                          # a word, one not
    cases.append((logits, x, y, "a hand-made row with one in-word and one other miss"))
    x = torch.randint(tok.vocab_size, (3, 40), generator=g)
    y = torch.randint(tok.vocab_size, (3, 40), generator=g)
    logits = torch.randn(3, 40, tok.vocab_size, generator=g)
    cases.append((logits, x, y, "random logits"))
    for logits, x, y, what in cases:
        ok, got = attempted(fn, logits.clone(), x.clone(), y.clone(), letters.clone())
        if not ok:
            return False
        want = local_accuracy(logits, x, y, letters)["in_word_acc"]
        if not isinstance(got, (float, int)) and not (isinstance(got, torch.Tensor)
                                                       and got.numel() == 1):
            raise AssertionError(f"in_word_accuracy: expected a float, got {type(got)}")
        if not math.isclose(float(got), want, abs_tol=1e-6):
            raise AssertionError(f"in_word_accuracy on {what}: expected {want:.4f}, "
                                 f"got {float(got):.4f} (count only positions whose "
                                 "previous character and target are both letters)")
    return passed("in_word_accuracy")


def check_repetition_rate(fn) -> bool:
    """fn(text) -> float: share of the word bigrams of `text` (lower-cased, see
    phaselib.erosion.words) that already occurred earlier in it."""
    cases = ["my lord, my lord, my good lord",
             "To be, or not to be: that is the question",
             "the the the the", "O Romeo, Romeo! wherefore art thou Romeo?",
             "a b c d e f", "Good night, good night! parting is such sweet sorrow, "
             "that I shall say good night till it be morrow"]
    for text in cases:
        ok, got = attempted(fn, text)
        if not ok:
            return False
        want = repetition_rate(text)
        if not isinstance(got, (float, int)) or not math.isclose(got, want,
                                                                   abs_tol=1e-9):
            raise AssertionError(f"repetition_rate({text!r}): expected {want:.4f}, got "
                                 f"{got!r}")
    return passed("repetition_rate")
