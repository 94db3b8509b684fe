"""The phase LM's layers and its feature ablations: mean differences, window only."""

import pytest
import torch

from phaselib.cli import main as train_main
from phaselib.models import build_model
from phaselib.phase_lm import PhaseLM, PhaseLMConfig
from phaselib.phase_lm_levels import level_features, mean_diff_pyramid
from phaselib.pyramid import pyramid

pytestmark = pytest.mark.usefixtures("one_thread")

V = 11


def _phase(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, block_size=32, n_layer=2, n_embd=24, pyr_dim=6, n_head=3)
    return PhaseLM(PhaseLMConfig(**(cfg | kw))).eval()


def test_mean_diff_features_are_block_mean_differences_on_a_hand_built_example():
    x = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])[None, :, None]
    x = torch.cat([x, -x], -1)                           # [1, 8, 2]
    feats, mask = mean_diff_pyramid(x, 3)
    assert feats.shape == (1, 8, 3, 2)
    f = feats[0, :, :, 0]
    assert f[0].tolist() == [0.0, 0.0, 0.0]             # nothing complete twice yet
    assert f[1, 0] == 1.0 and f[5, 0] == 16.0           # x[t] - x[t-1]
    assert f[3, 1] == (4 + 8) / 2 - (1 + 2) / 2         # blocks {2,3} - {0,1}
    assert f[5, 1] == (16 + 32) / 2 - (4 + 8) / 2       # blocks {4,5} - {2,3}
    assert f[4, 1] == f[3, 1]                           # block {4,5} not complete at 4
    assert f[7, 2] == (16 + 32 + 64 + 128) / 4 - (1 + 2 + 4 + 8) / 4
    assert f[6, 2] == 0.0 and not mask[6, 2] and mask[7, 2]
    torch.testing.assert_close(feats[..., 1], -feats[..., 0])
    assert torch.equal(mask, pyramid(x, 3)[1])


def test_level_features_names_its_kinds():
    x = torch.randn(2, 9, 4)
    assert level_features(x, 3, "transport")[0].shape == (2, 9, 3, 5)
    assert level_features(x, 3, "mean_diff")[0].shape == (2, 9, 3, 4)
    with pytest.raises(ValueError, match="kind must be"):
        level_features(x, 3, "none")


def test_mean_diff_model_differs_from_transport_only_in_its_features():
    a, b = _phase(), _phase(features="mean_diff")
    assert a.levels_in.weight.shape[1] == 7 and b.levels_in.weight.shape[1] == 6
    idx = torch.randint(V, (2, 20), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(a(idx)[0], b(idx)[0])


def _changed(model, pos, T=24):
    idx = torch.randint(V, (1, T), generator=torch.Generator().manual_seed(2))
    other = idx.clone()
    other[0, pos] = (other[0, pos] + 1) % V
    with torch.no_grad():
        d = (model(idx)[0] - model(other)[0]).abs().amax(-1)[0]
    return d > 1e-6                                      # [T]: which positions moved


@pytest.mark.parametrize("w", [1, 3])
def test_window_only_sees_nothing_beyond_its_layers_windows(w):
    model = _phase(features="none", n_slots=0, window=w)
    assert model.to_pyr is None and model.levels_in is None
    assert all(b.select is None and b.mix is None for b in model.blocks)
    reach = model.cfg.n_layer * (w - 1)                  # two stacked windows
    moved = _changed(model, pos=5)
    assert not moved[:5].any()                           # causal
    assert moved[5]
    assert not moved[5 + reach + 1:].any()               # beyond the windows: unchanged


def test_the_pyramid_reaches_past_the_window_so_the_test_above_can_fail():
    moved = _changed(_phase(n_slots=0, window=3), pos=5)
    assert moved[5 + 2 * 2 + 1:].any()
    moved = _changed(_phase(features="none", window=3), pos=5)   # the slots carry it too
    assert moved[5 + 2 * 2 + 1:].any()


def test_slots_off_removes_the_slots_and_their_reads():
    model = _phase(n_slots=0)
    assert model.slots is None and all(b.read_proj is None for b in model.blocks)
    assert model.num_params() < _phase().num_params()


def test_build_model_and_the_command_line_reach_every_feature_kind(tmp_path):
    for kind in ("transport", "mean_diff", "none"):
        m = build_model("phase", V, features=kind, window=2)
        assert m.cfg.features == kind
    text = tmp_path / "t.txt"
    text.write_text("abcdefghij" * 60)
    out = train_main(["--model", "phase", "--text", str(text), "--steps", "2", "--block",
                      "16", "--batch", "2", "--n-layer", "1", "--n-embd", "16",
                      "--n-head", "2", "--features", "none", "--window", "4",
                      "--warmup", "1"])
    assert out["params"] == build_model("phase", 10, block_size=16, n_layer=1, n_embd=16,
                                        n_head=2, features="none", window=4).num_params()


def test_config_rejects_an_unknown_feature_kind():
    with pytest.raises(ValueError, match="features must be one of"):
        PhaseLMConfig(vocab_size=5, features="mean")


@pytest.mark.parametrize("features", ["transport", "mean_diff"])
@pytest.mark.parametrize("T", [1, 5, 100])
def test_compact_candidates_are_the_gathered_ones_to_rounding(features, T):
    from phaselib import PhaseLM, PhaseLMConfig
    torch.manual_seed(0)
    cfg = PhaseLMConfig(vocab_size=20, block_size=128, features=features, window=4)
    gathered = PhaseLM(cfg)
    compact = PhaseLM(PhaseLMConfig(**{**cfg.__dict__, "compact": True}))
    compact.load_state_dict(gathered.state_dict())
    idx = torch.randint(20, (3, T), generator=torch.Generator().manual_seed(1))
    la, lb = gathered.logits(idx), compact.logits(idx)
    torch.testing.assert_close(lb, la, rtol=1e-5, atol=1e-5)
    params = list(gathered.parameters()), list(compact.parameters())
    ga = torch.autograd.grad(la.square().sum(), params[0], allow_unused=True)
    gb = torch.autograd.grad(lb.square().sum(), params[1], allow_unused=True)
    for p, a, b in zip(params[0], ga, gb):
        zero = torch.zeros_like(p)        # a level with no pair: no gradient, or zero
        a, b = (zero if a is None else a), (zero if b is None else b)
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * float(a.abs().max() + 1))


def test_level_pairs_hold_each_levels_pairs_and_compact_is_checked():
    from phaselib import PhaseLMConfig
    from phaselib.phase_lm_levels import level_pairs
    x = torch.randn(2, 10, 4)
    pairs = level_pairs(x, 5)
    assert [None if p is None else tuple(p.shape) for p in pairs] == [
        (2, 9, 5), (2, 4, 5), (2, 1, 5), None, None]
    assert level_pairs(x, 2, "mean_diff")[1].shape == (2, 4, 4)
    with pytest.raises(ValueError, match="kind must be"):
        level_pairs(x, 2, "nope")
    with pytest.raises(ValueError, match="compact must be a bool"):
        PhaseLMConfig(vocab_size=5, compact=1)


@pytest.mark.parametrize("T", [1, 2, 7, 64, 100])
def test_compact_candidates_select_and_average_as_the_gathered_tensor(T):
    from phaselib import PhaseLM, PhaseLMConfig
    torch.manual_seed(0)
    model = PhaseLM(PhaseLMConfig(vocab_size=20, block_size=128, compact=True))
    with torch.no_grad():
        model.levels_in.empty.normal_()            # make the early rows differ
    x = torch.randn(2, T, model.cfg.n_embd)
    cc = model.compact_candidates(x)
    full = cc.materialise()
    assert full.shape == (2, T, model.cfg.n_levels, model.cfg.n_embd)
    w = torch.rand(2, T, model.cfg.n_levels)
    torch.testing.assert_close(cc.weighted_sum(w), (w[..., None] * full).sum(2),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cc.mean(), full.mean(2), rtol=1e-5, atol=1e-6)
    # the gathered path's candidates, from the same weights
    model.cfg.compact = False
    torch.testing.assert_close(full, model.candidates(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(selector="none"), dict(n_slots=0, window=3)])
def test_compact_logits_match_with_a_fixed_mix_and_without_slots(kw):
    from phaselib import PhaseLM, PhaseLMConfig
    from phaselib.taps import capture
    torch.manual_seed(0)
    cfg = PhaseLMConfig(vocab_size=20, block_size=64, **kw)
    gathered = PhaseLM(cfg)
    compact = PhaseLM(PhaseLMConfig(**{**cfg.__dict__, "compact": True}))
    compact.load_state_dict(gathered.state_dict())
    idx = torch.randint(20, (2, 50), generator=torch.Generator().manual_seed(1))
    want = gathered.logits(idx)
    torch.testing.assert_close(compact.logits(idx), want, rtol=1e-5, atol=1e-5)
    with capture(compact, ["tap_levels"]) as got:       # a tap sees the whole tensor
        torch.testing.assert_close(compact.logits(idx), want, rtol=1e-5, atol=1e-5)
    assert got["tap_levels"].shape == (2, 50, cfg.n_levels, cfg.n_embd)


@pytest.mark.parametrize("fine", [0, 1, 2, 4, 9])
@pytest.mark.parametrize("T", [1, 3, 15, 16, 17, 40])
def test_tiled_weighted_sum_has_the_gathered_values_and_gradients(T, fine, monkeypatch):
    """However many levels are summed one by one (the rest by tiles of 2^fine
    positions), the selection and its gradients are those of the [B, T, L, C] tensor."""
    from phaselib.phase_lm_levels import CompactCandidates
    monkeypatch.setattr(CompactCandidates, "FINE", fine)
    g = torch.Generator().manual_seed(T)
    L, C = 6, 3
    rows = [None if (T >> level) < 2 else
            torch.randn(2, (T >> level) - 1, C, generator=g).requires_grad_()
            for level in range(L)]
    empty = torch.randn(L, C, generator=g).requires_grad_()
    w = torch.randn(2, T, L, generator=g).requires_grad_()
    cc = CompactCandidates(rows, empty, T, 2)
    gy = torch.randn(2, T, C, generator=g)
    leaves = [w, empty] + [r for r in rows if r is not None]
    got = torch.autograd.grad((cc.weighted_sum(w) * gy).sum(), leaves)
    want = torch.autograd.grad(((w[..., None] * cc.materialise()).sum(2) * gy).sum(),
                               leaves)
    full = (w[..., None] * cc.materialise()).sum(2)
    torch.testing.assert_close(cc.weighted_sum(w), full)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_the_selection_kernel_equals_the_tiles(device):
    """`weighted_sum(backend="triton")` (the kernel: compiled on CUDA, interpreted on
    the CPU) gives the tiled reference's values and gradients, from the packed table
    whose level l starts at `level_offsets(T, L)[l]`."""
    from phaselib.kernels.select import level_offsets
    from phaselib.phase_lm_levels import CompactCandidates
    g = torch.Generator().manual_seed(3)
    T, L, C = 45, 6, 5
    rows = [None if (T >> level) < 2 else
            torch.randn(2, (T >> level) - 1, C, generator=g).to(device).requires_grad_()
            for level in range(L)]
    empty = torch.randn(L, C, generator=g).to(device).requires_grad_()
    w = torch.randn(2, T, L, generator=g).to(device).requires_grad_()
    cc = CompactCandidates(rows, empty, T, 2)
    table = cc.packed()
    assert table.shape == (2, level_offsets(T, L)[-1], C)
    off = level_offsets(T, L)
    torch.testing.assert_close(table[:, off[2] + 2], rows[2][:, 0])  # first pair row
    torch.testing.assert_close(table[:, off[5]], empty[5].expand(2, C))
    gy = torch.randn(2, T, C, generator=g).to(device)
    leaves = [w, empty] + [r for r in rows if r is not None]
    got = cc.weighted_sum(w, backend="triton")
    want = cc.weighted_sum(w, backend="reference")
    torch.testing.assert_close(got, want)
    for a, b in zip(torch.autograd.grad((got * gy).sum(), leaves),
                    torch.autograd.grad((want * gy).sum(), leaves)):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match=r"w must have shape \[B, T, L\]"):
        cc.weighted_sum(w[:, :-1])
    with pytest.raises(ValueError, match="table must have shape"):
        from phaselib.kernels.select import select_reference
        select_reference(w, table[:, :-1])
