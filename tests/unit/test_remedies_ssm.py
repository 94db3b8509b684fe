"""The diagonal linear recurrence: parallel scan against the loop, the step against the
scan, the state after a prompt, and bad shapes."""

import pytest
import torch

from phaselib.remedies.ssm import (init_ssm_state, prefill_ssm_state, ssm_reference,
                                   ssm_scan, ssm_step)


def _params(B=2, T=19, D=5, N=3, varying=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, D, generator=g)
    shape = (B, T, D, N) if varying else (D, N)
    a = torch.rand(*shape, generator=g) * 0.9 + 0.05
    b, c = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    return x, a, b, c


@pytest.mark.parametrize("T", [1, 2, 7, 16, 19])
@pytest.mark.parametrize("varying", [False, True])
@pytest.mark.parametrize("chunk", [None, 1, 4, 5, 64])
def test_parallel_scan_equals_the_loop(T, varying, chunk):
    x, a, b, c = _params(T=T, varying=varying)
    torch.testing.assert_close(ssm_scan(x, a, b, c, chunk=chunk), ssm_reference(x, a, b, c),
                               atol=1e-5, rtol=1e-5)


def test_initial_state_is_carried():
    x, a, b, c = _params(varying=True)
    h0 = torch.randn(2, 5, 3)
    for chunk in (None, 4):
        torch.testing.assert_close(ssm_scan(x, a, b, c, h0=h0, chunk=chunk),
                                   ssm_reference(x, a, b, c, h0=h0), atol=1e-5, rtol=1e-5)
    assert (ssm_scan(x, a, b, c, h0=h0) - ssm_scan(x, a, b, c)).abs().max() > 1e-3


def test_decay_one_and_unit_weights_is_a_running_sum():
    x = torch.randn(1, 9, 2)
    ones = torch.ones(2, 1)
    torch.testing.assert_close(ssm_scan(x, ones, ones, ones), torch.cumsum(x, 1),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("varying", [False, True])
def test_steps_equal_the_scan_at_every_position(varying):
    x, a, b, c = _params(varying=varying)
    y = ssm_scan(x, a, b, c)
    st = init_ssm_state(2, 5, 3)
    at = (lambda p, t: p) if not varying else (lambda p, t: p[:, t])
    for t in range(x.shape[1]):
        o, st = ssm_step(x[:, t], at(a, t), at(b, t), at(c, t), st)
        assert (o - y[:, t]).abs().max() <= 1e-5
    assert st.t == 19 and st.nbytes() == 2 * 5 * 3 * 4


def test_prefill_then_steps_equal_the_scan():
    x, a, b, c = _params()
    y = ssm_scan(x, a, b, c)
    st = prefill_ssm_state(x[:, :8], a, b, c)
    for t in range(8, 19):
        o, st = ssm_step(x[:, t], a, b, c, st)
        assert (o - y[:, t]).abs().max() <= 1e-5


def test_bad_shapes_are_named():
    x, a, b, c = _params()
    with pytest.raises(ValueError, match="b must have shape"):
        ssm_scan(x, a, b[:, :2], c)
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        ssm_scan(x[0], a, b, c)
    with pytest.raises(ValueError, match="x_t must have shape"):
        ssm_step(x[:, 0, :4], a, b, c, init_ssm_state(2, 5, 3))


@pytest.mark.parametrize("chunk", [None, 3, 8])
def test_negative_and_oscillating_decays_match_the_loop(chunk):
    x, a, b, c = _params(T=17)
    a = -a                                   # h flips sign every step
    torch.testing.assert_close(ssm_scan(x, a, b, c, chunk=chunk), ssm_reference(x, a, b, c),
                               atol=1e-5, rtol=1e-5)
