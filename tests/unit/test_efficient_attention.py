"""Sliding-window, linear and low-rank attention against their reference twins."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from phaselib.attention import attention
from phaselib.efficient_attention import (LinearAttentionState, linear_attention,
                                          linear_attention_parallel, linear_attention_recurrent,
                                          linear_attention_step, lowrank_attention,
                                          sliding_window_attention, sliding_window_reference)


def qkv(B, H, T, dh, dv=None, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    dv = dh if dv is None else dv
    return (torch.randn(B, H, T, dh, generator=g, dtype=dtype),
            torch.randn(B, H, T, dh, generator=g, dtype=dtype),
            torch.randn(B, H, T, dv, generator=g, dtype=dtype))


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 40), window=st.integers(1, 45), seed=st.integers(0, 10**6))
def test_sliding_window_chunked_equals_masked_reference(T, window, seed):
    q, k, v = qkv(2, 3, T, 5, 7, seed)
    torch.testing.assert_close(sliding_window_attention(q, k, v, window),
                               sliding_window_reference(q, k, v, window))


@pytest.mark.parametrize("T,window", [(1, 1), (13, 13), (13, 20), (31, 64)])
def test_sliding_window_at_least_T_equals_full_causal_attention(T, window):
    q, k, v = qkv(1, 2, T, 4, seed=T)
    torch.testing.assert_close(sliding_window_attention(q, k, v, window), attention(q, k, v)[0])


def _perturb_after(x, t):
    y = x.clone()
    y[:, :, t + 1:] += 10.0
    return y


@pytest.mark.parametrize("fn", [
    lambda q, k, v: sliding_window_attention(q, k, v, 5),
    lambda q, k, v: linear_attention(q, k, v, chunk=4),
    lambda q, k, v: lowrank_attention(q, k, v, torch.randn(3, q.shape[2], dtype=q.dtype,
                                                           generator=torch.Generator().manual_seed(1)),
                                      causal=True),
], ids=["sliding_window", "linear", "lowrank_causal"])
def test_outputs_before_t_ignore_keys_and_values_after_t(fn):
    q, k, v = qkv(2, 2, 19, 4, seed=3)
    t = 8
    base = fn(q, k, v)
    moved = fn(q, _perturb_after(k, t), _perturb_after(v, t))
    torch.testing.assert_close(base[:, :, : t + 1], moved[:, :, : t + 1])
    assert not torch.allclose(base[:, :, t + 1:], moved[:, :, t + 1:])


def test_sliding_window_output_ignores_keys_older_than_the_window():
    q, k, v = qkv(1, 1, 20, 4, seed=4)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, :10] += 5.0
    v2[:, :, :10] -= 5.0
    a, b = sliding_window_attention(q, k, v, 4), sliding_window_attention(q, k2, v2, 4)
    torch.testing.assert_close(a[:, :, 13:], b[:, :, 13:])  # t >= 13 sees keys 10.. only


def test_linformer_lowrank_is_not_causal():
    q, k, v = qkv(1, 2, 17, 4, seed=5)
    E = torch.randn(4, 17, dtype=q.dtype, generator=torch.Generator().manual_seed(0))
    base = lowrank_attention(q, k, v, E)
    moved = lowrank_attention(q, _perturb_after(k, 8), _perturb_after(v, 8), E)
    assert not torch.allclose(base[:, :, :9], moved[:, :, :9])  # the past reads the future


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 37), chunk=st.integers(1, 16), seed=st.integers(0, 10**6))
def test_linear_attention_chunked_equals_parallel_form(T, chunk, seed):
    q, k, v = qkv(2, 2, T, 3, 5, seed)
    torch.testing.assert_close(linear_attention(q, k, v, chunk=chunk), linear_attention_parallel(q, k, v))


@pytest.mark.parametrize("T", [1, 7, 23])
def test_linear_attention_recurrent_equals_parallel_form(T):
    q, k, v = qkv(2, 3, T, 4, 6, seed=T)
    torch.testing.assert_close(linear_attention_recurrent(q, k, v), linear_attention_parallel(q, k, v))


def test_linear_attention_step_state_is_the_running_sum_at_a_fixed_size():
    q, k, v = qkv(1, 2, 9, 4, 3, seed=6)
    s = LinearAttentionState.zeros(1, 2, 4, 3, q.dtype)
    for t in range(9):
        _, s = linear_attention_step(q[:, :, t], k[:, :, t], v[:, :, t], s)
    assert s.S.shape == (1, 2, 4, 3) and s.z.shape == (1, 2, 4)   # dh x dv, not 9 tokens
    # The state is its definition: S = sum_t phi(k_t) v_t^T, z = sum_t phi(k_t), phi = elu + 1.
    fk = torch.nn.functional.elu(k) + 1
    torch.testing.assert_close(s.S, torch.einsum("bhtd,bhte->bhde", fk, v))
    torch.testing.assert_close(s.z, fk.sum(2))


def test_linear_attention_gradients_match_parallel_form():
    q, k, v = (t.requires_grad_() for t in qkv(1, 2, 13, 3, seed=7))
    g1 = torch.autograd.grad(linear_attention(q, k, v, chunk=4).square().sum(), (q, k, v))
    g2 = torch.autograd.grad(linear_attention_parallel(q, k, v).square().sum(), (q, k, v))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_lowrank_with_identity_projection_is_full_noncausal_attention():
    q, k, v = qkv(1, 2, 11, 4, seed=8)
    I = torch.eye(11, dtype=q.dtype)
    torch.testing.assert_close(lowrank_attention(q, k, v, I), attention(q, k, v, causal=False)[0])


@pytest.mark.parametrize("call,err,match", [
    (lambda q, k, v: sliding_window_attention(q, k, v, 0), ValueError, "window must be"),
    (lambda q, k, v: sliding_window_attention(q, k, v, 2.5), TypeError, "window must be"),
    (lambda q, k, v: sliding_window_attention(q[0], k[0], v[0], 2), ValueError,
     "q must have 4 dimensions"),
    (lambda q, k, v: linear_attention(q, k[:, :, :3], v), ValueError, "same B, H, T"),
    (lambda q, k, v: linear_attention(q.long(), k, v), TypeError, "q must be a floating-point"),
    (lambda q, k, v: linear_attention(q, k, v, chunk=0), ValueError, "chunk must be"),
    (lambda q, k, v: lowrank_attention(q, k, v, torch.randn(3, 4, dtype=q.dtype)), ValueError,
     r"proj_k must have shape \[r, T\]"),
])
def test_bad_inputs_raise_named_errors(call, err, match):
    q, k, v = qkv(1, 2, 9, 4, seed=9)
    with pytest.raises(err, match=match):
        call(q, k, v)
