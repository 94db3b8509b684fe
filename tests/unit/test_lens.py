import math

import pytest
import torch

from phaselib.drift import residual_streams
from phaselib.lens import lens_stats, logit_lens
from phaselib.transformer import TinyTransformer, TransformerConfig


def test_lens_at_the_last_layer_is_the_models_logits():
    torch.manual_seed(0)
    m = TinyTransformer(TransformerConfig(vocab_size=9, block_size=7, n_layer=2,
                                          n_head=1, n_embd=6)).eval()
    for p in m.parameters():
        p.data.normal_(0, 0.5)
    idx = torch.randint(9, (3, 7))
    s, logits = residual_streams(m, idx)
    lens = logit_lens(m, s)
    assert lens.shape == (3, 3, 7, 9)
    assert torch.allclose(lens[-1], logits, atol=1e-5)
    assert not torch.allclose(lens[0], logits, atol=1e-2)
    with pytest.raises(ValueError, match="last dimension n_embd=6"):
        logit_lens(m, torch.zeros(2, 5))


def test_lens_stats_hand_values():
    lens = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).view(2, 1, 1, 2)
    st = lens_stats(lens, torch.tensor([[0]]))
    assert st["agree"] == [0.0, 1.0]
    assert st["loss"][0] == pytest.approx(math.log(1 + math.e))
    assert st["loss"][1] == pytest.approx(math.log(1 + math.exp(-1)))
    p = torch.softmax(torch.tensor([1.0, 0.0], dtype=torch.float64), 0)
    want = float((p * (p.log() - p.flip(0).log())).sum())
    assert st["kl"][0] == pytest.approx(want) and st["kl"][1] == 0.0
    with pytest.raises(ValueError, match="targets must be a long tensor"):
        lens_stats(lens, torch.tensor([0]))
