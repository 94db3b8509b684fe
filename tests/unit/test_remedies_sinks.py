"""Sliding window with attention sinks: blocked batch form against the masked matrix,
the ring-buffer decode step against the batch form, and what the sinks change."""

import pytest
import torch

from phaselib.remedies import (exact_attention, init_sink_state, prefill_sink_state,
                               sink_attention, sink_mask, sink_reference, sink_step,
                               sliding_window_reference)


def _qkv(B=2, H=4, Hkv=2, T=23, dh=8, dv=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, T, dh, generator=g), torch.randn(B, Hkv, T, dh, generator=g),
            torch.randn(B, Hkv, T, dv, generator=g))


def test_mask_for_a_small_case():
    m = sink_mask(6, 2, 1).int()
    assert m.tolist() == [[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                          [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0], [1, 0, 0, 0, 1, 1]]


@pytest.mark.parametrize("window,n_sink", [(1, 0), (4, 0), (5, 1), (4, 3), (3, 7), (30, 2)])
def test_batch_equals_the_masked_reference(window, n_sink):
    q, k, v = _qkv()
    torch.testing.assert_close(sink_attention(q, k, v, window, n_sink),
                               sink_reference(q, k, v, window, n_sink), atol=1e-5, rtol=1e-5)


def test_no_sink_is_the_sliding_window_and_a_long_window_is_exact():
    q, k, v = _qkv(Hkv=4)
    torch.testing.assert_close(sink_attention(q, k, v, 5),
                               sliding_window_reference(q, k, v, 5), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sink_attention(q, k, v, 23, 2), exact_attention(q, k, v),
                               atol=1e-5, rtol=1e-5)


def test_sinks_reach_the_first_keys_and_the_window_does_not():
    q, k, v = _qkv()
    v2 = v.clone()
    v2[:, :, 0] += 10.0                                   # only the first value changes
    for n_sink, moved in ((0, False), (1, True)):
        a = sink_attention(q, k, v, 4, n_sink)[:, :, 10:]
        b = sink_attention(q, k, v2, 4, n_sink)[:, :, 10:]
        assert bool((a - b).abs().max() > 1e-3) is moved


@pytest.mark.parametrize("window,n_sink", [(4, 0), (4, 2), (3, 5)])
def test_decode_steps_equal_the_batch_form(window, n_sink):
    q, k, v = _qkv()
    full = sink_attention(q, k, v, window, n_sink)
    st = init_sink_state(2, 2, 8, window, n_sink, 6)
    for t in range(q.shape[2]):
        o, st = sink_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5
    assert st.nbytes() == 4 * 2 * 2 * (window + n_sink) * (8 + 6)


def test_prefill_then_steps_equal_the_batch_form():
    q, k, v = _qkv()
    full = sink_attention(q, k, v, 4, 2)
    st = prefill_sink_state(k[:, :, :13], v[:, :, :13], 4, 2)
    for t in range(13, 23):
        o, st = sink_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5


def test_bad_sizes_are_named():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="n_sink must be an int >= 0"):
        sink_attention(q, k, v, 4, -1)
    with pytest.raises(ValueError, match="window must be a positive int"):
        sink_attention(q, k, v, 0)


def test_gradients_are_finite_through_the_masked_scores():
    q, k, v = (t.requires_grad_() for t in _qkv(T=19))
    sink_attention(q, k, v, 4, 2).square().sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


@pytest.mark.parametrize("n_sink", [0, 2])
def test_error_against_exact_shrinks_as_the_window_grows(n_sink):
    q, k, v = _qkv(T=64)
    exact = exact_attention(q, k, v)
    errs = [(sink_attention(q, k, v, w, n_sink) - exact).abs().mean().item()
            for w in (2, 8, 32, 64)]
    assert errs[-1] < 1e-6
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
