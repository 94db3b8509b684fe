"""PyramidFeatureEmbedding and MultiScaleTransformer: shapes, causality, masking, gradients, errors."""

import pytest
import torch

from phaselib.multiscale import MultiScaleTransformer, PyramidFeatureEmbedding
from phaselib.pyramid import pyramid_mask
from phaselib.transformer import TinyTransformer, TransformerConfig


def _x(B=2, T=23, C=12, seed=0):
    return torch.randn(B, T, C, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("d_proj", [3, None])
@pytest.mark.parametrize("T", [1, 2, 7, 23])
def test_output_shape_matches_input(d_proj, T):
    torch.manual_seed(0)
    m = PyramidFeatureEmbedding(12, levels=4, d_proj=d_proj)
    y = m(_x(T=T))
    assert y.shape == (2, T, 12)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("t0", [0, 5, 16, 22])
def test_embedding_is_causal_under_perturbation(t0):
    torch.manual_seed(1)
    m = PyramidFeatureEmbedding(12, levels=5, d_proj=4)
    x = _x(T=23)
    x2 = x.clone()
    x2[:, t0:] += torch.randn_like(x2[:, t0:])
    y, y2 = m(x), m(x2)
    assert torch.equal(y[:, :t0], y2[:, :t0])
    if t0 >= 1:  # level 0 at t0 compares x[t0-1] with x[t0]: it must see the change
        assert not torch.allclose(y[:, t0], y2[:, t0])


def test_masked_levels_contribute_zero():
    torch.manual_seed(2)
    m = PyramidFeatureEmbedding(12, levels=4, d_proj=4)
    with torch.no_grad():
        m.up.normal_()
    x = _x(T=17)
    y = m(x)
    # At t = 0 no level has two completed blocks: the output is exactly zero.
    assert torch.equal(y[:, 0], torch.zeros_like(y[:, 0]))
    # Zeroing the maps of the levels that are masked at t changes nothing at t.
    mask = pyramid_mask(17, 4)
    t = 5  # levels 0 and 1 are live, 2 and 3 masked
    assert mask[t].tolist() == [True, True, False, False]
    with torch.no_grad():
        m.up[2:].zero_()
    assert torch.allclose(m(x)[:, t], y[:, t])


def test_gradient_reaches_input_and_every_weight():
    torch.manual_seed(3)
    m = PyramidFeatureEmbedding(12, levels=3, d_proj=5)
    x = _x(T=19).requires_grad_(True)
    m(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_bad_inputs_raise_with_names():
    m = PyramidFeatureEmbedding(12, levels=3, d_proj=4)
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        m(torch.randn(5, 12))
    with pytest.raises(ValueError, match="n_embd = 12"):
        m(torch.randn(2, 5, 11))
    with pytest.raises(TypeError, match="floating-point"):
        m(torch.ones(2, 5, 12, dtype=torch.long))
    with pytest.raises(ValueError, match="levels"):
        PyramidFeatureEmbedding(12, levels=0)
    with pytest.raises(TypeError, match="d_proj"):
        PyramidFeatureEmbedding(12, levels=2, d_proj=2.5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        PyramidFeatureEmbedding(12, levels=2, d_proj=1)


def _cfg():
    return TransformerConfig(vocab_size=11, block_size=32, n_layer=2, n_head=2, n_embd=16)


def test_multiscale_transformer_is_causal_and_trains():
    torch.manual_seed(4)
    model = MultiScaleTransformer(_cfg(), levels=4, d_proj=4)
    idx = torch.randint(11, (3, 29), generator=torch.Generator().manual_seed(4))
    idx2 = idx.clone()
    idx2[:, 13:] = (idx2[:, 13:] + 1) % 11
    logits, _ = model(idx)
    logits2, _ = model(idx2)
    assert logits.shape == (3, 29, 11)
    assert torch.allclose(logits[:, :13], logits2[:, :13], atol=1e-6)
    _, loss = model(idx, idx)
    loss.backward()
    assert model.multiscale.up.grad.abs().sum() > 0
    assert model.multiscale.down.weight.grad.abs().sum() > 0


def test_multiscale_transformer_adds_only_the_embedding_parameters():
    cfg = _cfg()
    base, ms = TinyTransformer(cfg), MultiScaleTransformer(cfg, levels=4, d_proj=4)
    extra = 16 * 4 + 4 * 5 * 16
    assert ms.num_params() - base.num_params() == extra


@pytest.mark.parametrize("block_size, levels", [(32, 5), (100, 6), (128, 7), (3, 1), (1, 1)])
def test_multiscale_transformer_default_levels_are_floor_log2_of_the_block(block_size, levels):
    # Hand-counted: blocks of 1, 2, ..., 2**(L-1) tokens all fit twice in block_size.
    cfg = TransformerConfig(vocab_size=11, block_size=block_size, n_layer=1, n_head=2, n_embd=16)
    assert MultiScaleTransformer(cfg).multiscale.levels == levels


def test_multiscale_transformer_rejects_bad_idx():
    model = MultiScaleTransformer(_cfg(), levels=2)
    with pytest.raises(ValueError, match="long tensor"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_distance_profile_rows_sum_to_one_and_match_a_loop():
    g = torch.Generator().manual_seed(5)
    B, H, T, start = 2, 3, 11, 3
    scores = torch.randn(B, H, T, T, generator=g)
    w = torch.softmax(scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")), -1)
    from phaselib.multiscale import attention_distance_profile
    prof = attention_distance_profile(w, start)
    assert prof.shape == (H, T)
    assert torch.allclose(prof.sum(-1), torch.ones(H))
    want = torch.zeros(H, T)
    for i in range(start, T):
        for d in range(i + 1):
            want[:, d] += w[:, :, i, i - d].mean(0)
    assert torch.allclose(prof, want / (T - start), atol=1e-6)


def test_distance_profile_rejects_bad_input():
    from phaselib.multiscale import attention_distance_profile
    with pytest.raises(ValueError, match="square"):
        attention_distance_profile(torch.rand(1, 1, 3, 4))
    with pytest.raises(ValueError, match="start"):
        attention_distance_profile(torch.rand(1, 1, 3, 3), start=3)
    with pytest.raises(ValueError, match="4 dimensions"):
        attention_distance_profile(torch.rand(3, 3))


def test_multiscale_batch_follows_its_rule_at_every_scale():
    from phaselib.tasks import multiscale_batch
    x, y, s = multiscale_batch(64, 37, 11, (1, 4, 16), return_scales=True,
                               generator=torch.Generator().manual_seed(6))
    assert x.shape == y.shape == (64, 37) and s.shape == (64,)
    assert set(s.tolist()) <= {1, 4, 16}
    assert (y[:, :15] == -1).all() and (y[:, 15:] >= 0).all()
    assert torch.equal(y[:, 15:-1], x[:, 16:])                  # targets are the next tokens
    for b in range(64):
        seq = torch.cat([x[b], y[b, -1:]])
        if s[b] == 1:
            assert torch.equal(seq[1:], (seq[:-1] + 1) % 11)
        else:
            k = int(s[b])
            assert torch.equal(seq[k:], seq[:-k])
    with pytest.raises(ValueError, match="T >= max"):
        multiscale_batch(2, 16, 11, (1, 16))


def test_useful_weight_sums_the_distances_one_short_of_a_period_multiple():
    from phaselib.multiscale import useful_weight
    p = torch.zeros(2, 12)
    p[0, 3], p[0, 7], p[0, 4] = 0.25, 0.5, 0.25      # d + 1 = 4, 8 useful for period 4
    p[1, 2], p[1, 5] = 0.5, 0.5                      # d + 1 = 3, 6 useful for period 3
    assert torch.allclose(useful_weight(p, 4), torch.tensor([0.75, 0.0]))
    assert torch.allclose(useful_weight(p, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="period"):
        useful_weight(p, 0)
    with pytest.raises(ValueError, match="profiles"):
        useful_weight(torch.zeros(12), 3)


def test_peak_distances_skip_the_own_key_by_default():
    from phaselib.multiscale import peak_distances
    p = torch.tensor([[0.6, 0.1, 0.3, 0.0], [0.1, 0.0, 0.2, 0.7]])
    assert peak_distances(p) == [2, 3]
    assert peak_distances(p, min_distance=0) == [0, 3]
    with pytest.raises(ValueError, match="min_distance"):
        peak_distances(p, min_distance=4)


def test_build_f3_model_rejects_an_unknown_model():
    from phaselib.multiscale_runs import build_f3_model
    with pytest.raises(ValueError, match="model must be one of"):
        build_f3_model("pyramids", 0)
    assert isinstance(build_f3_model("level0", 0), MultiScaleTransformer)
    assert build_f3_model("level0", 0).multiscale.levels == 1


def test_block_arms_match_a_loop_and_are_causal():
    from phaselib.multiscale import BlockArmEmbedding

    torch.manual_seed(0)
    B, T, d, L = 2, 23, 3, 4
    z = torch.randn(B, T, d, dtype=torch.float64)
    cen = BlockArmEmbedding(5, L, d, "centroid").double().features(z)
    sh = BlockArmEmbedding(5, L, d, "shift").double().features(z)
    for lvl in range(L):
        s = 2 ** lvl
        for t in range(T):
            k = (t + 1) // s
            last, before = z[:, (k - 1) * s: k * s], z[:, (k - 2) * s: (k - 1) * s]
            want = (last.mean(1) - before.mean(1) if k >= 2
                    else torch.zeros(B, d, dtype=torch.float64))
            assert torch.allclose(cen[:, t, lvl], want)
            want = z[:, t - s] if t >= s else torch.zeros(B, d, dtype=torch.float64)
            assert torch.allclose(sh[:, t, lvl], want)
    for kind in ("centroid", "shift"):
        emb = BlockArmEmbedding(5, L, d, kind).double()
        x = torch.randn(1, T, 5, dtype=torch.float64)
        y = x.clone()
        y[:, 15:] += 1.0
        assert torch.allclose(emb(x)[:, :15], emb(y)[:, :15])   # causal


def test_build_f3_model_builds_the_pyramids_controls():
    from phaselib.multiscale import BlockArmTransformer
    from phaselib.multiscale_runs import build_f3_model

    for kind in ("centroid", "shift"):
        m = build_f3_model(kind, 0)
        assert isinstance(m, BlockArmTransformer) and m.multiscale.kind == kind
        logits, _ = m(torch.randint(0, 16, (2, 64)))
        assert logits.shape == (2, 64, 16)
    base, pyr = build_f3_model("transformer", 0), build_f3_model("pyramid", 0)
    extra = build_f3_model("centroid", 0).num_params() - base.num_params()
    assert 0 < extra <= pyr.num_params() - base.num_params()


def test_the_f3_sweep_tries_every_rate_for_each_short_arm_then_uses_the_best():
    from phaselib.multiscale_runs import F3_MODELS, F3_RATES, sweep

    cells = sweep(out="r.json").cells
    assert sorted({c["seed"] for c in cells}) == [0, 1, 2, 3, 4]
    from phaselib.multiscale_runs import CHOICE_SEEDS, SHARED_RATE
    shared = [c for c in cells if c["seed"] and c.get("lr") == SHARED_RATE
              and c["model"] == "pyramid" and c["seed"] not in CHOICE_SEEDS]
    # the three-seed choice: the other choice seeds at every rate, after the rest
    choice = [c for c in cells if c["seed"] in CHOICE_SEEDS and c["seed"]
              and isinstance(c.get("lr"), float)]
    short = [c for c in cells if c["steps"] == 600 and "lr" in c and c not in shared
             and c not in choice]
    control = [c for c in cells if c["steps"] == 600 and "lr" not in c]
    long_ = [c for c in cells if c["steps"] == 2000]
    # the control: three models at the chapter's rate on every seed and scale set
    assert len(control) == 2 * 3 * 5
    assert {c["model"] for c in control} == {"transformer", "pyramid", "level0"}
    # per scale set: each model at 600 steps on seed 0 at every rate, then on four
    # more seeds at the best; the transformer at 2000 steps on every seed
    assert len(short) == 2 * len(F3_MODELS) * (len(F3_RATES) + 4)
    assert {c["model"] for c in short} == set(F3_MODELS)
    assert all(c["lr"] in F3_RATES for c in short if c["seed"] == 0)
    # the registered grid, extended upward only (stop 50's registered step)
    from phaselib.multiscale_runs import ADDED_RATES, NEXT_RATE, REGISTERED_RATES
    assert F3_RATES[:3] == REGISTERED_RATES == (1e-3, 3e-3, 1e-2)
    assert sorted(F3_RATES) == list(F3_RATES) and min(ADDED_RATES) > 1e-2
    assert NEXT_RATE > F3_RATES[-1] or NEXT_RATE in F3_RATES
    assert all(c["lr"] == "best" and c["out"] == "r.json" for c in short if c["seed"])
    assert cells[: 2 * len(F3_MODELS) * len(F3_RATES)] == [
        c for c in short if c["seed"] == 0]            # the rate cells run first
    assert len(long_) == 10 and all("lr" not in c for c in long_)
    # the reading beside the verdicts: the pyramid at the rate the others chose (its
    # choice seeds' cells at that rate count as the three-seed choice's too)
    assert len(shared) == 2 * 2 and {c["model"] for c in shared} == {"pyramid"}
    assert len(choice) == 2 * len(F3_MODELS) * len(F3_RATES) * (len(CHOICE_SEEDS) - 1)
    new = [c for c in choice if not (c["model"] == "pyramid" and c["lr"] == SHARED_RATE)]
    assert cells[-len(new):] == new           # after every cell the verdicts read
    assert SHARED_RATE in F3_RATES and all(c["steps"] == 600 for c in shared)


def test_run_f3_reports_a_validation_loss_and_refuses_a_best_rate_without_a_file():
    from phaselib.multiscale_runs import run_f3

    hp = dict(seq_len=32, n_embd=8, n_head=2, n_layer=1, eval_every=2, eval_batch=16,
              batch=4)
    r = run_f3(0, [1, 4], "pyramid", 2, **hp)
    assert 0 < r["val_loss"] < 10 and r["lr"] == 3e-3
    with pytest.raises(ValueError, match="lr='best' needs out"):
        run_f3(0, [1, 4], "pyramid", 2, lr="best", **hp)
    with pytest.raises(ValueError, match="lr must be a positive float"):
        run_f3(0, [1, 4], "pyramid", 2, lr=0.0, **hp)


def test_steps_to_reads_the_longest_periods_first_evaluation_under_the_level():
    from phaselib.multiscale_runs import steps_to

    r = {"step": [25, 50, 75, 100],
         "curve": {"1": [0.05, 0.01, 0.0, 0.0], "4": [2.0, 1.0, 0.5, 0.2],
                   "16": [2.5, 0.3, 0.1, 0.02]}}
    assert steps_to(r) == 75                       # period 16, not 1 (first) or 4
    assert steps_to(r, level=0.5) == 50
    r["curve"]["16"] = [2.5, 2.4, None, 0.9]       # never under: the budget
    assert steps_to(r) == 100


def test_the_steps_sweep_runs_new_seeds_at_the_best_and_the_chapters_rate():
    from phaselib.multiscale_runs import STEPS_RULES, STEPS_SEEDS, sweep
    from phaselib.sweep import get_spec

    cells = get_spec("f3-steps").cells
    assert not set(STEPS_SEEDS) & {c["seed"] for c in sweep().cells}
    assert len(cells) == 3 * 2 * 2 * len(STEPS_SEEDS)
    assert {c.get("lr") for c in cells} == {"best", None}
    # The control (no rate: the chapter's) at both budgets, the longer one added later.
    from phaselib.multiscale_runs import F3_STEPS, STEPS_CONTROL_STEPS
    ctl = [c for c in cells if "lr" not in c]
    assert STEPS_CONTROL_STEPS > F3_STEPS
    assert sorted({c["steps"] for c in ctl}) == [F3_STEPS, STEPS_CONTROL_STEPS]
    assert all(c["steps"] == F3_STEPS for c in cells if "lr" in c)
    for n in (F3_STEPS, STEPS_CONTROL_STEPS):
        assert {(c["seed"], tuple(c["scales"]), c["model"]) for c in ctl
                if c["steps"] == n} == {(s, sc, m) for s in STEPS_SEEDS
                                        for sc in ((1, 4, 16), (1, 3, 12))
                                        for m in ("level0", "pyramid")}
    assert {c["model"] for c in cells} == {"level0", "pyramid"}
    parts = STEPS_RULES["f3-long-range"]
    assert set(parts) == {"steps, scales 1, 4, 16", "steps, scales 1, 3, 12"}
    assert all(r["unit"] == "decades" and r["direction"] == 1 for r in parts.values())
