"""The BPE wrapper and the boundary-agreement helpers, on a small seeded text."""

from collections import Counter

import pytest

from phaselib.tokenize import (boundary_agreement, chars_per_token, cuts_from_pieces,
                               suffix_boundary, train_bpe, truncate_bpe, word_counts,
                               word_cuts, word_pieces)

TEXT = ("the kind king speaketh kindly of kindness and thinking kings sing sweetest songs\n" * 40
        + "the sweet nurse is thinking of the king\n" * 30)


@pytest.fixture(scope="module")
def small():
    return train_bpe(TEXT, 60)


def test_training_is_deterministic_and_reaches_the_asked_size(small):
    again = train_bpe(TEXT, 60)
    assert small.get_vocab_size() == 60
    assert small.get_vocab() == again.get_vocab()


def test_truncating_a_larger_training_equals_training_the_smaller_size(small):
    cut = truncate_bpe(train_bpe(TEXT, 120), 60)
    assert cut.get_vocab() == small.get_vocab()
    line = TEXT.splitlines()[0]
    assert cut.encode(line).ids == small.encode(line).ids
    with pytest.raises(ValueError, match="vocab_size must be"):
        truncate_bpe(small, 10)


def test_pieces_spell_the_word_and_cuts_are_inside(small):
    for w in ("kindness", "thinking", "nurse", "skin", "engines"):
        pieces = word_pieces(small, w)
        assert "".join(pieces) == w
        cuts = word_cuts(small, w)
        assert all(0 < c < len(w) for c in cuts) and len(cuts) == len(pieces) - 1


def test_cuts_from_pieces_hand_counted():
    assert cuts_from_pieces(["un", "k", "ind"]) == [2, 3]
    assert cuts_from_pieces(["kind", "ness"]) == [4]
    assert cuts_from_pieces(["thinking"]) == []


def test_a_bigger_vocabulary_never_cuts_a_frequent_word_more(small):
    big = train_bpe(TEXT, 120)
    for w in ("the", "king", "thinking"):
        assert len(word_cuts(big, w)) <= len(word_cuts(small, w))


def test_suffix_boundary_rule():
    lex = {"kind", "think", "king", "sweet", "s"}
    assert suffix_boundary("kindness", lex) == 4
    assert suffix_boundary("Thinking", lex) == 5
    assert suffix_boundary("kings", lex) == 4
    assert suffix_boundary("sing", lex) is None      # stem shorter than three letters
    assert suffix_boundary("sweet", lex) is None


def test_boundary_agreement_shares_are_in_range(small):
    counts = word_counts(TEXT)
    agg = boundary_agreement(small, counts)
    assert 0 <= agg["whole_words"] <= 1 and 0 <= agg["morpheme_recall"] <= 1
    assert agg["pieces_per_word"] >= 1 and agg["n_morpheme_words"] > 0
    one = boundary_agreement(small, Counter({"the": 3}))
    assert one["n_morpheme_words"] == 0 and one["morpheme_recall"] == 0.0


def test_chars_per_token_grows_with_the_vocabulary(small):
    assert chars_per_token(train_bpe(TEXT, 120), TEXT) > chars_per_token(small, TEXT) > 1


@pytest.mark.parametrize("call, match", [
    (lambda: train_bpe("", 10), "text must be"),
    (lambda: train_bpe("abc", 1), "vocab_size must be"),
    (lambda: word_pieces(train_bpe("abc abc", 10), " a"), "word must be"),
    (lambda: word_pieces(train_bpe("abc abc", 10), "Romeo"), "word 'Romeo' has characters outside"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_letter_count_examples_targets_are_running_counts():
    import torch

    from phaselib.tasks import letter_count_examples

    letters = "abcdefghijklmnopqrstuvwxyz"
    enc = lambda w: [(letters.index(c), c) for c in w]  # noqa: E731
    x, y, vocab = letter_count_examples(["banana", "kiwi"], enc, letters.index, 26, 50, max_count=2,
                                        generator=torch.Generator().manual_seed(0))
    assert vocab == 26 + 1 + 3 + 1 and x.shape[0] == 50
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        letter = letters[row_x[0]]
        eq = row_x.index(26)
        word = "".join(letters[i] for i in row_x[1:eq])
        assert row_y[0] == -1
        for t in range(1, eq + 1):
            want = min(word[:t].count(letter), 2)
            assert row_y[t] == 27 + want
        assert all(v == -1 for v in row_y[eq + 1:])


def test_letter_count_examples_rejects_pieces_that_do_not_spell_the_word():
    from phaselib.tasks import letter_count_examples

    with pytest.raises(ValueError, match=r"encode_word\('kind'\) must return"):
        letter_count_examples(["kind"], lambda w: [(0, "kin")], lambda c: 0, 26, 3)
