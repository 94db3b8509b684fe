"""The pyramid chapter's FeatureMLP and the selection chapter's ScaleCopier."""

import math

import pytest
import torch

from phaselib import leaky_pyramid, pyramid
from phaselib.tasks import dyadic_copy_batch
from phaselib.toy_models import FeatureMLP, ScaleCopier


def moved_before(model, idx, s):
    """Positions t < s whose logits move when the token at s changes."""
    idx2 = idx.clone()
    idx2[:, s] = (idx2[:, s] + 1) % 8
    with torch.no_grad():
        a, b = model(idx)[0], model(idx2)[0]
    return [t for t in range(s) if not torch.allclose(a[:, t], b[:, t], atol=1e-6)]


def test_feature_mlp_is_causal_with_the_pyramid_and_leaks_with_the_leaky_one():
    torch.manual_seed(0)
    idx = torch.randint(8, (2, 16), generator=torch.Generator().manual_seed(1))
    causal = FeatureMLP(pyramid, 8, 6, 3, hidden=16)
    leaky = FeatureMLP(leaky_pyramid, 8, 6, 3, hidden=16)
    leaky.load_state_dict(causal.state_dict())
    assert moved_before(causal, idx, 9) == []
    # Token 9 sits in the 2-block [8, 10) and the 4-block [8, 12): the leaky pyramid hands
    # it to position 8 already.
    assert 8 in moved_before(leaky, idx, 9)


def test_feature_mlp_shapes_and_loss():
    torch.manual_seed(0)
    m = FeatureMLP(pyramid, 8, 6, 3, hidden=16)
    idx = torch.randint(8, (2, 5), generator=torch.Generator().manual_seed(2))
    logits, loss = m(idx, idx)
    assert logits.shape == (2, 5, 8) and m(idx)[1] is None
    assert loss.ndim == 0 and torch.isfinite(loss)
    # A zeroed output layer gives equal logits over the 8 tokens: the loss is log 8 nats.
    with torch.no_grad():
        m.mlp[-1].weight.zero_()
        m.mlp[-1].bias.zero_()
    torch.testing.assert_close(m(idx, idx)[1], torch.tensor(math.log(8)))


def copier(kind="softmax"):
    torch.manual_seed(0)
    return ScaleCopier(vocab=8, n_levels=3, n_embd=16, kind=kind).eval()


def test_scale_copier_is_causal_after_the_marker():
    x, _ = dyadic_copy_batch(3, 12, 8, 3, generator=torch.Generator().manual_seed(3))
    assert moved_before(copier(), x, 7) == []


def test_scale_copier_weights_are_a_distribution_over_the_levels():
    m = copier()
    x, y = dyadic_copy_batch(3, 12, 8, 3, generator=torch.Generator().manual_seed(4))
    logits, loss = m(x, y)
    assert logits.shape == (3, 12, 8) and torch.isfinite(loss)
    assert m.weights.shape == (3, 12, 3)
    torch.testing.assert_close(m.weights.sum(-1), torch.ones(3, 12))


def test_noise_reaches_a_blend_and_switches_off():
    # A softmax selector blends every candidate, so noise on the unchosen ones moves its
    # logits; with noise back at 0 the output is the clean one again.
    m = copier("softmax")
    x, _ = dyadic_copy_batch(2, 12, 8, 3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        clean = m(x)[0]
        m.noise, m.noise_gen = 10.0, torch.Generator().manual_seed(6)
        noisy = m(x)[0]
        m.noise = 0.0
        again = m(x)[0]
    assert not torch.allclose(clean, noisy)
    torch.testing.assert_close(again, clean)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="n_levels must be a positive int"):
        ScaleCopier(8, 0, 16, "softmax")
    with pytest.raises(ValueError, match="levels must be a positive int"):
        FeatureMLP(pyramid, 8, 6, 0)


def test_periodic_copy_batch_copies_with_the_drawn_period():
    from phaselib.toy_models import periodic_copy_batch

    x, y, k = periodic_copy_batch(64, 40, 16, 3, p_copy=1.0,
                                  generator=torch.Generator().manual_seed(0))
    for b in range(64):
        p = 2 ** int(k[b])
        assert torch.equal(x[b, p:], x[b, :-p])            # p_copy = 1: exactly periodic
    assert (y[:, :8] == -1).all() and (y[:, -1] == -1).all()
    assert torch.equal(y[:, 8:-1], x[:, 9:])                # next token from 2**3 on
    x, _, _ = periodic_copy_batch(64, 40, 16, 3, p_copy=0.0,
                                  generator=torch.Generator().manual_seed(0))
    assert not torch.equal(x[:, 1:], x[:, :-1])
    with pytest.raises(ValueError, match="T must exceed 2\\*\\*n_levels = 8"):
        periodic_copy_batch(2, 8, 16, 3)


def test_content_scale_copier_is_causal_and_its_candidates_are_the_lags():
    from phaselib.toy_models import ContentScaleCopier

    torch.manual_seed(0)
    m = ContentScaleCopier(16, 3, 8, "softmax").eval()
    idx = torch.randint(16, (2, 24), generator=torch.Generator().manual_seed(1))
    for s in (3, 11, 20):
        idx2 = idx.clone()
        idx2[:, s] = (idx2[:, s] + 5) % 16
        with torch.no_grad():
            a, b = m(idx)[0], m(idx2)[0]
        assert torch.equal(a[:, :s], b[:, :s])
        assert not torch.allclose(a[:, s:], b[:, s:])
    # With all weight on lag l, position t reads exactly the token t + 1 - 2**l.
    e = m.wte(idx)
    from phaselib.toy_models import _shift
    torch.testing.assert_close(_shift(e, 3)[:, 10], e[:, 7])
    assert torch.equal(_shift(e, 3)[:, 2], torch.zeros_like(e[:, 2]))
