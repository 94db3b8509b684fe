"""Fused attention equals the written-out softmax, for shared key/value heads too."""

import pytest
import torch

from phaselib.attention import attention
from phaselib.remedies import fused_attention, fused_causal, fused_reference


def _qkv(B=2, H=4, Hkv=4, T=13, dh=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, T, dh, generator=g), torch.randn(B, Hkv, T, dh, generator=g),
            torch.randn(B, Hkv, T, dh, generator=g))


@pytest.mark.parametrize("Hkv", [4, 2, 1])
def test_fused_causal_equals_the_masked_matrix(Hkv):
    q, k, v = _qkv(Hkv=Hkv)
    torch.testing.assert_close(fused_causal(q, k, v), fused_reference(q, k, v),
                               atol=1e-5, rtol=1e-5)


def test_reference_is_causal_a_future_key_changes_nothing_before_it():
    q, k, v = _qkv()
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 9], v2[:, :, 9] = 5.0, -5.0
    a, b = fused_causal(q, k, v), fused_causal(q, k2, v2)
    torch.testing.assert_close(a[:, :, :9], b[:, :, :9])
    assert (a[:, :, 9] - b[:, :, 9]).abs().max() > 1e-3


def test_reexported_fused_attention_is_the_package_one_and_matches():
    q, k, v = _qkv()
    torch.testing.assert_close(fused_attention(q, k, v, causal=True),
                               attention(q, k, v, causal=True)[0], atol=1e-5, rtol=1e-5)


def test_scale_is_used():
    q, k, v = _qkv()
    torch.testing.assert_close(fused_causal(q, k, v, scale=0.1),
                               fused_reference(q, k, v, scale=0.1), atol=1e-5, rtol=1e-5)
    assert (fused_causal(q, k, v, scale=0.1) - fused_causal(q, k, v)).abs().max() > 1e-3


def test_bad_heads_are_named():
    q, k, v = _qkv(Hkv=3)
    with pytest.raises(ValueError, match="Hkv dividing H"):
        fused_causal(q, k, v)
    with pytest.raises(ValueError, match="scale must be a positive number"):
        fused_causal(*_qkv(), scale=-1.0)
