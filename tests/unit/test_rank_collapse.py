import math

import pytest
import torch

from phaselib.rank_collapse import (AttentionStack, collapse_curve, fit_rates,
                                    rank_one_residual)


def test_identical_rows_have_zero_residual_and_hand_values():
    x = torch.tensor([1.0, -2.0, 0.5])
    r = rank_one_residual(x.expand(4, 3).clone()).item()
    assert r == pytest.approx(0.0, abs=1e-7)
    # identity: mean row (1/2, 1/2), residual [[1/2, -1/2], [-1/2, 1/2]]: 1 / sqrt 2
    assert rank_one_residual(torch.eye(2)).item() == pytest.approx(1 / math.sqrt(2))
    # rank one but not identical rows: u x^T with u = (1, -1) has mean row 0
    assert rank_one_residual(torch.outer(torch.tensor([1.0, -1.0]), x)).item() == \
        pytest.approx(1.0)
    with pytest.raises(ValueError, match="zero matrix"):
        rank_one_residual(torch.zeros(3, 2))


def test_uniform_attention_with_identity_values_collapses_in_one_layer():
    st = AttentionStack(4, 1).double()
    with torch.no_grad():
        st.qkv[0].weight.zero_()
        st.qkv[0].weight[8:] = torch.eye(4)   # Wq = Wk = 0, Wv = I
        st.wo[0].weight.copy_(torch.eye(4))
    X = torch.randn(2, 5, 4, dtype=torch.float64)
    out = st(X)
    assert torch.allclose(out[1], X.mean(1, keepdim=True).expand_as(X))
    assert rank_one_residual(out[1]).max() < 1e-12
    st.skip = True  # with the skip the input survives: X + mean row
    assert torch.allclose(st(X)[1], X + X.mean(1, keepdim=True))


def test_causal_first_row_sees_only_itself():
    torch.manual_seed(0)
    st = AttentionStack(6, 2, n_head=2, causal=True)
    X = torch.randn(1, 5, 6)
    Y = X.clone()
    Y[:, 1:] = torch.randn(1, 4, 6)
    assert torch.allclose(st(X)[:, :, 0], st(Y)[:, :, 0], atol=1e-6)
    with pytest.raises(ValueError, match="d \\(6\\) must be divisible by n_head"):
        AttentionStack(6, 2, n_head=4)


def test_fit_rates_recovers_planted_rates():
    r = [math.exp(-0.01 * 3 ** l) for l in range(6)]
    assert fit_rates(r)["double"] == pytest.approx(3.0)
    r2 = [0.9 * 0.5 ** l for l in range(6)]
    assert fit_rates(r2)["single"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 3 values"):
        fit_rates([0.5, 1e-20, 1e-20])


def test_pure_attention_collapses_faster_than_with_skips():
    pure = collapse_curve(0, 4, n=7, d=8, batch=5)
    skip = collapse_curve(0, 4, n=7, d=8, batch=5, skip=True)
    assert len(pure) == 5
    assert pure[-1] < 1e-3 < skip[-1]
