"""Causal landmark attention: blocked form against the per-query loop, the decode step
against the batch form, causality, and the error against exact attention by block size."""

import pytest
import torch

from phaselib.remedies.landmark import (init_landmark_state, landmark_attention,
                                        landmark_reference, landmark_step,
                                        prefill_landmark_state)
from phaselib.remedies import exact_attention


def _qkv(B=2, H=4, Hkv=2, T=21, dh=8, dv=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, T, dh, generator=g), torch.randn(B, Hkv, T, dh, generator=g),
            torch.randn(B, Hkv, T, dv, generator=g))


@pytest.mark.parametrize("block", [1, 2, 4, 5, 21, 40])
def test_batch_equals_the_per_query_loop(block):
    q, k, v = _qkv()
    torch.testing.assert_close(landmark_attention(q, k, v, block),
                               landmark_reference(q, k, v, block), atol=1e-5, rtol=1e-5)


def _drifting(T=64, seed=0):
    """Keys and values that drift slowly with position (random walks): a block mean then
    stands for its keys. (On i.i.d. keys the error is not monotone in the block: a longer
    block also makes more of each query's keys exact.)"""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 4, T, 8, generator=g)
    k, v = (torch.cumsum(0.3 * torch.randn(2, 4, T, 8, generator=g), 2) for _ in range(2))
    return q, k, v


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_block_one_is_exact_and_error_grows_with_the_block(seed):
    q, k, v = _drifting(seed=seed)
    exact = exact_attention(q, k, v)
    errs = [(landmark_attention(q, k, v, b) - exact).abs().mean().item()
            for b in (1, 2, 4, 8, 16)]
    assert errs[0] < 1e-6
    assert all(a < b for a, b in zip(errs, errs[1:])), errs


def test_equal_keys_in_a_block_are_counted_exactly():
    q, k, v = _qkv(Hkv=4, T=16)
    k = k[:, :, ::4].repeat_interleave(4, dim=2)           # blocks of 4 equal keys
    v = v[:, :, ::4].repeat_interleave(4, dim=2)
    torch.testing.assert_close(landmark_attention(q, k, v, 4), exact_attention(q, k, v),
                               atol=1e-5, rtol=1e-5)


def test_causal_a_future_key_changes_nothing_before_it():
    q, k, v = _qkv()
    k2 = k.clone()
    k2[:, :, 13] += 3.0
    a, b = landmark_attention(q, k, v, 4), landmark_attention(q, k2, v, 4)
    torch.testing.assert_close(a[:, :, :13], b[:, :, :13])
    assert (a[:, :, 13:] - b[:, :, 13:]).abs().max() > 1e-3


@pytest.mark.parametrize("block,capacity", [(4, 1), (3, 64), (1, 2)])
def test_decode_steps_equal_the_batch_form(block, capacity):
    q, k, v = _qkv()
    full = landmark_attention(q, k, v, block)
    st = init_landmark_state(2, 2, 8, block, 6, capacity=capacity)
    for t in range(q.shape[2]):
        o, st = landmark_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5
    assert st.n_lm == 21 // block


def test_prefill_then_steps_equal_the_batch_form():
    q, k, v = _qkv()
    full = landmark_attention(q, k, v, 4)
    st = prefill_landmark_state(k[:, :, :10], v[:, :, :10], 4)
    assert st.n_lm == 2 and st.t == 10
    for t in range(10, 21):
        o, st = landmark_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5


def test_bad_block_is_named():
    with pytest.raises(ValueError, match="block must be a positive int"):
        landmark_attention(*_qkv(), 0)


def test_gradients_are_finite_through_the_masked_scores():
    q, k, v = (t.requires_grad_() for t in _qkv(T=19))
    landmark_attention(q, k, v, 4).square().sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
