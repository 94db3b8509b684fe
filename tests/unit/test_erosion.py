"""Tests for phaselib.erosion: in-word accuracy, real-word share, repetition rate,
exact continuation length, the association score, and passage insertion."""

import math

import pytest
import torch
from torch import nn

from phaselib.data import CharTokenizer
from phaselib.erosion import (association_score, continuation_length, corpus_vocab,
                              exact_prefix_length, in_word_mask, letter_mask,
                              local_accuracy, real_word_share, repetition_rate,
                              sequence_logprob, with_copies, words,
                              greedy_repetition, erosion, first_crossing)

TOK = CharTokenizer("ab :\n")   # ids: '\n'=0, ' '=1, ':'=2, 'a'=3, 'b'=4


def test_letter_mask_marks_only_letters():
    assert TOK.chars == ["\n", " ", ":", "a", "b"]
    assert letter_mask(TOK).tolist() == [False, False, False, True, True]


def test_local_accuracy_on_hand_made_logits():
    x = TOK.encode("ab a:ba")[None]            # previous characters
    y = TOK.encode("b a:bab")[None]            # targets
    # in-word positions: (a->b) t=0, (b->a) t=5, (a->b) t=6; the rest are "other".
    assert in_word_mask(x, y, letter_mask(TOK)).tolist() == [[True, False, False, False,
                                                             False, True, True]]
    logits = torch.zeros(1, 7, 5)
    guess = [4, 0, 0, 2, 4, 3, 3]              # right at t=0, 3, 4, 5; wrong at 1, 2, 6
    logits[0, torch.arange(7), torch.tensor(guess)] = 5.0
    r = local_accuracy(logits, x, y, letter_mask(TOK))
    assert r["in_word_n"] == 3 and r["other_n"] == 4
    assert r["in_word_acc"] == pytest.approx(2 / 3)
    assert r["other_acc"] == pytest.approx(2 / 4)
    right = -math.log(math.exp(5) / (math.exp(5) + 4))
    wrong = -math.log(1 / (math.exp(5) + 4))
    assert r["in_word_loss"] == pytest.approx((2 * right + wrong) / 3)
    assert r["other_loss"] == pytest.approx((2 * right + 2 * wrong) / 4)


def test_local_accuracy_rejects_bad_input():
    x = TOK.encode("ab")[None]
    with pytest.raises(ValueError, match=r"logits must be \[B, T, V\]"):
        local_accuracy(torch.zeros(1, 2, 4), x, x, letter_mask(TOK))
    with pytest.raises(TypeError, match="floating-point"):
        local_accuracy(torch.zeros(1, 2, 5, dtype=torch.long), x, x, letter_mask(TOK))
    with pytest.raises(TypeError, match="long tensor"):
        in_word_mask(x.float(), x, letter_mask(TOK))
    with pytest.raises(TypeError, match="bool"):
        in_word_mask(x, x, torch.ones(5))


def test_words_and_real_word_share():
    assert words("O Romeo, Romeo! wherefore art thou--'tis thine") == \
        ["o", "romeo", "romeo", "wherefore", "art", "thou", "tis", "thine"]
    vocab = corpus_vocab("The cat sat on the mat. Don't.")
    assert vocab == {"the", "cat", "sat", "on", "mat", "don't"}
    # 'the' 'cat' 'don't' real; 'sta' 'mta' not: 3 of 5.
    assert real_word_share("the cat sta, mta don't", vocab) == pytest.approx(3 / 5)
    assert math.isnan(real_word_share(" ,;: ", vocab))


def test_repetition_rate_counts_repeated_bigrams():
    # bigrams: (my lord) (lord my) (my lord) (lord my) (my good) -> 2 of 5 seen before.
    assert repetition_rate("my lord, my lord, my good") == pytest.approx(2 / 5)
    assert repetition_rate("to be or not to be") == pytest.approx(1 / 5)
    assert repetition_rate("a b c d") == 0.0
    assert math.isnan(repetition_rate("alone"))
    with pytest.raises(ValueError, match="n must be a positive int"):
        repetition_rate("a b", n=0)


def test_exact_prefix_length():
    assert exact_prefix_length("to be or not", "to be, or") == 5
    assert exact_prefix_length("abc", "abcdef") == 3
    assert exact_prefix_length("x", "y") == 0
    with pytest.raises(TypeError, match="must be str"):
        exact_prefix_length("a", None)


class _Cycle(nn.Module):
    """A stub LM that predicts the character after each input in a fixed cycle,
    except that it answers 'a' after ':'."""

    def __init__(self, tok, cycle):
        super().__init__()
        self.cfg = type("cfg", (), {"block_size": 64})()
        self.w = nn.Parameter(torch.zeros(1))
        nxt = torch.zeros(tok.vocab_size, tok.vocab_size)
        for c, d in zip(cycle, cycle[1:] + cycle[0]):
            nxt[tok.stoi[c], tok.stoi[d]] = 10.0
        nxt[tok.stoi[":"]] = 0.0
        nxt[tok.stoi[":"], tok.stoi["a"]] = 10.0
        self.register_buffer("nxt", nxt)

    def forward(self, idx, targets=None):
        return self.nxt[idx] + 0 * self.w, None

    def generate(self, idx, n, top_k=None, **kw):
        for _ in range(n):
            idx = torch.cat([idx, self.nxt[idx[:, -1]].argmax(-1, keepdim=True)], 1)
        return idx


def test_continuation_length_on_a_known_cycle():
    m = _Cycle(TOK, "ab ")
    assert continuation_length(m, TOK, "ab ab ab ab ", prompt_len=2) == 10
    # the passage breaks the cycle at its 7th character (index 6: 'b' where 'a' is due)
    assert continuation_length(m, TOK, "ab ab bb ab ", prompt_len=2) == 4
    with pytest.raises(ValueError, match="longer than prompt_len"):
        continuation_length(m, TOK, "ab", prompt_len=2)


class _Fixed(nn.Module):
    """A stub LM whose logits for the next character depend only on whether the
    context holds the character 'a': then target 'b' gets logit `boost`."""

    def __init__(self, boost):
        super().__init__()
        self.cfg = type("cfg", (), {"block_size": 64})()
        self.w = nn.Parameter(torch.zeros(1))
        self.boost = boost

    def forward(self, idx, targets=None):
        seen = (idx == TOK.stoi["a"]).cumsum(1) > 0         # [B, T]
        logits = torch.zeros(*idx.shape, TOK.vocab_size)
        logits[..., TOK.stoi["b"]] = torch.where(seen, self.boost, 0.0)
        return logits + 0 * self.w, None


def test_sequence_logprob_and_association_score_with_fixed_logits():
    m = _Fixed(boost=2.0)
    lp_b = 2.0 - math.log(math.exp(2.0) + 4)            # p(b) once 'a' is in context
    assert sequence_logprob(m, TOK, "a:", "b") == pytest.approx(lp_b)
    assert sequence_logprob(m, TOK, "b:", "b") == pytest.approx(-math.log(5))
    assert sequence_logprob(m, TOK, "a:", "bb") == pytest.approx(2 * lp_b)
    # speaker 'a' against controls 'b' and ' ': target "b" is boosted only after 'a'.
    # Prompts "a:\nb\n\n" and "a:\n \n\n": every control prompt lacks 'a'.
    s = association_score(m, TOK, names=("a",), target="b", controls=(("b",), (" ",)),
                          speeches=(("b",), (" ",)))
    assert s == pytest.approx(lp_b + math.log(5))
    # a speech that itself holds 'a' boosts the controls too: no association left.
    assert association_score(m, TOK, names=("a",), target="b", controls=(("b",),),
                             speeches=(("a",),)) == pytest.approx(0.0, abs=1e-12)
    assert association_score(_Fixed(0.0), TOK, names=("a",), target="b",
                             controls=(("b",),), speeches=(("b",),)) == 0.0
    with pytest.raises(ValueError, match="len\\(names\\)"):
        association_score(m, TOK, names=("a", "b"), target="b", controls=(("b",),),
                          speeches=(("b", "b"),))


def test_with_copies_inserts_whole_lines():
    text = "one\ntwo\nthree"
    out = with_copies(text, "PASS\nAGE\n", copies=3, seed=1)
    assert out.count("PASS\nAGE") == 3
    assert out.replace("PASS\nAGE\n", "").replace("\nPASS\nAGE", "") == text
    with pytest.raises(ValueError, match="copies"):
        with_copies(text, "x", copies=0)


def test_greedy_repetition_of_a_looping_model():
    m = _Cycle(TOK, "ab ")
    # "ab" continues " ab ab ab ab ab ab a": bigrams (ab ab) x5, (ab a): 4 of 6 seen
    # before; "ba" continues "b ab ab ab ab ab ab ": (b ab), (ab ab) x5: 4 of 6 too.
    assert greedy_repetition(m, TOK, ["ab", "ba"], n_chars=20) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="one length"):
        greedy_repetition(m, TOK, ["ab", "b"])


def test_check_in_word_accuracy_rejects_all_positions_and_accepts_in_word():
    from phaselib.exercises import check_in_word_accuracy

    def all_positions(logits, x, y, letters):
        return (logits.argmax(-1) == y).float().mean().item()

    def in_word(logits, x, y, letters):
        m = letters[x] & letters[y]
        return (logits.argmax(-1) == y)[m].float().mean().item()

    with pytest.raises(AssertionError, match="both letters"):
        check_in_word_accuracy(all_positions)
    assert check_in_word_accuracy(in_word) is True


def test_check_repetition_rate_rejects_case_sensitive_and_accepts_seen_before():
    from phaselib.exercises import check_repetition_rate

    def seen_before(text):
        ws = words(text)
        seen, rep = set(), 0
        for g in zip(ws, ws[1:]):
            rep += g in seen
            seen.add(g)
        return rep / (len(ws) - 1)

    def case_sensitive(text):
        ws = text.replace(",", " ").split()
        g = list(zip(ws, ws[1:]))
        return sum(x in g[:i] for i, x in enumerate(g)) / len(g)

    assert check_repetition_rate(seen_before) is True
    with pytest.raises(AssertionError, match="expected"):
        check_repetition_rate(case_sensitive)


def test_erosion_counts_falls_only_while_the_loss_improves():
    loss = [4.0, 3.0, 2.5, 2.6, 2.0]
    # accuracy falls 0.5 -> 0.4 at index 2 (loss new low): 0.1; at index 3 it falls
    # further, to 0.2, but the loss rose there: not counted; index 4: 0.5 - 0.3.
    assert erosion([0.1, 0.5, 0.4, 0.2, 0.3], loss) == pytest.approx(0.2)
    assert erosion([0.1, 0.2, 0.3, 0.1, 0.4], loss) == 0.0
    # a lower-is-better metric (a loss inside words) rising by 0.3 while loss falls
    assert erosion([3.0, 2.0, 2.3, 2.1, 1.0], loss, higher_is_better=False) == \
        pytest.approx(0.3)
    with pytest.raises(ValueError, match="one length"):
        erosion([1.0, 2.0], [1.0])


def test_first_crossing_is_for_good():
    assert first_crossing([0.0, 1.2, 0.5, 1.1, 1.3], 1.0) == 3
    assert first_crossing([1.0, 2.0], 1.0) == 0
    assert first_crossing([0.0, 2.0, 0.0], 1.0) is None
    assert first_crossing([], 1.0) is None


def test_paired_difference_se_counts_only_the_positions_that_disagree():
    from phaselib.erosion import paired_difference_se

    a = torch.tensor([1, 1, 0, 0, 1, 0, 1])
    assert paired_difference_se(a, a) == 0.0
    b = a.clone()
    b[2] = 1                                   # one disagreement in 7 positions
    d = (b - a).double()
    assert paired_difference_se(b, a) == pytest.approx(math.sqrt(d.var().item() / 7))
    with pytest.raises(ValueError, match="same >= 2 positions"):
        paired_difference_se(a, a[:3])
    with pytest.raises(TypeError, match="1-D"):
        paired_difference_se(a[None], a[None])


def test_held_windows_cut_ids_into_next_character_pairs():
    from phaselib.erosion import held_windows
    ids = torch.arange(11)
    x, y = held_windows(ids, 3)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="ids"):
        held_windows(torch.arange(3), 3)
    with pytest.raises(ValueError, match="block"):
        held_windows(ids, 0)
