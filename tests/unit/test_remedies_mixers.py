"""The remedies as token mixers: shapes, causality, equalities, and the model around them."""

import pytest
import torch

import torch.nn.functional as F

from phaselib.remedies import exact_attention
from phaselib.remedies.mixers import (LEGACY_NAMES, MIXER_LABELS, MIXERS,
                                      AttentionMixer, canonical_name, make_mixer)
from phaselib.remedies.model import RemedyConfig, RemedyLM

ALL = sorted(MIXERS)
NEW = ["landmark-retrieval", "lsh", "fmm-all", "linear-conv", "ssm-conv",
       "ssm-selective"]


@pytest.mark.parametrize("name", ALL)
def test_every_mixer_maps_B_T_D_to_B_T_D(name):
    torch.manual_seed(0)
    m = make_mixer(name, 24, 4, 20)
    x = torch.randn(3, 17, 24)
    y = m(x)
    assert y.shape == (3, 17, 24)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ALL)
def test_every_mixer_is_causal(name):
    torch.manual_seed(1)
    m = make_mixer(name, 24, 4, 32)
    x = torch.randn(2, 29, 24)
    x2 = x.clone()
    x2[:, 13:] += 5.0 * torch.randn_like(x2[:, 13:])
    y, y2 = m(x), m(x2)
    torch.testing.assert_close(y[:, :13], y2[:, :13])
    assert not torch.allclose(y[:, 13:], y2[:, 13:])


def _same_weights(a, b):
    b.load_state_dict(a.state_dict())
    return b


def test_softmax_and_fused_give_the_same_output():
    torch.manual_seed(2)
    a = make_mixer("softmax", 32, 4, 40).double()
    b = _same_weights(a, make_mixer("fused", 32, 4, 40).double())
    x = torch.randn(2, 37, 32, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x))


def test_window_at_least_T_equals_full_attention_and_shorter_differs():
    torch.manual_seed(3)
    full = make_mixer("fused", 16, 2, 32).double()
    wide = _same_weights(full, make_mixer("window", 16, 2, 32, window=32).double())
    narrow = _same_weights(full, make_mixer("window", 16, 2, 32, window=4).double())
    x = torch.randn(2, 30, 16, dtype=torch.float64)
    torch.testing.assert_close(wide(x), full(x))
    assert not torch.allclose(narrow(x), full(x))


def test_sinks_with_zero_sinks_equal_the_window():
    torch.manual_seed(4)
    w = make_mixer("window", 16, 2, 32, window=5).double()
    s = _same_weights(w, make_mixer("sinks", 16, 2, 32, window=5, n_sink=0).double())
    x = torch.randn(1, 23, 16, dtype=torch.float64)
    torch.testing.assert_close(s(x), w(x))


def test_mqa_and_gqa_share_kv_heads_and_have_fewer_parameters():
    mqa, gqa, full = (make_mixer(n, 32, 4, 16) for n in ("mqa", "gqa", "fused"))
    assert (mqa.n_kv_head, gqa.n_kv_head, full.n_kv_head) == (1, 2, 4)
    n = [sum(p.numel() for p in m.parameters()) for m in (mqa, gqa, full)]
    assert n[0] < n[1] < n[2]


def test_mixer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        make_mixer("nope", 16, 2, 8)
    with pytest.raises(ValueError, match="divisible by n_head"):
        make_mixer("fused", 15, 2, 8)
    with pytest.raises(ValueError, match="n_kv_head must divide"):
        AttentionMixer(16, 4, 8, "fused", n_kv_head=3)
    with pytest.raises(ValueError, match="x must"):
        make_mixer("fused", 16, 2, 8)(torch.randn(16, 8))
    with pytest.raises(ValueError, match="mask is only for the softmax kinds"):
        make_mixer("linear", 16, 2, 8)(torch.randn(1, 4, 16), torch.ones(4, 4).bool())


@pytest.mark.parametrize("name", ["fused", "ssm", "centroids"])
def test_remedy_lm_loss_falls_on_a_fixed_batch(name):
    torch.manual_seed(5)
    model = RemedyLM(RemedyConfig(vocab_size=11, mixer=name, block_size=16, n_embd=32))
    x = torch.randint(11, (4, 16))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model(x, x)[1].item()
    for _ in range(30):
        loss = model(x, x)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.5


def test_long_logits_under_a_causal_mask_equal_plain_logits_without_positions():
    torch.manual_seed(6)
    model = RemedyLM(RemedyConfig(vocab_size=9, mixer="softmax", block_size=8,
                                  pos="none", n_embd=16, n_head=2)).double()
    x = torch.randint(9, (2, 8))
    full = torch.ones(8, 8, dtype=torch.bool).tril()
    torch.testing.assert_close(model.long_logits(x, full), model(x)[0])
    x_long = torch.randint(9, (1, 20))
    assert model.long_logits(x_long, torch.ones(20, 20).bool().tril()).shape == (1, 20, 9)


def test_long_logits_refuses_a_position_table_and_a_bad_mask():
    m = RemedyLM(RemedyConfig(vocab_size=9, mixer="softmax", block_size=8, n_embd=16,
                              n_head=2))
    with pytest.raises(ValueError, match="pos='none'"):
        m.long_logits(torch.zeros(1, 4, dtype=torch.long), torch.ones(4, 4).bool())
    m2 = RemedyLM(RemedyConfig(vocab_size=9, mixer="softmax", block_size=8, n_embd=16,
                               n_head=2, pos="none"))
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        m2.long_logits(torch.zeros(1, 4, dtype=torch.long), torch.ones(3, 3).bool())
    with pytest.raises(ValueError, match="pos must be"):
        RemedyLM(RemedyConfig(vocab_size=9, pos="rope"))


def test_every_key_has_a_label_and_the_legacy_keys_resolve():
    assert set(MIXER_LABELS) == set(MIXERS) and all(MIXER_LABELS.values())
    assert set(NEW) <= set(MIXERS)
    assert LEGACY_NAMES == {"landmark": "block-mean", "cluster": "centroids",
                            "fmm": "fmm-band"}
    for old, new in LEGACY_NAMES.items():
        assert old in MIXERS and old not in list(MIXERS) and new in list(MIXERS)
        assert MIXERS[old] is MIXERS[new] and canonical_name(old) == new
    assert canonical_name("lsh") == "lsh" and "nope" not in MIXERS


@pytest.mark.parametrize("old", sorted(LEGACY_NAMES))
def test_a_legacy_key_builds_the_same_mixer_with_the_same_numbers(old):
    torch.manual_seed(7)
    a = make_mixer(old, 16, 2, 24)
    torch.manual_seed(7)
    b = make_mixer(LEGACY_NAMES[old], 16, 2, 24)
    x = torch.randn(2, 24, 16)
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("name", NEW)
def test_remedy_lm_runs_forward_and_backward_with_each_new_mixer(name):
    torch.manual_seed(8)
    model = RemedyLM(RemedyConfig(vocab_size=64, mixer=name, block_size=64))
    x = torch.randint(64, (2, 64))
    _, loss = model(x, x)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_landmark_retrieval_defaults_and_overrides():
    m = make_mixer("landmark-retrieval", 16, 2, 32)
    assert (m.segment, m.top_k) == (8, 2)
    m = make_mixer("landmark-retrieval", 16, 2, 32, block=4, top_k=None)
    assert (m.segment, m.top_k) == (4, None)
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        make_mixer("landmark-retrieval", 16, 2, 32, top_k=0)


def test_lsh_mixer_shares_qk_and_one_bucket_is_exact_attention():
    torch.manual_seed(9)
    m = make_mixer("lsh", 16, 2, 32, n_buckets=1).double()
    assert m.rotation.shape == (8, 0) and m.kv.out_features == 16     # values only
    x = torch.randn(2, 19, 16, dtype=torch.float64)
    q = m.q(x).view(2, 19, 2, 8).transpose(1, 2)
    v = m.kv(x).view(2, 19, 2, 8).transpose(1, 2)
    y = exact_attention(q, F.normalize(q, dim=-1), v).transpose(1, 2).reshape(2, 19, 16)
    torch.testing.assert_close(m(x), m.proj(y))
    a, b = make_mixer("lsh", 16, 2, 32, seed=1), make_mixer("lsh", 16, 2, 32, seed=1)
    assert torch.equal(a.rotation, b.rotation) and "rotation" in a.state_dict()
    with pytest.raises(ValueError, match="n_buckets must be 1 or even"):
        make_mixer("lsh", 16, 2, 32, n_buckets=3)


def test_fmm_all_and_fmm_band_differ_only_in_the_far_keys():
    torch.manual_seed(10)
    band = make_mixer("fmm-band", 16, 2, 32)
    every = make_mixer("fmm-all", 16, 2, 32)
    every.load_state_dict(band.state_dict())
    assert (band.far_keys, every.far_keys) == ("outside", "all")
    x = torch.randn(2, 21, 16)
    assert (band(x) - every(x)).abs().max() > 1e-4
    with torch.no_grad():
        band.far.zero_()
        every.far.zero_()
    torch.testing.assert_close(band(x), every(x))
    with pytest.raises(ValueError, match="far_keys must be one of"):
        make_mixer("fmm-all", 16, 2, 32, far_keys="near")
