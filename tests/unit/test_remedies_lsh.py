"""LSH attention (Reformer-style routing with exact keys): the masked batch form against
the per-query loop, causality, the hash, and one bucket as exact attention."""

import pytest
import torch
import torch.nn.functional as F

from phaselib.remedies import exact_attention
from phaselib.remedies.lsh import (lsh_attention, lsh_buckets, lsh_mask, lsh_reference,
                                   lsh_rotation)


def _qkv(B=2, H=3, T=19, dh=8, dv=5, seed=0):
    """Shared QK as the mixer uses it: k = q / |q|."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T, dh, generator=g)
    return q, F.normalize(q, dim=-1), torch.randn(B, H, T, dv, generator=g)


@pytest.mark.parametrize("n_buckets", [1, 2, 4, 8])
def test_batch_equals_the_per_query_loop(n_buckets):
    q, k, v = _qkv()
    R = lsh_rotation(8, n_buckets, seed=3)
    torch.testing.assert_close(lsh_attention(q, k, v, R), lsh_reference(q, k, v, R),
                               atol=1e-5, rtol=1e-5)


def test_separate_keys_and_grouped_values_equal_the_loop():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 4, 13, 8, generator=g), torch.randn(2, 2, 13, 8, generator=g)
    v = torch.randn(2, 2, 13, 6, generator=g)
    R = lsh_rotation(8, 4)
    torch.testing.assert_close(lsh_attention(q, k, v, R), lsh_reference(q, k, v, R),
                               atol=1e-5, rtol=1e-5)


def test_one_bucket_is_exact_causal_attention_with_shared_qk():
    q, k, v = _qkv()
    torch.testing.assert_close(lsh_attention(q, k, v, lsh_rotation(8, 1)),
                               exact_attention(q, k, v), atol=1e-5, rtol=1e-5)


def test_more_buckets_means_fewer_keys_seen_and_every_row_sees_itself():
    q, k, _ = _qkv(T=64)
    seen = [lsh_mask(q, k, lsh_rotation(8, n)).float().mean().item() for n in (1, 2, 8)]
    assert seen[0] == pytest.approx(65 / 128) and seen[0] > seen[1] > seen[2]
    m = lsh_mask(q, k, lsh_rotation(8, 8))
    assert m.diagonal(dim1=-2, dim2=-1).all()
    assert not m.triu(1).any()


def test_the_hash_is_a_direction_and_shared_qk_puts_a_query_with_its_key():
    q, k, _ = _qkv()
    R = lsh_rotation(8, 8)
    h = lsh_buckets(q, R)
    assert h.min() >= 0 and h.max() < 8 and h.unique().numel() > 2
    assert torch.equal(h, lsh_buckets(3.0 * q, R))
    assert torch.equal(h, lsh_buckets(k, R))
    assert torch.equal(R, lsh_rotation(8, 8))
    assert not torch.equal(R, lsh_rotation(8, 8, seed=1))


def test_causal_a_future_token_changes_nothing_before_it():
    q, k, v = _qkv()
    q2, v2 = q.clone(), v.clone()
    q2[:, :, 11:] += 2.0 * torch.randn_like(q2[:, :, 11:])
    v2[:, :, 11:] += 1.0
    R = lsh_rotation(8, 4)
    a = lsh_attention(q, k, v, R)
    b = lsh_attention(q2, F.normalize(q2, dim=-1), v2, R)
    assert torch.equal(a[:, :, :11], b[:, :, :11])
    assert (a[:, :, 11:] - b[:, :, 11:]).abs().max() > 1e-3


def test_gradients_are_finite():
    q, _, v = (t.requires_grad_() for t in _qkv())
    out = lsh_attention(q, F.normalize(q, dim=-1), v, lsh_rotation(8, 4))
    out.square().sum().backward()
    for t in (q, v):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_buckets must be 1 or even"):
        lsh_rotation(8, 3)
    with pytest.raises(ValueError, match="n_buckets must be a positive int"):
        lsh_rotation(8, 0)
    with pytest.raises(ValueError, match="rotation must have shape"):
        lsh_attention(*_qkv(), torch.randn(5, 2))
    with pytest.raises(TypeError, match="rotation must be a tensor"):
        lsh_attention(*_qkv(), 4)
