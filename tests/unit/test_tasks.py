"""Tests for phaselib.tasks generators not covered elsewhere (letter_count_examples is
tested in test_tokenize.py beside the tokenizer it serves)."""

import math

import pytest
import torch

from phaselib.tasks import repeat_copy_baselines, repeat_copy_batch, reversal_examples

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def test_repeat_copy_batch_second_half_is_the_first_one_period_back():
    n = 5
    x, y = repeat_copy_batch(4, n, 16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 2 * n - 1)
    assert torch.all(y[:, : n - 1] == -1)
    for row_x, row_y in zip(x, y):
        first = row_x[:n]
        assert len(set(first.tolist())) == n          # drawn without repetition
        assert torch.equal(row_y[n - 1:], first)      # target i of the copy is token i


def test_repeat_copy_batch_rejects_tiny_inputs():
    with pytest.raises(ValueError, match="vocab >= 2 and n >= 2"):
        repeat_copy_batch(2, 1, 8)


def test_repeat_copy_baselines_by_hand():
    b = repeat_copy_baselines(3, 8)
    assert math.isclose(b["vocab"][0], math.log(8))
    assert math.isclose(b["first_half"][0], math.log(3))
    # targets see 3, 2, 1 candidates left
    assert math.isclose(b["unrepeated"][0], (math.log(3) + math.log(2) + 0) / 3)
    assert math.isclose(b["unrepeated"][1], (1 / 3 + 1 / 2 + 1) / 3)
    assert b["unrepeated"][0] < b["first_half"][0] < b["vocab"][0]


def test_repeat_copy_baselines_match_a_simulated_guesser():
    n, vocab = 6, 10
    x, y = repeat_copy_batch(2000, n, vocab, generator=torch.Generator().manual_seed(1))
    hits = 0.0
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        left = set(row_x[:n])
        for t in range(n - 1, 2 * n - 1):
            hits += 1 / len(left)           # expected accuracy of a uniform guess
            left.discard(row_y[t])
    assert math.isclose(hits / (2000 * n), repeat_copy_baselines(n, vocab)["unrepeated"][1],
                        rel_tol=1e-9)


def test_repeat_copy_baselines_rejects_vocab_below_n():
    with pytest.raises(ValueError, match="vocab >= n"):
        repeat_copy_baselines(8, 4)


def test_reversal_examples_targets_spell_the_word_backwards():
    enc = lambda w: [(LETTERS.index(c), c) for c in w]  # noqa: E731
    x, y, vocab = reversal_examples(["abc", "de"], enc, 26, 20,
                                    generator=torch.Generator().manual_seed(0))
    assert vocab == 26 + 1 + 26 + 1
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        eq = row_x.index(26)
        word = "".join(LETTERS[i] for i in row_x[:eq])
        want = [27 + LETTERS.index(c) for c in reversed(word)]
        assert row_y[:eq] == [-1] * eq
        assert row_y[eq: eq + len(word)] == want
        assert row_x[eq + 1: eq + len(word)] == want[:-1]   # fed back, teacher forcing
        assert all(v == -1 for v in row_y[eq + len(word):])


def test_reversal_examples_with_multi_letter_pieces():
    enc = lambda w: [(0, w[:2]), (1, w[2:])]  # noqa: E731
    x, y, _ = reversal_examples(["kind"], enc, 5, 1)
    assert x[0].tolist() == [0, 1, 5] + [6 + LETTERS.index(c) for c in "dni"]
    assert y[0].tolist() == [-1, -1] + [6 + LETTERS.index(c) for c in "dnik"]


@pytest.mark.parametrize("words, enc, match", [
    (["Kind"], lambda w: [(0, w)], "lower-case a-z"),
    (["kind"], lambda w: [(0, "kin")], r"encode_word\('kind'\) must return"),
    ([], lambda w: [], "need words"),
])
def test_reversal_examples_rejects_bad_input(words, enc, match):
    with pytest.raises(ValueError, match=match):
        reversal_examples(words, enc, 26, 3)
