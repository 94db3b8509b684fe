"""Byte-pair encoding trained offline, and where its pieces cut words and morphemes.

Book: Part II, "F1 Tokenization fixes the atoms". `train_bpe` wraps the `tokenizers`
package with GPT-2's scheme (byte-level alphabet, a regex that splits words, spaces and
punctuation before any merge). The helpers measure how the pieces of a word line up with
the word's edges and with a simple, rule-based morpheme boundary (stem + suffix).
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["train_bpe", "truncate_bpe", "word_pieces", "cuts_from_pieces",
           "word_cuts", "word_counts", "SUFFIXES",
           "suffix_boundary", "boundary_agreement", "chars_per_token"]

_WORD = re.compile(r"[A-Za-z]+")

# Inflectional and derivational suffixes common in Early Modern English, longest first.
SUFFIXES = ("ness", "less", "ment", "eth", "est", "ing", "ful", "ly", "ed", "er", "st", "s")


def train_bpe(text: str, vocab_size: int, *, min_frequency: int = 2):
    """Train a byte-level BPE tokenizer (GPT-2's scheme) on `text`; returns a `tokenizers.Tokenizer`.

    The alphabet is the bytes that occur in `text`; merges are learned until the
    vocabulary holds `vocab_size` entries (or no pair occurs `min_frequency` times).
    Deterministic for a given text. Pieces never cross the pre-tokenizer's splits, so a
    piece never spans two words: the merges only decide where words are cut inside.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty str")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  show_progress=False)
    tok.train_from_iterator(text.splitlines(keepends=True), trainer)
    return tok


def truncate_bpe(tok, vocab_size: int):
    """The tokenizer `tok` would have been had training stopped at `vocab_size` entries.

    BPE learns its merges greedily, one at a time, so a smaller vocabulary is the base
    alphabet plus the first merges of a larger one: one training run gives every size.
    """
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    model = json.loads(tok.to_str())["model"]
    vocab, merges = model["vocab"], model["merges"]
    n_alpha = len(vocab) - len(merges)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) \
            or not n_alpha <= vocab_size <= len(vocab):
        raise ValueError(f"vocab_size must be an int in [{n_alpha}, {len(vocab)}] (the alphabet "
                         f"up to the full vocabulary), got {vocab_size!r}")
    keep = {t: i for t, i in vocab.items() if i < vocab_size}
    pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
             for m in merges[: vocab_size - n_alpha]]
    out = Tokenizer(models.BPE(vocab=keep, merges=pairs))
    out.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    out.decoder = decoders.ByteLevel()
    return out


def word_pieces(tok, word: str, *, leading_space: bool = True) -> list[str]:
    """The pieces of `word` as `tok` cuts it, as plain strings (the space marker dropped).

    With `leading_space` the word is encoded as it appears inside a line, " word", which
    is how almost every word of running text is seen by a GPT-2-style tokenizer.
    """
    if not isinstance(word, str) or not word or word.strip() != word:
        raise ValueError(f"word must be a non-empty str without spaces around it, got {word!r}")
    s = " " + word if leading_space else word
    enc = tok.encode(s)
    off = 1 if leading_space else 0
    pieces = [p for p in (s[max(a, off):b] for a, b in enc.offsets) if p]
    if "".join(pieces) != word:
        raise ValueError(f"word {word!r} has characters outside the tokenizer's alphabet")
    return pieces


def cuts_from_pieces(pieces: list[str]) -> list[int]:
    """Where each piece but the last ends: ["un", "k", "ind"] -> [2, 3]."""
    cuts, pos = [], 0
    for p in pieces[:-1]:
        pos += len(p)
        cuts.append(pos)
    return cuts


def word_cuts(tok, word: str, *, leading_space: bool = True) -> list[int]:
    """Character positions strictly inside `word` where one piece ends and the next begins."""
    return cuts_from_pieces(word_pieces(tok, word, leading_space=leading_space))


def word_counts(text: str) -> Counter:
    """Occurrences of each alphabetic word (case kept) in `text`."""
    return Counter(_WORD.findall(text))


def suffix_boundary(word: str, lexicon, suffixes=SUFFIXES) -> int | None:
    """The stem length of `word` if it is stem + suffix with the stem itself a word, else None.

    A rule, not a morphological analyser: "kindness" -> 4 (kind|ness) because "kind" is
    in `lexicon`; "thinking" -> 5; "sing" -> None ("s" is no word). Stems shorter than
    three letters are not accepted. The longest matching suffix wins.
    """
    low = word.lower()
    for suf in suffixes:
        stem = low[: len(low) - len(suf)]
        if low.endswith(suf) and len(stem) >= 3 and stem in lexicon:
            return len(stem)
    return None


def boundary_agreement(tok, counts: Counter, lexicon=None, suffixes=SUFFIXES) -> dict:
    """How the pieces of `tok` line up with words and morphemes, weighted by occurrences.

    Returns a dict: `pieces_per_word` (mean pieces per word occurrence), `whole_words`
    (share of word occurrences that are a single piece), `morpheme_recall` (share of the
    suffix boundaries, over words that have one, where the tokenizer cuts),
    `cut_precision` (share of the cuts inside those words that fall on the suffix
    boundary), and `n_morpheme_words` (occurrences of words with a suffix boundary).
    `lexicon` defaults to the lower-cased words of `counts`.
    """
    if lexicon is None:
        lexicon = {w.lower() for w in counts}
    n = pieces = whole = 0
    m_words = m_hit = m_cuts = m_cuts_hit = 0
    for word, c in counts.items():
        cuts = word_cuts(tok, word)
        n += c
        pieces += c * (len(cuts) + 1)
        whole += c * (not cuts)
        b = suffix_boundary(word, lexicon, suffixes)
        if b is not None:
            m_words += c
            m_hit += c * (b in cuts)
            m_cuts += c * len(cuts)
            m_cuts_hit += c * (b in cuts)
    if n == 0:
        raise ValueError("counts holds no words")
    return {"pieces_per_word": pieces / n, "whole_words": whole / n,
            "morpheme_recall": m_hit / max(1, m_words),
            "cut_precision": m_cuts_hit / max(1, m_cuts), "n_morpheme_words": m_words}


def chars_per_token(tok, text: str) -> float:
    """Characters of `text` per token: how much a tokenizer compresses the text."""
    n = sum(len(tok.encode(line).ids) for line in text.splitlines(keepends=True))
    return len(text) / max(1, n)
