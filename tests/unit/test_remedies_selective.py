"""The selective state space (Mamba's S6): the scan against the loop, causality, the
mixer's decode step against its forward pass, and bad shapes."""

import pytest
import torch

from phaselib.remedies.selective import (SelectiveSSMMixer, selective_reference,
                                         selective_scan)
from phaselib.remedies.ssm import ssm_reference


def _inputs(B=2, T=19, D=5, N=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g).to(dtype)

    u = r(B, T, D)
    delta = torch.nn.functional.softplus(r(B, T, D))
    A = -torch.exp(r(D, N))
    return u, delta, A, r(B, T, N), r(B, T, N), r(D)


@pytest.mark.parametrize("T", [1, 7, 19])
@pytest.mark.parametrize("chunk", [None, 1, 4, 64])
def test_scan_equals_the_loop(T, chunk):
    args = _inputs(T=T)
    torch.testing.assert_close(selective_scan(*args, chunk=chunk),
                               selective_reference(*args), atol=1e-5, rtol=1e-5)


def test_gradients_equal_the_loop():
    a = [t.requires_grad_() for t in _inputs(T=13, dtype=torch.float64)]
    b = [t.detach().clone().requires_grad_() for t in a]
    selective_scan(*a, chunk=4).square().sum().backward()      # the scan, not the loop
    selective_reference(*b).square().sum().backward()
    for x, y in zip(a, b):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-9, rtol=1e-9)


def test_constant_step_and_b_c_is_the_time_invariant_ssm():
    """With Delta, B, C the same at every t, S6 is the diagonal SSM of `ssm` with
    a = exp(Delta A), b = Delta B, c = C."""
    u, delta, A, b, c, _ = _inputs(B=1)
    delta = delta[:1, :1].expand_as(delta)
    b, c = b[:1, :1].expand_as(b), c[:1, :1].expand_as(c)
    want = ssm_reference(u, torch.exp(delta[0, 0, :, None] * A),
                         delta[0, 0, :, None] * b[0, 0], c[0, 0].expand(5, 3))
    torch.testing.assert_close(selective_scan(u, delta, A, b, c), want,
                               atol=1e-5, rtol=1e-5)


def test_a_large_step_forgets_the_past():
    u, delta, A, b, c, _ = _inputs(B=1, T=10)
    delta = delta.clone()
    delta[:, 6] = 1e3                      # exp(1e3 A) = 0: the state restarts at t = 6
    u2 = u.clone()
    u2[:, :6] += 5.0
    y, y2 = selective_scan(u, delta, A, b, c), selective_scan(u2, delta, A, b, c)
    assert (y[:, :6] - y2[:, :6]).abs().max() > 1e-2
    torch.testing.assert_close(y[:, 6:], y2[:, 6:])


def test_the_mixer_is_causal_and_its_steps_equal_its_forward():
    torch.manual_seed(0)
    m = SelectiveSSMMixer(12, 2, 32, n_state=4).double()
    x = torch.randn(2, 23, 12, dtype=torch.float64)
    y = m(x)
    x2 = x.clone()
    x2[:, 15:] += torch.randn_like(x2[:, 15:])
    assert torch.equal(y[:, :15], m(x2)[:, :15])
    st = m.init_state(2, dtype=torch.float64)
    for t in range(23):
        o, st = m.step(x[:, t], st)
        torch.testing.assert_close(o, y[:, t], atol=1e-10, rtol=1e-10)
    assert st.t == 23 and st.nbytes() == 8 * 2 * 12 * (3 + 4)


def test_the_mixer_inits_as_mamba_does():
    torch.manual_seed(0)
    m = SelectiveSSMMixer(32, 4, 64, n_state=6, dt_min=1e-3, dt_max=0.1)
    assert torch.equal(-torch.exp(m.A_log[0]), -torch.arange(1.0, 7.0))
    dt = torch.nn.functional.softplus(m.dt_bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    assert m.dt_rank == 2 and m.conv.kernel == 4


def test_bad_shapes_and_arguments_are_named():
    u, delta, A, b, c, d = _inputs()
    with pytest.raises(ValueError, match="delta must have shape"):
        selective_scan(u, delta[:, :3], A, b, c)
    with pytest.raises(ValueError, match="c must have shape"):
        selective_reference(u, delta, A, b, c[..., :2])
    with pytest.raises(ValueError, match="d_skip must have shape"):
        selective_scan(u, delta, A, b, c, d[:2])
    with pytest.raises(ValueError, match="chunk must be a positive int"):
        selective_scan(u, delta, A, b, c, chunk=0)
    with pytest.raises(ValueError, match="dt_min <= dt_max"):
        SelectiveSSMMixer(8, 2, 8, dt_min=0.2, dt_max=0.1)
    with pytest.raises(ValueError, match="n_state must be a positive int"):
        SelectiveSSMMixer(8, 2, 8, n_state=0)
    with pytest.raises(ValueError, match="mask is only for the softmax kinds"):
        SelectiveSSMMixer(8, 2, 8)(torch.randn(1, 4, 8), torch.ones(4, 4).bool())
