"""The length-aware attention scale (attn_scale="log_n") and the unchanged default."""

import math

import pytest
import torch

from phaselib.attention import CausalSelfAttention, split_heads
from phaselib.taps import capture
from phaselib.transformer import TinyTransformer, TransformerConfig


def _x(B=2, T=19, C=12, seed=0):
    return torch.randn(B, T, C, generator=torch.Generator().manual_seed(seed))


def test_default_is_standard_and_adds_no_parameter():
    assert TransformerConfig(vocab_size=5).attn_scale == "standard"
    attn = CausalSelfAttention(12, 3)
    assert attn.attn_scale == "standard"
    assert sorted(n for n, _ in attn.named_parameters()) == ["proj.weight", "qkv.weight"]


def test_standard_path_with_zero_queries_averages_the_values_so_far():
    # q = 0 makes every score 0: causal attention is then the running mean of the values,
    # out_t = proj(mean_{j <= t} v_j), whatever the head split.
    torch.manual_seed(0)
    attn = CausalSelfAttention(12, 3)
    with torch.no_grad():
        attn.qkv.weight[:12].zero_()
    x = _x()
    v = attn.qkv(x)[..., 24:]
    running_mean = v.cumsum(1) / torch.arange(1, x.shape[1] + 1).view(1, -1, 1)
    torch.testing.assert_close(attn(x), attn.proj(running_mean))


def test_log_n_weights_are_softmax_of_scores_times_s_log_n():
    torch.manual_seed(1)
    H, T = 3, 17
    attn = CausalSelfAttention(12, H, attn_scale="log_n")
    with torch.no_grad():
        attn.log_n_s.copy_(torch.tensor([0.3, 0.7, 1.5]))
    x = _x(T=T)
    with capture(attn) as taps:
        attn(x)
    w = taps["tap_pattern"]
    q, k, _ = (split_heads(t, H) for t in attn.qkv(x).chunk(3, dim=-1))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    n = torch.arange(1, T + 1, dtype=x.dtype)
    scores = scores * (attn.log_n_s.view(1, H, 1, 1) * n.log().view(1, 1, T, 1))
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    assert torch.allclose(w, torch.softmax(scores, -1), atol=1e-6)
    assert torch.allclose(w[..., 0, 0], torch.ones_like(w[..., 0, 0]))  # one key: weight one


def test_log_n_fused_path_equals_tapped_path():
    torch.manual_seed(2)
    attn = CausalSelfAttention(12, 2, attn_scale="log_n")
    x = _x(T=23)
    fused = attn(x)
    with capture(attn):
        tapped = attn(x)
    assert torch.allclose(fused, tapped, atol=1e-6)


def test_log_n_is_causal():
    torch.manual_seed(3)
    attn = CausalSelfAttention(12, 2, attn_scale="log_n")
    x = _x(T=21)
    x2 = x.clone()
    x2[:, 9:] += 1.0
    assert torch.allclose(attn(x)[:, :9], attn(x2)[:, :9], atol=1e-6)


def test_log_n_sharpens_with_length_when_s_log_n_exceeds_one():
    # One key with a score advantage: with the standard scale its weight falls as keys are
    # added; with s log n it is multiplied by a growing factor and falls more slowly.
    def weight_on_first(attn_scale, T):
        attn = CausalSelfAttention(4, 1, attn_scale=attn_scale)
        with torch.no_grad():
            attn.qkv.weight.zero_()
            attn.qkv.weight[0, 0] = 3.0   # q = 3 x_0
            attn.qkv.weight[4, 1] = 3.0   # k = 3 x_1
            if attn_scale == "log_n":
                attn.log_n_s.fill_(1.0)
        x = torch.zeros(1, T, 4)
        x[:, :, 0] = 1.0
        x[:, 0, 1] = 1.0                  # only key 0 matches the queries
        with capture(attn) as taps:
            attn(x)
        return taps["tap_pattern"][0, 0, -1, 0].item()

    for T in (8, 64, 256):
        assert weight_on_first("log_n", T) > weight_on_first("standard", T)
    assert weight_on_first("standard", 256) < weight_on_first("standard", 8)


def test_log_n_scale_gets_a_gradient_and_the_model_trains():
    torch.manual_seed(4)
    cfg = TransformerConfig(vocab_size=7, block_size=16, n_layer=1, n_head=2, n_embd=8,
                            attn_scale="log_n")
    model = TinyTransformer(cfg)
    idx = torch.randint(7, (3, 13), generator=torch.Generator().manual_seed(4))
    _, loss = model(idx, idx)
    loss.backward()
    g = model.blocks[0].attn.log_n_s.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_bad_attn_scale_raises():
    with pytest.raises(ValueError, match="attn_scale"):
        CausalSelfAttention(8, 2, attn_scale="log")
    with pytest.raises(ValueError, match="attn_scale"):
        TinyTransformer(TransformerConfig(vocab_size=5, attn_scale="ssmax"))
