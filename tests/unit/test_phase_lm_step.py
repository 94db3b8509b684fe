"""PhaseLM.step: streaming logits equal the batch forward at every position; generate."""

import pytest
import torch

from phaselib.phase_lm import PhaseLM, PhaseLMConfig, PhaseLMState, sample_next
from phaselib.selection import KINDS

V, BLOCK = 11, 37

pytestmark = pytest.mark.usefixtures("one_thread")


def _phase(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, block_size=BLOCK, n_layer=2, n_embd=24, pyr_dim=6, n_head=3)
    return PhaseLM(PhaseLMConfig(**(cfg | kw))).eval()


def _stream(model, idx, state=None):
    out = []
    with torch.no_grad():
        for t in range(idx.shape[1]):
            logits, state = model.step(idx[:, t], state)
            out.append(logits)
    return torch.stack(out, 1), state


CONFIGS = {
    "default": {},
    "window-1": dict(window=1),
    "window-5": dict(window=5),
    "no-slots": dict(n_slots=0),
    "hard-slots": dict(hard_slots=True, n_slots=3),
    "no-selector-no-slots-window": dict(selector="none", n_slots=0, window=3),
    "mean-diff": dict(features="mean_diff", window=2),
    "window-only": dict(features="none", n_slots=0, window=3),
    "no-pyramid-slots": dict(features="none"),
    "short-conv": dict(short_conv=4, window=3),
    "short-conv-window-only": dict(short_conv=2, features="none", n_slots=0, window=3),
    "layer-scale": dict(layer_scale=0.05, window=3),
    "layer-scale-mix": dict(layer_scale=0.3, selector="none", window=2),
    **{f"selector-{k}": dict(selector=k, window=4) for k in KINDS},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("T", [1, 2, 13, BLOCK])
def test_step_equals_forward_at_every_position(name, T):
    model = _phase(**CONFIGS[name])
    with torch.no_grad():
        for block in model.blocks:            # make the window's bias matter
            if block.near is not None:
                block.near.rel_bias.normal_()
    idx = torch.randint(V, (3, T), generator=torch.Generator().manual_seed(T))
    want, _ = model(idx)
    got, state = _stream(model, idx)
    assert got.shape == (3, T, V) and state.t == T
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kw", [dict(), dict(window=4, hard_slots=True),
                                dict(short_conv=3)])
def test_past_block_size_step_keeps_the_whole_history(kw):
    model = _phase(**kw)
    T = 2 * BLOCK + 3
    idx = torch.randint(V, (2, T), generator=torch.Generator().manual_seed(5))
    got, _ = _stream(model, idx)
    with torch.no_grad():
        torch.testing.assert_close(got, model.logits(idx), atol=1e-5, rtol=0)
        # not the cropped context of the old generate: the state remembers more
        cropped, _ = model(idx[:, -BLOCK:])
    assert (got[:, -1] - cropped[:, -1]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="block_size"):
        model(idx)


def test_state_size_does_not_grow_with_the_context():
    model = _phase(window=4)
    idx = torch.randint(V, (2, 3 * BLOCK), generator=torch.Generator().manual_seed(0))
    _, s10 = _stream(model, idx[:, :10])
    _, s100 = _stream(model, idx)
    assert isinstance(s100, PhaseLMState) and s100.t == 3 * BLOCK
    assert s10.nbytes() == s100.nbytes() > 0
    # B = 2: pyramid ring 2*L*2*6, pending 2*L*6, features 2*L*7; slots 2*4*24;
    # windows: 2 layers * 2 (k, v) * B * H 3 * w 4 * dh 8
    L = model.cfg.n_levels
    assert s100.nbytes() == 4 * (2 * L * 12 + 2 * L * 6 + 2 * L * 7 + 2 * 4 * 24 + 2 * 2 * 2 * 96)


def test_generate_streams_with_persistent_state():
    model = _phase(window=3)
    prompt = torch.randint(V, (2, 4), generator=torch.Generator().manual_seed(1))
    n = BLOCK + 6                              # past block_size
    out = model.generate(prompt, n, temperature=0.8, top_k=5,
                         generator=torch.Generator().manual_seed(2))
    assert out.shape == (2, 4 + n) and torch.equal(out[:, :4], prompt)
    # the same sampling from the batch logits over the whole history
    g = torch.Generator().manual_seed(2)
    idx = prompt
    with torch.no_grad():
        for _ in range(n):
            nxt = sample_next(model.logits(idx)[:, -1], 0.8, 5, g)
            idx = torch.cat([idx, nxt], 1)
    assert torch.equal(out, idx)


def test_generate_with_no_new_tokens_returns_the_prompt():
    model = _phase()
    prompt = torch.randint(V, (1, 3))
    assert torch.equal(model.generate(prompt, 0), prompt)


def test_step_rejects_bad_input():
    model = _phase()
    with pytest.raises(ValueError, match=r"idx_t must be a long tensor of shape \[B\]"):
        model.step(torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="idx_t must be a long"):
        model.step(torch.zeros(2))
    _, state = model.step(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="B = 2 rows"):
        model.step(torch.zeros(3, dtype=torch.long), state)
    with pytest.raises(ValueError, match="idx must be a long tensor"):
        model.generate(torch.zeros(2, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="batch"):
        model.init_state(0)


@pytest.mark.parametrize("name", ["default", "mean-diff", "window-only"])
def test_step_under_bf16_autocast_decodes_like_the_fp32_forward(name):
    # Under autocast the projections give bf16 while the state is fp32: the step casts
    # them up (exactly) instead of refusing. Its logits agree with the fp32 forward to
    # bf16 rounding: a few u (2**-8) of the logits' scale, nowhere more.
    model = _phase(**CONFIGS[name])
    idx = torch.randint(V, (3, 13), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, _ = model(idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, state = _stream(model, idx)
    assert got.dtype == torch.bfloat16 and state.t == 13
    assert state.pyramid is None or state.pyramid.ring.dtype == torch.float32
    assert all(s is None or s.k.dtype == torch.float32 for s in state.near)
    err = (got.float() - want).abs()
    assert err.max() <= 4 * 2**-8 * want.abs().max(), err.max()


def test_short_conv_carries_the_previous_tokens():
    """With short_conv, position t's logits change when token t - K + 1 changes (and
    not when an earlier one does, for a model that only has the convolution)."""
    model = _phase(short_conv=3, features="none", n_slots=0, n_layer=1)
    idx = torch.randint(V, (1, 9), generator=torch.Generator().manual_seed(1))
    for s, moves in ((6, True), (5, False)):
        other = idx.clone()
        other[0, s] = (idx[0, s] + 1) % V
        with torch.no_grad():
            gap = (model(idx)[0][0, 8] - model(other)[0][0, 8]).abs().max()
        assert (gap > 1e-4) == moves, (s, float(gap))


def test_short_conv_keeps_different_tokens_apart_at_initialisation():
    """x + conv(x) on embeddings of scale 0.02: a bias would add one vector to every
    position, far larger than the tokens' own, so that all tokens look alike (cosine
    near 1); without it different tokens stay nearly orthogonal."""
    model = _phase(short_conv=4, vocab_size=64, block_size=64, n_embd=64)
    with torch.no_grad():
        x = model.wte(torch.arange(64)[None])
        h = torch.nn.functional.normalize((x + model.conv(x))[0], dim=-1)
    cos = h @ h.T
    off = cos[~torch.eye(64, dtype=torch.bool)]
    assert off.mean().abs() < 0.1 and off.abs().max() < 0.8, (off.mean(), off.max())


def test_short_conv_rejects_bad_kernel():
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="short_conv"):
            PhaseLMConfig(vocab_size=V, short_conv=bad)


def test_layer_scale_shrinks_what_the_levels_and_the_slots_add():
    """layer_scale=g multiplies each layer's additions from the levels and the slots by
    a learned gain that starts at g: at initialisation they are g times as large, the
    token's own stream is the same, and the gains are trained."""
    idx = torch.randint(V, (2, 20), generator=torch.Generator().manual_seed(2))
    added = {}
    for g in (0.0, 0.05):
        model = _phase(layer_scale=g, window=3)
        block = model.blocks[0]
        plain = block._select_read

        def spy(x, cand, read, plain=plain, g=g):
            out = plain(x, cand, read)
            added[g] = (x.detach(), (out - x).detach())
            return out
        block._select_read = spy
        _, loss = model.train()(idx, idx)
    torch.testing.assert_close(added[0.05][0], added[0.0][0])
    torch.testing.assert_close(added[0.05][1], 0.05 * added[0.0][1], atol=1e-6, rtol=1e-4)
    loss.backward()
    gains = [model.blocks[1].gain_levels, model.blocks[1].gain_read]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gains)
    assert _phase().blocks[0].gain_levels is None       # default: the sum as it was
    assert _phase(layer_scale=0.1, features="none", window=2).blocks[0].gain_levels is None


def test_layer_scale_rejects_bad_values():
    for bad in (-0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="layer_scale"):
            PhaseLMConfig(vocab_size=V, layer_scale=bad)
