"""Tests for phaselib.drift_controls: F6's controls on a tiny random model."""

import pytest
import torch

from phaselib.drift import late_correction
from phaselib.drift_controls import (context_loss, history_neutral, planted_hijack,
                                     span_attention, tag_legibility, untrained_like)
from phaselib.testing import tiny_random_transformer
from phaselib.transformer import TinyTransformer


def tiny(seed=0, L=3):
    return tiny_random_transformer(seed, L)


def windows(n, seed, T=13, V=11):
    return torch.randint(V, (n, T), generator=torch.Generator().manual_seed(seed))


def test_history_neutral_keeps_x0_at_block_0_and_drops_unknown_last_tokens():
    m = tiny()
    x = windows(7, 1)
    wrong = x.clone()
    wrong[:, 3:8] = windows(7, 2)[:, 3:8]
    ref = windows(400, 3)
    r = history_neutral(m, x, wrong, ref)
    assert len(r["recovered"]) == 4 and r["kept"] == 7
    # The mean x_0 of windows ending in the same token is that token's x_0.
    assert r["recovered"][0] == pytest.approx(1.0, abs=1e-6)
    # A neutral history is not the misleading one: at the top it differs from 0.
    assert r["recovered"][-1] != pytest.approx(late_correction(m, x, wrong)
                                               ["recovered"][-1], abs=1e-3)
    only_zero = ref.clone()
    only_zero[:, -1] = 0
    x0 = x.clone()
    x0[:3, -1] = 0
    w0 = wrong.clone()
    w0[:, -1] = x0[:, -1]
    assert history_neutral(m, x0, w0, only_zero)["kept"] == int((x0[:, -1] == 0).sum())
    with pytest.raises(ValueError, match="reference must have shape"):
        history_neutral(m, x, wrong, ref[:, :5])


def test_span_attention_of_uniform_attention_is_span_over_T():
    m = tiny(L=2)
    for b in m.blocks:
        b.attn.qkv.weight.data[: 2 * 10] = 0   # queries and keys zero: uniform weights
    got = span_attention(m, windows(5, 4), span=4)
    assert got == pytest.approx([4 / 13] * 2, abs=1e-6)
    with pytest.raises(ValueError, match="span must be shorter"):
        span_attention(m, windows(5, 4), span=13)


def test_tag_legibility_reads_a_long_tag_and_sees_the_planted_fade():
    m = tiny(L=2)
    x = windows(64, 5)
    tags = torch.randint(4, (64,), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        norm = float(m.embed(x).norm(dim=-1).mean())
    r = tag_legibility(m, x, tags, norm, scales=(0.5, 4.0), planted=0.4, n_probe=400)
    assert set(r["probe"]) == {0.5, 4.0} and len(r["probe"][4.0]) == 3
    assert r["probe"][4.0][0] > 0.95          # a long tag is read at the input
    assert 0.2 < r["planted_share"] < 0.6
    # The planted windows carry another tag: the top probe cannot be perfect.
    assert r["planted_top"] < r["probe"][4.0][-1] - 0.1
    with pytest.raises(ValueError, match="planted must be in"):
        tag_legibility(m, x, tags, norm, planted=1.0)


def test_planted_hijack_of_the_windows_own_ending_is_zero():
    m = tiny()
    x = windows(9, 7)
    x[:, -2:] = torch.tensor([3, 5])
    assert planted_hijack(m, x, [3, 5], token=2) == 0.0
    with pytest.raises(ValueError, match="context must hold"):
        planted_hijack(m, x, [], token=2)


def test_untrained_like_is_the_fresh_model_of_that_seed():
    m = tiny()
    u = untrained_like(m, 5)
    torch.manual_seed(5)
    want = TinyTransformer(m.cfg)
    assert not u.training
    for a, b in zip(u.parameters(), want.parameters()):
        assert torch.equal(a, b)


def test_context_loss_of_the_windows_own_text_is_the_clean_loss_and_a_bomb_moves_it():
    m = tiny()
    x, y = windows(9, 7), windows(1, 8, T=9)[0]
    r = context_loss(m, x, y, x.clone(), bomb=4, length=3, gap=2)
    # Other text that is the window's own text changes nothing, context or span.
    assert r["other"] == pytest.approx(r["clean"]) and r["lost"] == pytest.approx(
        r["clean"])
    assert r["bomb"] != pytest.approx(r["clean"])
    # Text from other windows: the span and the whole context both change the loss.
    r2 = context_loss(m, x, y, windows(9, 9), bomb=4, length=3, gap=2)
    assert r2["other"] != pytest.approx(r["clean"]) and r2["lost"] != r2["other"]
    # "lost" replaces exactly the positions before the last gap + 1: others that differ
    # from x only inside those last gap + 1 positions leave it at the clean loss, and a
    # difference one position earlier does not.
    near = x.clone()
    near[:, -3:] = (near[:, -3:] + 1) % 11           # gap = 2: the last three positions
    r3 = context_loss(m, x, y, near, bomb=4, length=3, gap=2)
    assert r3["lost"] == pytest.approx(r3["clean"])
    near[:, -4] = (near[:, -4] + 1) % 11             # the position just before them
    assert context_loss(m, x, y, near, bomb=4, length=3, gap=2)["lost"] != pytest.approx(
        r3["clean"])
    with pytest.raises(ValueError, match="gap"):
        context_loss(m, x, y, x, bomb=4, length=3, gap=10)
    with pytest.raises(ValueError, match="shape"):
        context_loss(m, x, y[:3], x, bomb=4)


def test_the_context_sweep_runs_the_chapters_model_on_five_seeds():
    from phaselib.drift_runs import CONTEXT_RULES, CONTEXT_SEEDS
    from phaselib.sweep import get_spec

    cells = get_spec("f6-context").cells
    assert len(CONTEXT_SEEDS) >= 5
    assert [c["seed"] for c in cells if "size" not in c] == list(CONTEXT_SEEDS)
    assert [c["seed"] for c in cells if c.get("size") == "large"] == list(CONTEXT_SEEDS)
    from phaselib.drift_runs import CONTEXT_LARGE_RULES, run_context_cell
    big = CONTEXT_LARGE_RULES["f6-bomb-dominates"]["forgets context, a larger model"]
    assert (big["unit"], big["threshold"], big["direction"]) == ("nats", 0.1, 1)
    with pytest.raises(ValueError, match="size"):
        run_context_cell(0, size="huge")
    rule = CONTEXT_RULES["f6-bomb-dominates"]["forgets context"]
    assert (rule["unit"], rule["threshold"], rule["direction"]) == ("nats", 0.1, 1)
