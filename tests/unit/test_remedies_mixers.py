"""The remedies as token mixers: shapes, causality, equalities, and the model around them."""

import pytest
import torch

from phaselib.remedies.mixers import MIXERS, AttentionMixer, make_mixer
from phaselib.remedies.model import RemedyConfig, RemedyLM

ALL = sorted(MIXERS)


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


@pytest.mark.parametrize("name", ["fused", "ssm", "cluster"])
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
