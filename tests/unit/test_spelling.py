"""Tests for phaselib.spelling (chapter F1's letter questions)."""

from collections import Counter

import pytest
import torch

from phaselib.spelling import (LONG_STEPS, RATES, RATES_OUT, answer_accuracy,
                               answer_only, run_f1_rate, run_letter_task, split_words,
                               sweep, sweep_rates, validation_words)

LETTERS = "abcdefghijklmnopqrstuvwxyz"
CHARS = (lambda w: [(LETTERS.index(c), c) for c in w], LETTERS.index, 26)


def test_split_words_is_a_seeded_partition_of_clean_types():
    counts = Counter({w: 1 for w in ["kind", "Kind", "it's", "ab", "sweetest", "romeo",
                                     "night", "day", "toolongwordhere", "love"]})
    tr, te = split_words(counts, 0, test_share=0.4)
    assert sorted(tr + te) == ["day", "kind", "love", "night", "romeo", "sweetest"]
    assert len(te) == 2 and not set(tr) & set(te)
    assert split_words(counts, 0, test_share=0.4) == (tr, te)
    with pytest.raises(ValueError, match="test_share must be"):
        split_words(counts, 0, test_share=1.0)


def test_validation_words_hold_out_a_seeded_share_of_the_training_words():
    words = [f"w{i:02d}" for i in range(40)]
    tr, va = validation_words(words, 3, share=0.25)
    assert len(va) == 10 and sorted(tr + va) == words and not set(tr) & set(va)
    assert validation_words(words, 3, share=0.25) == (tr, va)
    assert validation_words(words, 4, share=0.25)[1] != va
    with pytest.raises(ValueError, match="share must be"):
        validation_words(words, 0, share=0.0)
    with pytest.raises(ValueError, match="at least 2 words"):
        validation_words(["one"], 0)


def test_answer_only_keeps_the_target_at_equals_only():
    x = torch.tensor([[3, 1, 2, 26, 30]])
    y = torch.tensor([[-1, 27, 27, 28, -1]])
    assert answer_only(x, y, 26).tolist() == [[-1, -1, -1, 28, -1]]
    with pytest.raises(ValueError, match="same shape"):
        answer_only(x, y[:, :3], 26)


class _Oracle(torch.nn.Module):
    """Puts all its logit mass on a given token at every position."""

    def __init__(self, y, vocab):
        super().__init__()
        self.logits = torch.nn.functional.one_hot(y.clamp(min=0), vocab).float()

    def forward(self, x):
        return self.logits, None


def test_answer_accuracy_scores_only_answers():
    x = torch.tensor([[0, 1, 26, 53], [2, 3, 26, 53]])
    y = torch.tensor([[-1, -1, 28, -1], [-1, -1, 27, -1]])
    right = _Oracle(y, 54)
    assert answer_accuracy(right, x, y, "presence", 26)["answer"] == 1.0
    wrong = _Oracle(torch.tensor([[-1, -1, 27, -1], [-1, -1, 27, -1]]), 54)
    assert answer_accuracy(wrong, x, y, "presence", 26)["answer"] == 0.5
    # reversal: one word right, one with one letter wrong
    yr = torch.tensor([[-1, 30, 29, -1], [-1, 31, 28, 27]])
    guess = yr.clone()
    guess[1, 3] = 40
    out = answer_accuracy(_Oracle(guess, 54), x, yr, "reversal", 26)
    assert out["words"] == 0.5 and out["letters"] == pytest.approx(4 / 5)


def test_run_letter_task_fits_held_out_words_longer_than_training_ones(one_thread):
    train = ["abc", "bcd", "cab"]
    test = ["abcdefgh"]                       # longer than every training word
    out = run_letter_task(train, test, CHARS, task="reversal", steps=2, batch=4,
                          n_embd=16, n_layer=1, n_head=1, n_eval=8)
    assert out["longer"] == 8 and out["block_size"] == 1 + 8 + 7
    assert 0.0 <= out["unseen_letters"] <= 1.0


def test_run_letter_task_scores_validation_words_longer_than_the_rest(one_thread):
    out = run_letter_task(["abc", "bcd"], ["cab"], CHARS, task="reversal", steps=2,
                          batch=4, n_embd=16, n_layer=1, n_head=1, n_eval=8,
                          val_words=["abcdefgh"])
    assert out["block_size"] == 1 + 8 + 7        # the block covers the validation words
    assert {"val_letters", "val_words"} <= set(out)
    assert "val_letters" not in run_letter_task(["abc", "bcd"], ["cab"], CHARS,
                                                task="reversal", steps=2, batch=4,
                                                n_embd=16, n_layer=1, n_head=1,
                                                n_eval=8)


def test_run_f1_rate_rejects_a_rate_it_cannot_resolve():
    with pytest.raises(ValueError, match="needs out"):
        run_f1_rate(0, "presence", "BPE", "best")
    with pytest.raises(ValueError, match="positive float"):
        run_f1_rate(0, "presence", "BPE", 0)


def test_rate_sweep_cells():
    spec = sweep_rates(seeds=(0, 1, 2, 3, 4))
    assert spec.name == "f1-rates" and spec.out == RATES_OUT
    models = {(c["task"], c["tokenization"]) for c in spec.cells}
    assert models == {(t, n) for t in ("presence", "count", "reversal")
                      for n in ("characters", "BPE")}
    assert len(spec.cells) == 6 * len(RATES) + 6 * 4
    # Seed 0 tries every rate, first; seeds 1-4 run at its choice.
    first = spec.cells[:6 * len(RATES)]
    assert {c["seed"] for c in first} == {0} and {c["lr"] for c in first} == set(RATES)
    # the registered grid, extended downward (stop 50's registered step)
    from phaselib.spelling import REGISTERED_RATES
    assert RATES[-3:] == REGISTERED_RATES == (2e-3, 6e-3, 1.8e-2)
    assert sorted(RATES) == list(RATES) and RATES[0] < 2e-3
    assert all(c["lr"] == "best" and c["out"] == RATES_OUT and c["seed"] > 0
               for c in spec.cells[6 * len(RATES):])


def test_run_letter_task_rejects_unknown_settings():
    with pytest.raises(ValueError, match="task must be one of"):
        run_letter_task(["abc"], ["abd"], CHARS, task="spell")
    with pytest.raises(ValueError, match="targets must be"):
        run_letter_task(["abc"], ["abd"], CHARS, targets="sparse")


def test_sweep_cells():
    spec = sweep(seeds=(0, 1, 2, 3, 4))
    assert spec.name == "f1" and spec.out == "book/part2/results/f1.json"
    assert len(spec.cells) == 3 + 5 * 3 + 3
    assert {(c["task"], c["targets"]) for c in spec.cells} == {
        ("presence", "dense"), ("presence", "answer"), ("count", "answer"),
        ("reversal", "answer")}
    # Every seed gets the answer-only settings the chapter judges.
    for task in ("presence", "count", "reversal"):
        assert {c["seed"] for c in spec.cells if c["task"] == task
                and c["targets"] == "answer" and "steps" not in c} == set(range(5))
    # The longer-budget reversal trains only the BPE model, for the first three seeds.
    long = [c for c in spec.cells if c.get("steps") == LONG_STEPS]
    assert [c["seed"] for c in long] == [0, 1, 2]
    assert all(c["bpe_only"] and c["task"] == "reversal" for c in long)
