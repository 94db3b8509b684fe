"""Clustered attention: k-means itself, the blocked form against the per-query loop, the
decode step against the batch form, and the error against exact attention by the number
of clusters."""

import pytest
import torch

from phaselib.remedies import exact_attention
from phaselib.remedies.cluster import (cluster_attention, cluster_reference, cluster_step,
                                       init_cluster_state, kmeans_keys,
                                       prefill_cluster_state)


def _qkv(B=2, H=4, Hkv=2, T=21, dh=8, dv=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, T, dh, generator=g), torch.randn(B, Hkv, T, dh, generator=g),
            torch.randn(B, Hkv, T, dv, generator=g))


def test_kmeans_summaries_are_the_means_of_the_keys_nearest_each_centroid():
    g = torch.Generator().manual_seed(1)
    kb, vb = torch.randn(3, 16, 4, generator=g), torch.randn(3, 16, 2, generator=g)
    mu, nu, logw = kmeans_keys(kb, vb, 4, iters=2)
    assert mu.shape == (3, 4, 4) and nu.shape == (3, 4, 2) and logw.shape == (3, 4)
    torch.testing.assert_close(logw.exp().sum(-1), torch.full((3,), 16.0))
    # round 2's assignment is to the centroids that one round fewer returns
    prev = kmeans_keys(kb, vb, 4, iters=1)[0]
    assign = torch.cdist(kb, prev).argmin(-1)
    for i in range(3):
        for c in range(4):
            members = assign[i] == c
            assert logw[i, c].exp().round().item() == members.sum().item()
            if members.any():
                torch.testing.assert_close(mu[i, c], kb[i, members].mean(0))
                torch.testing.assert_close(nu[i, c], vb[i, members].mean(0))


def test_kmeans_with_one_cluster_per_key_returns_the_keys():
    kb, vb = torch.randn(2, 5, 3), torch.randn(2, 5, 2)
    mu, nu, logw = kmeans_keys(kb, vb, 5)
    torch.testing.assert_close(mu, kb)
    torch.testing.assert_close(nu, vb)
    torch.testing.assert_close(logw, torch.zeros(2, 5))


def test_kmeans_separates_two_far_groups():
    a, b = torch.zeros(6, 2), torch.full((6, 2), 10.0)
    kb = torch.cat([a, b]) + 0.01 * torch.randn(12, 2)
    vb = torch.cat([torch.zeros(6, 1), torch.ones(6, 1)])
    mu, nu, logw = kmeans_keys(kb, vb, 2)
    assert sorted(nu.flatten().tolist()) == [0.0, 1.0]
    torch.testing.assert_close(logw.exp(), torch.tensor([6.0, 6.0]))


@pytest.mark.parametrize("block,c", [(4, 1), (4, 2), (5, 3), (3, 3), (8, 2), (40, 2)])
def test_batch_equals_the_per_query_loop(block, c):
    q, k, v = _qkv()
    torch.testing.assert_close(cluster_attention(q, k, v, block, c),
                               cluster_reference(q, k, v, block, c), atol=1e-5, rtol=1e-5)


def test_clusters_as_many_as_keys_is_exact():
    q, k, v = _qkv()
    torch.testing.assert_close(cluster_attention(q, k, v, 4, 4), exact_attention(q, k, v),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_shrinks_as_the_clusters_grow(seed):
    q, k, v = _qkv(T=64, Hkv=4, seed=seed)
    exact = exact_attention(q, k, v)
    errs = [(cluster_attention(q, k, v, 16, c) - exact).abs().mean().item()
            for c in (1, 4, 8, 16)]
    assert errs[-1] < 1e-6
    assert all(a > b for a, b in zip(errs, errs[1:])), errs


def test_causal_a_future_key_changes_nothing_before_it():
    q, k, v = _qkv()
    k2 = k.clone()
    k2[:, :, 13] += 3.0
    a, b = cluster_attention(q, k, v, 4, 2), cluster_attention(q, k2, v, 4, 2)
    torch.testing.assert_close(a[:, :, :13], b[:, :, :13])
    assert (a[:, :, 13:] - b[:, :, 13:]).abs().max() > 1e-3


@pytest.mark.parametrize("block,c,capacity", [(4, 2, 1), (3, 1, 64), (5, 5, 2)])
def test_decode_steps_equal_the_batch_form(block, c, capacity):
    q, k, v = _qkv()
    full = cluster_attention(q, k, v, block, c)
    st = init_cluster_state(2, 2, 8, block, c, 6, capacity=capacity)
    for t in range(q.shape[2]):
        o, st = cluster_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5
    assert st.n_sum == (21 // block) * c


def test_prefill_then_steps_equal_the_batch_form():
    q, k, v = _qkv()
    full = cluster_attention(q, k, v, 4, 2)
    st = prefill_cluster_state(k[:, :, :10], v[:, :, :10], 4, 2)
    assert st.n_sum == 4 and st.t == 10
    for t in range(10, 21):
        o, st = cluster_step(q[:, :, t], k[:, :, t], v[:, :, t], st)
        assert (o - full[:, :, t]).abs().max() <= 1e-5


def test_bad_cluster_count_is_named():
    with pytest.raises(ValueError, match="n_clusters must be a positive int"):
        cluster_attention(*_qkv(), 4, 0)


def test_gradients_are_finite_through_the_masked_scores():
    q, k, v = (t.requires_grad_() for t in _qkv(T=19))
    cluster_attention(q, k, v, 4, 2).square().sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
