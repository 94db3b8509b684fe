"""Landmark Attention with retrieval: the blocked form against the per-query loop
(outputs and gradients), causality, top-k, and the limits where it is exact."""

import pytest
import torch

from phaselib.remedies import exact_attention
from phaselib.remedies.landmark import block_mean_attention
from phaselib.remedies.retrieval import (landmark_retrieval_attention,
                                         landmark_retrieval_reference)


def _qkv(B=2, H=4, Hkv=2, T=21, dh=8, dv=6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, h, T, d, generator=g).to(dtype)
                 for h, d in ((H, dh), (Hkv, dh), (Hkv, dv)))


@pytest.mark.parametrize("block", [1, 4, 5, 40])
@pytest.mark.parametrize("top_k", [None, 1, 3])
def test_batch_equals_the_per_query_loop(block, top_k):
    q, k, v = _qkv()
    torch.testing.assert_close(landmark_retrieval_attention(q, k, v, block, top_k),
                               landmark_retrieval_reference(q, k, v, block, top_k),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("block", [3, 4])
def test_gradients_equal_the_per_query_loop(block):
    a = [t.requires_grad_() for t in _qkv(T=17, dtype=torch.float64)]
    b = [t.detach().clone().requires_grad_() for t in a]
    g = torch.randn(2, 4, 17, 6, generator=torch.Generator().manual_seed(9),
                    dtype=torch.float64)
    (landmark_retrieval_attention(*a, block) * g).sum().backward()
    (landmark_retrieval_reference(*b, block) * g).sum().backward()
    for x, y in zip(a, b):
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        torch.testing.assert_close(x.grad, y.grad, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("top_k", [None, 2])
def test_causal_a_future_token_changes_nothing_before_it(top_k):
    q, k, v = _qkv(T=23)
    q2, k2, v2 = q.clone(), k.clone(), v.clone()
    for x in (q2, k2, v2):
        x[:, :, 13:] += 3.0 * torch.randn_like(x[:, :, 13:])
    a = landmark_retrieval_attention(q, k, v, 4, top_k)
    b = landmark_retrieval_attention(q2, k2, v2, 4, top_k)
    assert torch.equal(a[:, :, :13], b[:, :, :13])
    assert (a[:, :, 13:] - b[:, :, 13:]).abs().max() > 1e-3


def test_block_one_and_block_at_least_T_are_exact_attention():
    """block = 1: each finished block is one token whose landmark is its key, and the
    own block's score is q . k_t, so p(b | q) p(j | q, b) = softmax_j(q . k_j).
    block >= T: every key is in the query's own block, attended exactly."""
    q, k, v = _qkv()
    exact = exact_attention(q, k, v)
    for block in (1, 21, 64):
        torch.testing.assert_close(landmark_retrieval_attention(q, k, v, block), exact,
                                   atol=1e-5, rtol=1e-5)


def test_equal_keys_in_every_block_make_it_exact_attention():
    """When a block's keys are equal, its landmark is that key and the product
    p(b | q) p(j | q, b) is exactly each token's softmax weight (as block means are)."""
    q, k, v = _qkv(Hkv=4, T=16)
    k = k[:, :, ::4].repeat_interleave(4, dim=2)
    torch.testing.assert_close(landmark_retrieval_attention(q, k, v, 4),
                               exact_attention(q, k, v), atol=1e-5, rtol=1e-5)


def test_a_far_token_is_read_exactly_where_block_means_blur_it():
    """One far block holds a key aligned with the query and its value: retrieval puts
    the weight on that token's own value, block means on the block's mean value."""
    q, k, v = _qkv(B=1, H=1, Hkv=1, T=12, dh=4, dv=4)
    k[..., :4, :] = 0.0
    k[0, 0, 1] = q[0, 0, 11] / q[0, 0, 11].norm() * 40.0
    v[..., :4, :] = 0.0
    v[0, 0, 1] = 1.0
    exact = exact_attention(q, k, v)[0, 0, 11]
    retr = landmark_retrieval_attention(q, k, v, 4)[0, 0, 11]
    mean = block_mean_attention(q, k, v, 4)[0, 0, 11]
    assert (retr - exact).abs().max() < 1e-3 < (mean - exact).abs().max()


def test_top_k_at_least_the_blocks_changes_nothing_and_fewer_does():
    q, k, v = _qkv()
    full = landmark_retrieval_attention(q, k, v, 4)
    torch.testing.assert_close(landmark_retrieval_attention(q, k, v, 4, 5), full)
    assert (landmark_retrieval_attention(q, k, v, 4, 1) - full).abs().max() > 1e-3


def test_top_k_reads_only_the_retrieved_blocks():
    """With top_k = 1, a query sees its own block and the one block whose landmark
    scores highest: changing a value in any other finished block changes nothing."""
    q, k, v = _qkv(B=1, H=1, Hkv=1, T=16)
    t = 15                                           # own block 3, finished 0, 1, 2
    land = torch.stack([k[0, 0, 4 * m:4 * m + 4].mean(0) @ q[0, 0, t]
                        for m in range(3)])
    best = int(land.argmax())
    other = next(m for m in range(3) if m != best)
    v2 = v.clone()
    v2[:, :, 4 * other] += 10.0
    a = landmark_retrieval_attention(q, k, v, 4, 1)[:, :, t]
    b = landmark_retrieval_attention(q, k, v2, 4, 1)[:, :, t]
    torch.testing.assert_close(a, b)
    v2[:, :, 4 * best] += 10.0
    c = landmark_retrieval_attention(q, k, v2, 4, 1)[:, :, t]
    assert (c - a).abs().max() > 1e-3


def test_bad_block_and_top_k_are_named():
    with pytest.raises(ValueError, match="block must be a positive int"):
        landmark_retrieval_attention(*_qkv(), 0)
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        landmark_retrieval_attention(*_qkv(), 4, 0)
    with pytest.raises(TypeError, match="top_k must be a positive int"):
        landmark_retrieval_reference(*_qkv(), 4, 1.5)
