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
