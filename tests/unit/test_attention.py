"""Reference attention, its fused twin, and the tiny transformer built on them."""

import pytest
import torch

from phaselib.attention import attention, causal_mask, fused_attention, rotary
from phaselib.taps import capture
from phaselib.transformer import TinyTransformer, TransformerConfig


def qkv(seed, B=2, H=3, T=7, dh=5, Tk=None):
    g = torch.Generator().manual_seed(seed)
    Tk = T if Tk is None else Tk
    return (torch.randn(B, H, T, dh, generator=g), torch.randn(B, H, Tk, dh, generator=g),
            torch.randn(B, H, Tk, dh, generator=g))


@pytest.mark.parametrize("T", [1, 2, 7, 33])
@pytest.mark.parametrize("causal", [True, False])
def test_reference_equals_fused(T, causal):
    q, k, v = qkv(T, T=T)
    out, w = attention(q, k, v, causal=causal)
    assert torch.allclose(out, fused_attention(q, k, v, causal=causal), atol=1e-5)
    assert torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-6)


def test_decoding_queries_see_the_whole_cache():
    q, k, v = qkv(1, T=3, Tk=10)
    out, w = attention(q, k, v, causal=True)
    assert torch.allclose(out, fused_attention(q, k, v, causal=True), atol=1e-5)
    assert (w[..., 0, 8:] == 0).all() and (w[..., 2, :] > 0).all()


def test_causal_mask_matches_hand_written_matrices():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0],
                                                     [1, 1, 0],
                                                     [1, 1, 1]], dtype=torch.bool))
    assert torch.equal(causal_mask(5, 2), torch.tensor([[1, 0, 0, 0, 0],
                                                        [1, 1, 0, 0, 0],
                                                        [0, 1, 1, 0, 0],
                                                        [0, 0, 1, 1, 0],
                                                        [0, 0, 0, 1, 1]], dtype=torch.bool))
    assert torch.equal(causal_mask(3, 1), torch.eye(3, dtype=torch.bool))
    assert causal_mask(9, 3).sum(-1).tolist() == [1, 2, 3, 3, 3, 3, 3, 3, 3]
    assert torch.equal(causal_mask(4, 10), causal_mask(4))   # a window >= T: plain causal
    assert causal_mask(0).shape == (0, 0)


def test_causal_mask_rejects_bad_sizes():
    with pytest.raises(ValueError, match="window must be a positive int"):
        causal_mask(4, 0)
    with pytest.raises(TypeError, match="window must be a positive int"):
        causal_mask(4, 2.0)
    with pytest.raises(ValueError, match="T must be >= 0"):
        causal_mask(-1)
    with pytest.raises(TypeError, match="T must be an int"):
        causal_mask(3.0)


def test_causal_weights_vanish_above_the_diagonal():
    q, k, v = qkv(2, T=9)
    _, w = attention(q, k, v)
    assert torch.equal(w * ~causal_mask(9), torch.zeros_like(w))


def test_future_keys_do_not_change_the_output():
    q, k, v = qkv(3, T=12)
    out, _ = attention(q, k, v)
    k2, v2 = k.clone(), v.clone()
    k2[..., 8:, :] += 10.0
    v2[..., 8:, :] -= 3.0
    out2, _ = attention(q, k2, v2)
    assert torch.allclose(out[..., :8, :], out2[..., :8, :])


def test_bad_shapes_and_masks_raise():
    q, k, v = qkv(4)
    with pytest.raises(ValueError, match="q must have 4 dimensions"):
        attention(q[0], k, v)
    with pytest.raises(ValueError, match="do not agree"):
        attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        attention(q, k, v, mask=torch.ones(7, 7))
    with pytest.raises(ValueError, match="no key"):
        attention(q, k, v, mask=torch.zeros(7, 7, dtype=torch.bool))


def test_mixed_dtypes_and_devices_raise():
    q, k, v = qkv(5)
    with pytest.raises(TypeError, match="q, k and v must share one dtype"):
        attention(q, k.double(), v)
    with pytest.raises(TypeError, match="q, k and v must share one dtype"):
        fused_attention(q, k, v.half())
    # The meta device stands in for a GPU: a mask on another device is named, not
    # left to fail inside `&` (or to be copied across silently).
    with pytest.raises(ValueError, match="mask must be on the device of q"):
        attention(q, k, v, mask=causal_mask(7, device="meta"))
    with pytest.raises(ValueError, match="q, k and v must be on one device"):
        attention(q, k, v.to("meta"))


def tiny_model(**kw):
    torch.manual_seed(0)
    return TinyTransformer(TransformerConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16, **kw))


def test_transformer_logits_are_causal():
    model = tiny_model()
    idx = torch.randint(11, (2, 13), generator=torch.Generator().manual_seed(0))
    logits, _ = model(idx)
    for s in (0, 5, 12):
        idx2 = idx.clone()
        idx2[:, s] = (idx2[:, s] + 1) % 11
        logits2, _ = model(idx2)
        assert torch.allclose(logits[:, :s], logits2[:, :s], atol=1e-6)
        assert not torch.allclose(logits[:, s:], logits2[:, s:])


def test_capturing_the_pattern_does_not_change_the_output():
    model = tiny_model()
    idx = torch.randint(11, (3, 10), generator=torch.Generator().manual_seed(1))
    plain, _ = model(idx)
    with capture(model, ["blocks.1.attn.tap_pattern", "blocks.0.tap_resid_post"]) as cache:
        tapped, _ = model(idx)
    assert torch.allclose(plain, tapped, atol=1e-5)
    assert cache["blocks.1.attn.tap_pattern"].shape == (3, 2, 10, 10)
    assert cache["blocks.0.tap_resid_post"].shape == (3, 10, 16)
    assert not model.blocks[1].attn.tap_pattern.active  # hooks removed


def test_capture_rejects_unknown_tap_names():
    with pytest.raises(ValueError, match="taps that model does not have"):
        with capture(tiny_model(), ["blocks.9.attn.tap_pattern"]):
            pass


def test_transformer_rejects_too_long_or_float_input():
    model = tiny_model()
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="long tensor"):
        model(torch.zeros(1, 4))


def test_rotary_scores_depend_on_the_distance_only():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    T = 40

    def score(t, s):                     # q placed at position t, k at position s
        qs = torch.zeros(1, 1, T, 8)
        ks = torch.zeros(1, 1, T, 8)
        qs[..., t, :], ks[..., s, :] = q[..., 0, :], k[..., 0, :]
        return float((rotary(qs)[..., t, :] * rotary(ks)[..., s, :]).sum())

    assert score(9, 4) == pytest.approx(score(35, 30), abs=1e-5)
    assert score(9, 4) != pytest.approx(score(9, 5), abs=1e-3)
    # Position 0 is not turned, and the turn keeps every pair's length.
    x = torch.randn(2, 3, T, 8, generator=g)
    assert torch.equal(rotary(x)[..., 0, :], x[..., 0, :])
    pairs = lambda y: y.view(2, 3, T, 4, 2).norm(dim=-1)
    torch.testing.assert_close(pairs(rotary(x)), pairs(x))


def test_rotary_names_what_it_needs():
    with pytest.raises(ValueError, match="even head width"):
        rotary(torch.zeros(1, 1, 4, 5))
    with pytest.raises((TypeError, ValueError), match="x"):
        rotary(torch.zeros(4, 8))


def test_a_rope_transformer_has_no_position_table_and_stays_causal():
    cfg = TransformerConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16,
                            pos="rope")
    torch.manual_seed(0)
    m = TinyTransformer(cfg).eval()
    learned = TinyTransformer(TransformerConfig(11, 16, 2, 2, 16))
    assert m.wpe is None and m.num_params() == learned.num_params()
    idx = torch.randint(11, (2, 16))
    idx2 = idx.clone()
    idx2[:, 7] = (idx2[:, 7] + 1) % 11
    with torch.no_grad():
        a, b = m(idx)[0], m(idx2)[0]
        # the captured (written-out) path and the fused one agree
        with capture(m, ["blocks.0.attn.tap_pattern"]):
            c = m(idx)[0]
    assert torch.equal(a[:, :7], b[:, :7]) and not torch.equal(a[:, 7:], b[:, 7:])
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="pos must be 'learned' or 'rope'"):
        TinyTransformer(TransformerConfig(11, 16, pos="alibi"))
