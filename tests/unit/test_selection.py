"""Tests for phaselib.selection: the five selectors, the entropy, the ScaleSelector."""

import pytest
import torch

from phaselib.selection import (KINDS, ScaleSelector, dyadic_lags, entmax15, select_weights,
                                selection_entropy, sparsemax)

entmax = pytest.importorskip("entmax")


def _scores(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2


@pytest.mark.parametrize("kind", KINDS)
def test_weights_are_non_negative_and_sum_to_one(kind):
    w = select_weights(_scores(3, 7, 5), kind, tau=0.7)
    assert w.shape == (3, 7, 5)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 7))


@pytest.mark.parametrize("kind", ["hard_st", "gumbel"])
def test_hard_kinds_are_one_hot(kind):
    w = select_weights(_scores(4, 9, 6), kind, training=True)
    assert ((w.detach() == 0) | (w.detach() == 1)).all()
    assert (w.detach().sum(-1) == 1).all()


def test_hard_st_picks_the_argmax_and_gumbel_eval_too():
    z = _scores(5, 11, 7)
    for kind in ("hard_st", "gumbel"):
        w = select_weights(z, kind, training=False)
        assert torch.equal(w.argmax(-1), z.argmax(-1))


def test_sparsemax_equals_the_entmax_package():
    z = _scores(64, 13, dtype=torch.float64, seed=3)
    torch.testing.assert_close(sparsemax(z), entmax.sparsemax(z, dim=-1))


def test_entmax15_equals_the_entmax_package():
    z = _scores(64, 13, dtype=torch.float64, seed=4)
    torch.testing.assert_close(entmax15(z), entmax.entmax15(z, dim=-1))


def test_sparse_kinds_gradients_equal_the_entmax_package():
    z = _scores(16, 9, dtype=torch.float64, seed=5)
    g = _scores(16, 9, dtype=torch.float64, seed=6)
    for mine, theirs in ((sparsemax, entmax.sparsemax), (entmax15, entmax.entmax15)):
        a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
        (mine(a) * g).sum().backward()
        (theirs(b, dim=-1) * g).sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


def test_sparse_kinds_gradcheck():
    z = _scores(6, 5, dtype=torch.float64, seed=7).requires_grad_()
    assert torch.autograd.gradcheck(sparsemax, (z,))
    assert torch.autograd.gradcheck(entmax15, (z,))


@pytest.mark.parametrize("kind", ["sparsemax", "entmax15"])
def test_sparse_kinds_produce_exact_zeros(kind):
    w = select_weights(_scores(32, 8) * 3, kind)
    assert (w == 0).any()
    assert ((w == 0).sum(-1) < 8).all()


def test_softmax_has_no_zeros():
    assert (select_weights(_scores(32, 8), "softmax") > 0).all()


@pytest.mark.parametrize("kind", ["hard_st", "gumbel"])
def test_gradients_flow_through_the_straight_through_paths(kind):
    z = _scores(4, 5, 6).requires_grad_()
    target = _scores(4, 5, 6, seed=9)
    (select_weights(z, kind, training=True) * target).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert torch.isfinite(z.grad).all()


def test_gumbel_is_reproducible_with_a_generator():
    z = _scores(3, 4, 5)
    a = select_weights(z, "gumbel", generator=torch.Generator().manual_seed(1))
    b = select_weights(z, "gumbel", generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_entropy_is_zero_for_one_hot_and_log_L_for_uniform():
    L = 7
    one_hot = torch.eye(L)
    torch.testing.assert_close(selection_entropy(one_hot), torch.zeros(L))
    uniform = torch.full((3, L), 1.0 / L)
    torch.testing.assert_close(selection_entropy(uniform), torch.full((3,), float(torch.log(torch.tensor(7.0)))))


@pytest.mark.parametrize("kind", KINDS)
def test_scale_selector_shapes_and_blend(kind):
    B, T, L, C = 2, 9, 5, 6
    sel = ScaleSelector(C, L, kind=kind)
    q = _scores(B, T, C)
    # Candidate l is the basis vector e_l: the blend then spells out the weights,
    # out[..., :L] = w and the last channel (no candidate points there) is 0.
    cand = torch.eye(L, C).expand(B, T, L, C)
    out, w = sel(q, cand)
    assert out.shape == (B, T, C) and w.shape == (B, T, L)
    torch.testing.assert_close(out[..., :L], w)
    assert (out[..., L:] == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_scale_selector_is_causal(kind):
    B, T, L, C, s = 2, 13, 4, 5, 7
    sel = ScaleSelector(C, L, kind=kind).eval()
    q, cand = _scores(B, T, C), _scores(B, T, L, C, seed=1)
    out, w = sel(q, cand)
    q2, cand2 = q.clone(), cand.clone()
    q2[:, s:] += 5.0
    cand2[:, s:] -= 3.0
    out2, w2 = sel(q2, cand2)
    torch.testing.assert_close(out[:, :s], out2[:, :s])
    torch.testing.assert_close(w[:, :s], w2[:, :s])


@pytest.mark.parametrize("kind", ["hard_st", "gumbel"])
def test_scale_selector_trains_through_hard_choices(kind):
    sel = ScaleSelector(6, 4, kind=kind).train()
    out, _ = sel(_scores(2, 5, 6), _scores(2, 5, 4, 6, seed=2))
    out.pow(2).sum().backward()
    assert sel.score.weight.grad.abs().sum() > 0


def test_bad_inputs_name_the_argument():
    sel = ScaleSelector(6, 4)
    with pytest.raises(ValueError, match="query"):
        sel(torch.randn(5, 6), torch.randn(1, 5, 4, 6))
    with pytest.raises(ValueError, match="candidates"):
        sel(torch.randn(1, 5, 6), torch.randn(1, 5, 6))
    with pytest.raises(ValueError, match="query"):
        sel(torch.randn(1, 5, 7), torch.randn(1, 5, 4, 7))
    with pytest.raises(ValueError, match="candidates"):
        sel(torch.randn(1, 5, 6), torch.randn(1, 5, 3, 6))
    with pytest.raises(ValueError, match="kind"):
        ScaleSelector(6, 4, kind="argmax")
    with pytest.raises(ValueError, match="kind"):
        select_weights(torch.randn(3), "top1")
    with pytest.raises(ValueError, match="n_levels"):
        ScaleSelector(6, 0)
    with pytest.raises(TypeError, match="scores"):
        select_weights(torch.ones(3, dtype=torch.long), "softmax")
    with pytest.raises(ValueError, match="tau"):
        select_weights(torch.randn(3), "softmax", tau=0.0)


def test_dyadic_lags_look_exactly_2_to_the_l_back():
    B, T, C, L = 2, 11, 3, 5
    x = _scores(B, T, C)
    lags = dyadic_lags(x, L)
    assert lags.shape == (B, T, L, C)
    for t in range(T):
        for l in range(L):
            want = x[:, t - 2 ** l] if t - 2 ** l >= 0 else torch.zeros(B, C)
            torch.testing.assert_close(lags[:, t, l], want)
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        dyadic_lags(torch.randn(3, 4), 2)
