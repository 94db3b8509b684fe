"""Banded plus low-rank (FMMformer): blocked form against the masked matrices, the decode
step against the batch form, and the error against exact attention by band width."""

import pytest
import torch

from phaselib.efficient_attention import linear_attention_parallel
from phaselib.remedies import exact_attention, sliding_window_reference
from phaselib.remedies.fmm import (far_field, fmm_attention, fmm_reference, fmm_step,
                                   init_fmm_state, prefill_fmm_state)


def _qkv(B=2, H=4, Hkv=2, T=23, dh=8, dv=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, T, dh, generator=g), torch.randn(B, Hkv, T, dh, generator=g),
            torch.randn(B, Hkv, T, dv, generator=g))


@pytest.mark.parametrize("window", [1, 3, 5, 8, 22])
def test_batch_equals_the_masked_matrices(window):
    q, k, v = _qkv()
    torch.testing.assert_close(fmm_attention(q, k, v, window, far_weight=0.7),
                               fmm_reference(q, k, v, window, far_weight=0.7),
                               atol=1e-5, rtol=1e-5)


def test_far_field_at_window_one_is_linear_attention_over_the_strict_past():
    q, k, v = _qkv(Hkv=4)
    far = far_field(q, k, v, 1)
    full = linear_attention_parallel(q[:, :, 1:], k[:, :, :-1], v[:, :, :-1])
    torch.testing.assert_close(far[:, :, 1:], full, atol=1e-5, rtol=1e-5)
    assert far[:, :, 0].abs().max() == 0


def test_no_far_weight_is_the_band_and_a_long_window_is_exact():
    q, k, v = _qkv(Hkv=4)
    torch.testing.assert_close(fmm_attention(q, k, v, 4, far_weight=0.0),
                               sliding_window_reference(q, k, v, 4), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fmm_attention(q, k, v, 23), exact_attention(q, k, v),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_shrinks_as_the_band_widens(seed):
    q, k, v = _qkv(T=64, seed=seed)
    exact = exact_attention(q, k, v)
    errs = [(fmm_attention(q, k, v, w) - exact).abs().mean().item() for w in (2, 8, 32, 64)]
    assert errs[-1] < 1e-6
    assert all(a > b for a, b in zip(errs, errs[1:])), errs


def test_per_head_weights_scale_each_head():
    q, k, v = _qkv()
    wf = torch.tensor([0.0, 1.0, 2.0, 0.5])
    out = fmm_attention(q, k, v, 4, far_weight=wf)
    near = fmm_attention(q, k, v, 4, far_weight=0.0)
    one = fmm_attention(q, k, v, 4)
    torch.testing.assert_close(out[:, 0], near[:, 0])
    torch.testing.assert_close(out[:, 2] - near[:, 2], 2 * (one[:, 2] - near[:, 2]),
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"shape \[H\]"):
        fmm_attention(q, k, v, 4, far_weight=torch.ones(3))


@pytest.mark.parametrize("window", [1, 4, 7])
def test_decode_steps_equal_the_batch_form(window):
    q, k, v = _qkv()
    wf = torch.tensor([0.0, 1.0, 2.0, 0.5])
    full = fmm_attention(q, k, v, window, near_weight=0.9, far_weight=wf)
    st = init_fmm_state(2, 2, 8, window, 6)
    for t in range(q.shape[2]):
        o, st = fmm_step(q[:, :, t], k[:, :, t], v[:, :, t], st, near_weight=0.9,
                         far_weight=wf)
        assert (o - full[:, :, t]).abs().max() <= 1e-5


def test_prefill_then_steps_equal_the_batch_form():
    q, k, v = _qkv()
    full = fmm_attention(q, k, v, 4)
    st = prefill_fmm_state(k[:, :, :11], v[:, :, :11], 4)
    for t in range(11, 23):
        o, st = fmm_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5
    assert st.nbytes() == 4 * 2 * 2 * (4 * (8 + 6) + 8 * 6 + 8)


def test_gradients_are_finite_through_the_masked_scores():
    q, k, v = (t.requires_grad_() for t in _qkv(T=19))
    fmm_attention(q, k, v, 4).square().sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


@pytest.mark.parametrize("window", [1, 3, 8, 22, 30])
def test_far_field_over_all_keys_equals_the_masked_matrices(window):
    q, k, v = _qkv()
    wf = torch.tensor([0.0, 1.0, 2.0, 0.5])
    torch.testing.assert_close(
        fmm_attention(q, k, v, window, far_weight=wf, far_keys="all"),
        fmm_reference(q, k, v, window, far_weight=wf, far_keys="all"),
        atol=1e-5, rtol=1e-5)


def test_all_keys_is_the_band_plus_linear_attention_over_the_whole_past():
    q, k, v = _qkv(Hkv=4)
    out = fmm_attention(q, k, v, 4, near_weight=0.8, far_weight=0.3, far_keys="all")
    want = (0.8 * sliding_window_reference(q, k, v, 4)
            + 0.3 * linear_attention_parallel(q, k, v))
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    # the band's keys are in the far field too: unlike "outside", not exact at T
    exact = exact_attention(q, k, v)
    assert (fmm_attention(q, k, v, 23, far_keys="all") - exact).abs().max() > 1e-2
    no_far = fmm_attention(q, k, v, 23, far_keys="all", far_weight=0.0)
    torch.testing.assert_close(no_far, exact, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("window", [1, 4, 7])
def test_decode_steps_over_all_keys_equal_the_batch_form(window):
    q, k, v = _qkv()
    wf = torch.tensor([0.0, 1.0, 2.0, 0.5])
    full = fmm_attention(q, k, v, window, near_weight=0.9, far_weight=wf,
                         far_keys="all")
    st = init_fmm_state(2, 2, 8, window, 6, far_keys="all")
    for t in range(q.shape[2]):
        o, st = fmm_step(q[:, :, t], k[:, :, t], v[:, :, t], st, near_weight=0.9,
                         far_weight=wf)
        assert (o - full[:, :, t]).abs().max() <= 1e-5
    full = fmm_attention(q, k, v, 4, far_keys="all")
    st = prefill_fmm_state(k[:, :, :11], v[:, :, :11], 4, far_keys="all")
    for t in range(11, 23):
        o, st = fmm_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5


def test_far_keys_default_is_outside_and_a_bad_value_is_named():
    q, k, v = _qkv()
    assert torch.equal(fmm_attention(q, k, v, 4),
                       fmm_attention(q, k, v, 4, far_keys="outside"))
    with pytest.raises(ValueError, match="far_keys must be one of"):
        fmm_attention(q, k, v, 4, far_keys="near")
    with pytest.raises(ValueError, match="far_keys must be one of"):
        init_fmm_state(1, 1, 4, 4, far_keys="band")
