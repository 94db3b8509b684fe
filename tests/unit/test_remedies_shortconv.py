"""The short causal convolution: the conv1d form against the tap-by-tap loop, causality,
the decode step, and the mixers that put it on their input."""

import pytest
import torch

from phaselib.remedies.mixers import make_mixer
from phaselib.remedies.shortconv import (ShortConv, causal_conv1d,
                                         causal_conv1d_reference)


@pytest.mark.parametrize("K", [1, 3, 4])
@pytest.mark.parametrize("T", [1, 2, 11])
def test_conv_equals_the_loop(K, T):
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=g) for s in ((2, T, 5), (5, K), (5,)))
    torch.testing.assert_close(causal_conv1d(x, w, b), causal_conv1d_reference(x, w, b))
    torch.testing.assert_close(causal_conv1d(x, w), causal_conv1d_reference(x, w))


def test_causal_and_reaches_exactly_K_minus_1_back():
    torch.manual_seed(1)
    conv = ShortConv(6, 4)
    x = torch.randn(2, 20, 6)
    x2 = x.clone()
    x2[:, 10] += 1.0
    d = (conv(x2) - conv(x)).abs().amax(dim=(0, 2))
    assert (d[:10] == 0).all() and (d[10:14] > 0).all() and (d[14:] == 0).all()


def test_steps_equal_the_batch_form():
    torch.manual_seed(2)
    conv = ShortConv(5, 4).double()
    x = torch.randn(3, 9, 5, dtype=torch.float64)
    y, past = conv(x), conv.init_past(3, dtype=torch.float64)
    for t in range(9):
        y_t, past = conv.step(x[:, t], past)
        torch.testing.assert_close(y_t, y[:, t])


def _identity(conv: ShortConv) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, -1] = 1.0
        conv.bias.zero_()


@pytest.mark.parametrize("plain,with_conv", [("linear", "linear-conv"),
                                             ("ssm", "ssm-conv")])
def test_the_conv_mixers_are_the_plain_mixers_with_a_conv_in_front(plain, with_conv):
    """Set the convolution to the identity and the mixer is its plain twin: the conv
    is the only thing added."""
    torch.manual_seed(3)
    a = make_mixer(plain, 16, 2, 32)
    b = make_mixer(with_conv, 16, 2, 32)
    assert b.conv.kernel == 4 and a.conv is None
    missing = b.load_state_dict(a.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["conv.bias", "conv.weight"]
    x = torch.randn(2, 21, 16)
    assert (a(x) - b(x)).abs().max() > 1e-4
    _identity(b.conv)
    torch.testing.assert_close(b(x), a(x))


@pytest.mark.parametrize("name", ["fused", "window", "block-mean", "linear", "fmm-band",
                                  "centroids", "ssm", "landmark-retrieval", "lsh"])
def test_short_conv_zero_leaves_a_mixer_bit_identical(name):
    torch.manual_seed(4)
    a = make_mixer(name, 16, 2, 32)
    torch.manual_seed(4)
    b = make_mixer(name, 16, 2, 32, short_conv=0)
    assert a.state_dict().keys() == b.state_dict().keys()
    x = torch.randn(2, 19, 16)
    assert torch.equal(a(x), b(x))


def test_bad_short_conv_is_named():
    with pytest.raises(ValueError, match="short_conv must be an int >= 0"):
        make_mixer("linear", 16, 2, 8, short_conv=-1)
    with pytest.raises(ValueError, match="short_conv must be an int >= 0"):
        make_mixer("ssm", 16, 2, 8, short_conv=2.5)
    with pytest.raises(ValueError, match="weight must have shape"):
        causal_conv1d(torch.randn(1, 4, 3), torch.randn(2, 4))
