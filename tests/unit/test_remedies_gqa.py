"""Grouped- and multi-query attention: batch form against a per-head loop, the cached
decode step against the batch form, and the cache arithmetic."""

import pytest
import torch

from phaselib.kvcache import kv_cache_bytes
from phaselib.remedies import (cache_bytes_per_token, exact_attention, gqa_attention,
                               gqa_reference, gqa_step, init_gqa_state, mqa_attention,
                               prefill_gqa_state)


def _qkv(B=2, H=6, Hkv=2, T=11, dh=8, dv=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, T, dh, generator=g), torch.randn(B, Hkv, T, dh, generator=g),
            torch.randn(B, Hkv, T, dv, generator=g))


@pytest.mark.parametrize("Hkv", [6, 3, 2, 1])
def test_gqa_equals_the_per_head_loop(Hkv):
    q, k, v = _qkv(Hkv=Hkv)
    torch.testing.assert_close(gqa_attention(q, k, v), gqa_reference(q, k, v),
                               atol=1e-5, rtol=1e-5)


def test_head_h_reads_kv_head_h_over_group_size():
    q, k, v = _qkv(Hkv=2)                         # groups of 3 query heads
    v2 = v.clone()
    v2[:, 1] += 1.0                               # changes query heads 3, 4, 5 only
    a, b = gqa_attention(q, k, v), gqa_attention(q, k, v2)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    torch.testing.assert_close(b[:, 3:], a[:, 3:] + 1.0, atol=1e-5, rtol=1e-5)


def test_mqa_is_one_kv_head_and_rejects_more():
    q, k, v = _qkv(Hkv=1)
    torch.testing.assert_close(mqa_attention(q, k, v), exact_attention(q, k, v),
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[B, 1, T, dh\]"):
        mqa_attention(*_qkv(Hkv=2))


@pytest.mark.parametrize("capacity", [1, 4, 64])
def test_decode_steps_equal_the_batch_form_at_every_position(capacity):
    q, k, v = _qkv(Hkv=2)
    full = gqa_attention(q, k, v)
    st = init_gqa_state(2, 2, 8, 5, capacity=capacity)
    for t in range(q.shape[2]):
        o, st = gqa_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5
    assert st.length == q.shape[2]


def test_prefill_then_steps_equal_the_batch_form():
    q, k, v = _qkv(Hkv=3, T=15)
    full = gqa_attention(q, k, v)
    st = prefill_gqa_state(k[:, :, :9], v[:, :, :9], capacity=12)
    for t in range(9, 15):
        o, st = gqa_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5


def test_cache_bytes_follow_kvcache_arithmetic():
    st = prefill_gqa_state(*_qkv(Hkv=2, dv=8)[1:])
    assert st.nbytes() == kv_cache_bytes(1, 2, 8, 11, batch=2, bytes_per_elem=4)
    assert cache_bytes_per_token(32, 8, 128) == 2 * 32 * 8 * 128 * 2
    assert cache_bytes_per_token(32, 32, 128) == 4 * cache_bytes_per_token(32, 8, 128)


def test_step_rejects_heads_that_do_not_match_the_cache():
    st = init_gqa_state(1, 2, 4)
    with pytest.raises(ValueError, match="key/value heads"):
        gqa_step(torch.zeros(1, 4, 4), torch.zeros(1, 3, 4), torch.zeros(1, 3, 4), st)


@pytest.mark.parametrize("Hkv", [3, 1])
def test_gqa_gradients_equal_the_per_head_loop(Hkv):
    a = [t.requires_grad_() for t in _qkv(Hkv=Hkv)]
    b = [t.detach().clone().requires_grad_() for t in a]
    gqa_attention(*a).square().sum().backward()
    gqa_reference(*b).square().sum().backward()
    for x, y in zip(a, b):
        torch.testing.assert_close(x.grad, y.grad, atol=1e-5, rtol=1e-5)


def test_gqa_makes_no_expanded_copy_of_the_kv_heads():
    """The groups read their key/value head in place (enable_gqa): no repeat of k, v
    shows up among the operators the forward and backward pass run (dv = dh, which
    PyTorch's CPU flash kernel needs; otherwise it falls back to the math kernel)."""
    from torch.profiler import ProfilerActivity, profile

    q, k, v = (t.requires_grad_() for t in _qkv(Hkv=2, T=33, dv=8))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        gqa_attention(q, k, v).sum().backward()
    ops = {e.key for e in prof.key_averages()}
    assert "aten::scaled_dot_product_attention" in ops
    assert not ops & {"aten::repeat_interleave", "aten::repeat", "aten::index_select"}
