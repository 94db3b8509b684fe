"""Checkers for Part II, "F1 Tokenization fixes the atoms"."""

from __future__ import annotations

from ..tokenize import cuts_from_pieces, suffix_boundary
from ._common import attempted, passed

__all__ = ["check_cuts_from_pieces", "check_suffix_boundary"]


def check_cuts_from_pieces(fn) -> bool:
    """fn(pieces: list[str]) -> list[int]: positions inside the word where a piece ends."""
    cases = [["kind", "ness"], ["thinking"], ["R", "omeo"], ["un", "k", "ind"], ["a", "b", "c", "d"]]
    for pieces in cases:
        ok, got = attempted(fn, pieces)
        if not ok:
            return False
        want = cuts_from_pieces(pieces)
        if list(got) != want:
            raise AssertionError(f"pieces {pieces}: expected cuts {want}, got {list(got)} "
                                 "(a cut is the length of the word up to the end of a piece, "
                                 "the last piece's end excluded)")
    return passed("cuts_from_pieces")


def check_suffix_boundary(fn) -> bool:
    """fn(word, lexicon) -> stem length, or None: the rule of `phaselib.tokenize.suffix_boundary`."""
    lexicon = {"kind", "think", "love", "sweet", "king", "speak", "s", "th", "nurse"}
    for word in ("kindness", "thinking", "lovest", "sweetest", "kings", "speaketh", "sing",
                 "this", "nurse", "Kindly", "the"):
        ok, got = attempted(fn, word, lexicon)
        if not ok:
            return False
        want = suffix_boundary(word, lexicon)
        if got != want:
            raise AssertionError(f"{word!r}: expected {want}, got {got!r} (longest suffix first; "
                                 "the stem must be a word of the lexicon with at least 3 letters; "
                                 "compare in lower case)")
    return passed("suffix_boundary")
