"""PhaseLM: causal logits, shapes, bad input, the near-field window, a tiny overfit."""

import pytest
import torch

from phaselib.phase_lm import NearFieldAttention, PhaseLM, PhaseLMConfig, window_mask
from phaselib.taps import capture
from phaselib.transformer import TinyTransformer, TransformerConfig

V, T = 11, 37


pytestmark = pytest.mark.usefixtures("one_thread")


def _phase(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, block_size=T, n_layer=2, n_embd=24, pyr_dim=6, n_head=3)
    return PhaseLM(PhaseLMConfig(**(cfg | kw))).eval()


def _transformer():
    torch.manual_seed(0)
    return TinyTransformer(TransformerConfig(vocab_size=V, block_size=T, n_layer=2, n_head=3, n_embd=24)).eval()


MODELS = {
    "phase": lambda: _phase(),
    "phase-window": lambda: _phase(window=5),
    "phase-no-selector-no-slots": lambda: _phase(selector="none", n_slots=0),
    "phase-hard-slots": lambda: _phase(hard_slots=True, n_slots=3),
    "phase-sparsemax": lambda: _phase(selector="sparsemax"),
    "transformer": _transformer,
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("s", [0, 23, T - 1])
def test_logits_before_a_perturbed_token_are_unchanged(name, s):
    model = MODELS[name]()
    g = torch.Generator().manual_seed(s)
    idx = torch.randint(V, (3, T), generator=g)
    idx2 = idx.clone()
    idx2[:, s] = (idx2[:, s] + 1 + torch.randint(V - 1, (3,), generator=g)) % V
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.equal(a[:, :s], b[:, :s]), f"{name}: logits before {s} changed"
    assert not torch.allclose(a[:, s:], b[:, s:]), f"{name}: the perturbation had no effect at all"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shapes_loss_and_shorter_inputs_agree(name):
    model = MODELS[name]()
    idx = torch.randint(V, (2, T), generator=torch.Generator().manual_seed(1))
    logits, loss = model(idx, idx)
    assert logits.shape == (2, T, V) and loss.ndim == 0 and torch.isfinite(loss)
    short, _ = model(idx[:, :13])
    torch.testing.assert_close(short, logits[:, :13], atol=1e-5, rtol=1e-5)


def test_generate_runs_past_the_block_size():
    model = _phase(window=4)
    out = model.generate(torch.zeros(2, 3, dtype=torch.long), T + 5,
                         generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, T + 8) and out.max() < V


def test_num_params_counts_the_tied_embedding_once():
    model = _phase(n_layer=1, levels=5, selector="none", n_slots=0)
    assert model.head.weight is model.wte.weight
    # Hand-counted from the shapes (V=11, C=24, pyr_dim=6, 5 levels, 1 block, no bias):
    # wte 11*24 (the head shares it) + to_pyr 6*24 + levels_in 5*7*24 + 5*24 + 5*24
    # + ln_c 24 + block (ln_q 24, mix 24*24, ln_m 24, fc 96*24, proj 24*96) + ln_f 24.
    want = 264 + 144 + 840 + 120 + 120 + 24 + (24 + 576 + 24 + 2304 + 2304) + 24
    assert want == 6768
    assert model.num_params() == want


def test_selection_weights_are_tapped_per_level():
    model = _phase()
    idx = torch.randint(V, (2, T))
    with capture(model, ["blocks.0.tap_select", "tap_levels"]) as store:
        model(idx)
    L = model.cfg.n_levels
    assert store["blocks.0.tap_select"].shape == (2, T, L)
    assert store["tap_levels"].shape == (2, T, L, model.cfg.n_embd)


def test_window_mask_keeps_the_last_w_tokens():
    m = window_mask(6, 3)
    assert m[5].tolist() == [False, False, False, True, True, True]
    assert m[0].tolist() == [True] + [False] * 5
    assert torch.equal(window_mask(5, 9), torch.ones(5, 5, dtype=torch.bool).tril())


@pytest.mark.parametrize("w", [1, 3, 7])
def test_near_field_attention_sees_exactly_w_tokens(w):
    torch.manual_seed(0)
    att = NearFieldAttention(12, 3, w)
    with torch.no_grad():
        att.rel_bias.normal_()
    x = torch.randn(2, 19, 12)
    s = 5
    x2 = x.clone()
    x2[:, s] += 1.0
    d = (att(x2) - att(x)).abs().amax(dim=(0, 2))
    assert (d[:s] == 0).all() and (d[s + w:] == 0).all()
    assert (d[s:s + w] > 0).all()


@pytest.mark.parametrize("bad, match", [
    (dict(window=-1), "window"), (dict(n_slots=-2), "n_slots"), (dict(pyr_dim=1), "pyr_dim"),
    (dict(n_embd=0), "n_embd"), (dict(levels=0), "levels"),
    (dict(window=3, n_embd=25, n_head=3), r"n_embd \(25\) must be divisible by n_head"),
    (dict(block_size=True), "block_size"), (dict(selector="argmax"), "selector"),
])
def test_config_rejects_bad_values(bad, match):
    cfg = dict(vocab_size=V, block_size=T, n_embd=24, n_head=3) | bad
    with pytest.raises(ValueError, match=match):
        PhaseLMConfig(**cfg)


def test_forward_rejects_bad_input():
    model = _phase()
    with pytest.raises(ValueError, match="long"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, T + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="\\[B, T\\]"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))


@pytest.mark.parametrize("kw", [dict(window=4), dict(window=0)])
def test_overfits_a_tiny_fixed_batch(kw):
    torch.manual_seed(0)
    model = PhaseLM(PhaseLMConfig(vocab_size=7, block_size=16, n_layer=2, n_embd=48, pyr_dim=8, **kw))
    # a fixed sequence whose next token is set by the current and previous tokens
    seq = [0, 1]
    for _ in range(33):
        seq.append((seq[-1] * 3 + seq[-2] + 1) % 7)
    data = torch.tensor(seq)
    x = torch.stack([data[0:16], data[8:24], data[16:32]])
    y = torch.stack([data[1:17], data[9:25], data[17:33]])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(200):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the first position of each window has no previous token: allow for it
    logits, _ = model.eval()(x)
    loss = torch.nn.functional.cross_entropy(logits[:, 1:].flatten(0, 1), y[:, 1:].flatten())
    assert loss.item() < 0.05, loss.item()

