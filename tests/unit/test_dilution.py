"""Closed forms of attention dilution: the salience weight, its threshold, entropies."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from phaselib.dilution import (attention_entropy, distractors_to_drop_below, salience_weight,
                               uniform_entropy)


def test_salience_weight_matches_a_real_softmax():
    for delta, n in ((0.0, 1), (2.0, 7), (5.5, 1000), (-1.0, 3)):
        scores = torch.zeros(n + 1, dtype=torch.float64)
        scores[0] = delta
        want = torch.softmax(scores, 0)[0]
        assert torch.allclose(salience_weight(delta, n), want, atol=1e-12)


def test_salience_weight_limits_and_broadcasting():
    assert salience_weight(3.0, 0).item() == 1.0           # nothing to compete with
    assert salience_weight(0.0, 1).item() == pytest.approx(0.5)
    w = salience_weight(torch.tensor([[0.0], [4.0]]), torch.tensor([1.0, 10.0, 100.0]))
    assert w.shape == (2, 3)
    assert (w[:, 1:] < w[:, :-1]).all()                    # more distractors, less weight
    assert (w[1] > w[0]).all()                             # larger advantage, more weight
    assert torch.isfinite(salience_weight(800.0, 1e30)).all()


@settings(max_examples=60, deadline=None)
@given(delta=st.floats(-5, 15), threshold=st.floats(1e-4, 0.9))
def test_distractors_to_drop_below_is_the_smallest_such_n(delta, threshold):
    n = distractors_to_drop_below(delta, threshold)
    assert salience_weight(delta, n).item() < threshold
    if n > 0:
        assert salience_weight(delta, n - 1).item() >= threshold


def test_distractors_to_drop_below_closed_form():
    # e^delta (1 - 0.01) / 0.01 = 99 e^delta
    for delta in (0.0, 2.0, 4.6, 9.0):
        assert distractors_to_drop_below(delta) == math.floor(99 * math.exp(delta)) + 1


def test_attention_entropy_uniform_one_hot_and_masked():
    T = 7
    causal = torch.ones(T, T, dtype=torch.float64).tril()
    uniform_rows = causal / causal.sum(-1, keepdim=True)
    # Row t spreads evenly over t + 1 keys: entropy log(t + 1) nats.
    log_n = torch.log(torch.arange(1, T + 1, dtype=torch.float64))
    assert torch.allclose(attention_entropy(uniform_rows), log_n)
    assert torch.allclose(uniform_entropy(T), log_n)
    one_hot = torch.eye(5)
    assert torch.equal(attention_entropy(one_hot), torch.zeros(5))
    w = torch.softmax(torch.randn(3, 4, 11, generator=torch.Generator().manual_seed(0)), -1)
    h = attention_entropy(w)
    assert h.shape == (3, 4)
    assert (h >= 0).all() and (h <= math.log(11) + 1e-6).all()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="n counts distractors"):
        salience_weight(1.0, -1)
    with pytest.raises(TypeError, match="delta"):
        salience_weight("big", 3)
    with pytest.raises(ValueError, match="threshold"):
        distractors_to_drop_below(2.0, 1.5)
    with pytest.raises(TypeError, match="delta"):
        distractors_to_drop_below(float("inf"))
    with pytest.raises(ValueError, match="sum to one"):
        attention_entropy(torch.ones(3, 4))
    with pytest.raises(ValueError, match="non-negative"):
        attention_entropy(torch.tensor([1.5, -0.5]))
    with pytest.raises(TypeError, match="floating-point"):
        attention_entropy(torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="T must be"):
        uniform_entropy(0)


def test_needle_batch_has_one_value_and_scores_only_the_query():
    from phaselib.tasks import needle_batch
    x, y = needle_batch(50, 23, 5, 9, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (50, 24)
    assert ((x[:, :-1] < 5).sum(-1) == 1).all()                 # exactly one value in context
    assert (x[:, -1] == 14).all()                               # the query token
    value = x[:, :-1][x[:, :-1] < 5]
    assert torch.equal(y[:, -1], value)
    assert (y[:, :-1] == -1).all()
    with pytest.raises(ValueError, match="n_ctx"):
        needle_batch(2, 0)


def test_read_accuracy_zero_distractors_read_any_positive_weight():
    from phaselib.dilution import read_accuracy
    g = torch.Generator().manual_seed(0)
    assert read_accuracy(0.001, 10**6, distractors="zero", generator=g, trials=200) == 1.0


def test_read_accuracy_random_distractors_average_out_as_n_grows():
    from phaselib.dilution import read_accuracy
    g = torch.Generator().manual_seed(1)
    # The distractors' noise per class is about sqrt(1/8 * 7/8 / n): 0.033 at n = 100,
    # 3.3e-4 at n = 10**6, against a value weight of 0.005.
    few = read_accuracy(0.005, 100, generator=g, trials=2000)
    many = read_accuracy(0.005, 10**6, generator=g, trials=2000)
    assert few < 0.3 and many > 0.99
    with pytest.raises(ValueError, match="w must be"):
        read_accuracy(1.5, 10)
    with pytest.raises(ValueError, match="distractors"):
        read_accuracy(0.1, 10, distractors="ones")
