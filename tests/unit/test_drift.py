import math

import pytest
import torch

from phaselib.drift import (bomb_effect, cosine, inject, kl_rows, late_correction,
                            patched, probe_by_layer, residual_streams, tag_vectors)
from phaselib.testing import tiny_random_transformer


def tiny(seed=0, L=3):
    return tiny_random_transformer(seed, L)


def test_cosine_of_a_vector_with_itself_is_one_and_hand_pairs():
    a = torch.tensor([[3.0, 4.0], [1.0, 0.0], [2.0, 0.0]])
    b = torch.tensor([[4.0, 3.0], [1.0, 1.0], [-5.0, 0.0]])
    assert torch.allclose(cosine(a, a), torch.ones(3))
    assert torch.allclose(cosine(a, b), torch.tensor([24 / 25, 1 / math.sqrt(2), -1.0]))


def test_cosine_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        cosine(torch.ones(3, 2), torch.ones(2))


def test_residual_streams_start_at_the_embedding():
    m = tiny()
    idx = torch.tensor([[1, 5, 2, 7, 0]])
    s, logits = residual_streams(m, idx)
    assert s.shape == (4, 1, 5, 10) and logits.shape == (1, 5, 11)
    x0 = m.wte.weight[idx[0]] + m.wpe.weight[:5]
    assert torch.allclose(s[0, 0], x0)
    assert not torch.allclose(s[1], s[0], atol=1e-3)


def test_inject_adds_delta_to_x0():
    m = tiny()
    idx = torch.tensor([[1, 5, 2]])
    delta = torch.full((1, 1, 10), 0.25)
    s, _ = residual_streams(m, idx)
    with inject(m, delta):
        s2, _ = residual_streams(m, idx)
    assert torch.allclose(s2[0], s[0] + 0.25)
    s3, _ = residual_streams(m, idx)  # the hook is gone afterwards
    assert torch.equal(s3, s)


def test_patched_at_the_top_gives_the_other_runs_last_prediction():
    m = tiny()
    a, b = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[9, 8, 7, 4]])
    sb, lb = residual_streams(m, b)
    _, la = residual_streams(m, a)
    with patched(m, 3, -1, sb[3][:, -1]):
        lh = m(a)[0]
    assert torch.allclose(lh[:, -1], lb[:, -1], atol=1e-5)
    assert torch.allclose(lh[:, :-1], la[:, :-1], atol=1e-5)
    with pytest.raises(ValueError, match="layer must be in"):
        with patched(m, 4, -1, sb[3][:, -1]):
            pass


def test_kl_rows_hand_value():
    p = torch.tensor([0.0, 0.0], dtype=torch.float64)
    q = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64))
    want = 0.5 * math.log(2) + 0.5 * math.log(2 / 3)
    assert kl_rows(p, q).item() == pytest.approx(want, rel=1e-9)
    assert kl_rows(q, q).item() == pytest.approx(0.0, abs=1e-12)


def test_late_correction_runs_from_all_to_nothing():
    m = tiny()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(11, (7, 9), generator=g)
    wrong = x.clone()
    wrong[:, 3:8] = torch.randint(11, (7, 5), generator=g)
    r = late_correction(m, x, wrong)
    assert r["total"] > 0
    assert r["recovered"][0] == pytest.approx(1.0, abs=1e-6)
    assert r["recovered"][-1] == pytest.approx(0.0, abs=1e-6)
    assert len(r["recovered"]) == 4
    # the control's history at block 0 is x_0 itself: nothing changes there
    assert r["recovered_blank"][0] == pytest.approx(1.0, abs=1e-6)
    assert r["recovered_blank"][1] != pytest.approx(1.0, abs=1e-3)
    bad = wrong.clone()
    bad[:, -1] = (x[:, -1] + 1) % 11
    with pytest.raises(ValueError, match="share their last token"):
        late_correction(m, x, bad)


def test_probe_by_layer_reads_a_planted_label_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (20, 15), generator=g)
    noise = torch.randn(20, 15, 6, generator=g)
    planted = noise.clone()
    planted[..., :3] += 5 * torch.nn.functional.one_hot(labels, 3)
    acc = probe_by_layer(torch.stack([planted, noise]), labels, n=250)
    assert acc[0] == 1.0 and acc[1] < 0.6
    with pytest.raises(ValueError, match="labels must be a long tensor of shape"):
        probe_by_layer(torch.stack([planted, noise]), labels[:, :4], n=50)


def test_tag_vectors_have_the_asked_length():
    v = tag_vectors(5, 7, 2.5, seed=3)
    assert v.shape == (5, 7)
    assert torch.allclose(v.norm(dim=-1), torch.full((5,), 2.5))
    with pytest.raises(ValueError, match="norm must be > 0"):
        tag_vectors(5, 7, 0.0)


def test_bomb_effect_leaves_the_last_embedding_alone():
    m = tiny()
    g = torch.Generator().manual_seed(2)
    x = torch.randint(11, (6, 13), generator=g)
    o = torch.randint(11, (6, 13), generator=g)
    r = bomb_effect(m, x, o, bomb=4, length=3, gaps=(0, 2))
    assert len(r["hijack"]) == 2 and len(r["shift_bomb"][0]) == 4
    assert r["shift_bomb"][0][0] == 0.0 and r["shift_control"][1][0] == 0.0
    assert r["kl_bomb"][0] > 0
    with pytest.raises(ValueError, match="must fit in T=13"):
        bomb_effect(m, x, o, bomb=4, length=8, gaps=(5,))
