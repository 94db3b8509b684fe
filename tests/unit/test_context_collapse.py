"""F5 experiments: failure points, entropy growth, the needle model's training options."""

import math

import pytest
import torch

from phaselib.context_collapse import entropy_growth, first_failure, measure_needle, train_needle


def test_first_failure_is_the_first_length_below_the_level_in_order():
    assert first_failure([32, 64, 128], [1.0, 0.85, 0.5]) == 64
    assert first_failure([32, 64, 128], [1.0, 0.95, 0.9]) is None   # 0.9 is not below 0.9
    assert first_failure([32, 64], [0.95, 0.2], level=0.99) == 32
    with pytest.raises(ValueError, match="same length"):
        first_failure([32, 64], [1.0])


def test_entropy_growth_is_one_for_the_uniform_row_and_zero_for_a_fixed_spread():
    T = 64
    uniform = torch.arange(1, T + 1, dtype=torch.float64).log()      # log(t + 1)
    fixed = torch.full((T,), math.log(3.0), dtype=torch.float64)
    fixed[:2] = torch.tensor([0.0, math.log(2.0)])
    g = entropy_growth(torch.stack([uniform, fixed]), t0=15)
    assert torch.allclose(g, torch.tensor([1.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="t0"):
        entropy_growth(uniform, t0=63)


def test_train_needle_rejects_lengths_past_its_table_and_measures_weights_in_range():
    with pytest.raises(ValueError, match="train_lengths"):
        train_needle(0, train_lengths=[2048])
    with pytest.raises(ValueError, match="train_lengths"):
        train_needle(0, train_lengths=[])
    m = train_needle(0, "log_n", [8, 16], steps=3, max_len=64)
    assert (m.wpe.weight == 0).all() and not m.wpe.weight.requires_grad
    r = measure_needle(m, 40, seed=0, test_batch=32)
    total = r["value"] + r["self"] + r["distractors"]
    assert 0 <= r["value"] <= 1 and 0 <= r["acc"] <= 1
    assert total == pytest.approx(1.0, abs=1e-4)     # the last query's row sums to one


class _ReadsTheValue(torch.nn.Module):
    """Reads the value perfectly (its class's logit counts the context's value tokens),
    then adds `offset` to the logit of token `token` (of 41)."""

    def __init__(self, token: int, offset: float):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.token, self.offset = token, offset

    def forward(self, x):
        found = torch.nn.functional.one_hot(x[:, :-1].clamp(max=8), 9)[..., :8]
        logits = torch.zeros(x.shape[0], x.shape[1], 41)
        logits[:, -1, :8] = found.sum(1).float()
        logits[:, -1, self.token] += self.offset
        return logits, None


def test_readout_check_removes_a_constant_bias_that_hides_the_value():
    from phaselib.context_collapse import readout_check

    r = readout_check(_ReadsTheValue(3, 5.0), 33, seed=0, batch=200)
    assert r["top"] == 1.0 and r["acc"] < 0.3          # class 3 wins every time
    assert r["margin"] < 0
    assert r["acc_centred"] == 1.0                       # the value was there all along
    assert r["outside"] == 0.0 and r["acc_vocab"] == r["acc"]


def test_readout_check_sees_an_answer_outside_the_value_classes():
    from phaselib.context_collapse import readout_check

    # Token 20 is no value class: it beats every value, which still rank right.
    r = readout_check(_ReadsTheValue(20, 100.0), 33, seed=0, batch=200)
    assert r["acc"] == 1.0 and r["acc_centred"] == 1.0   # among the values: right
    assert r["acc_vocab"] == 0.0 and r["outside"] == 1.0  # over the vocabulary: lost
