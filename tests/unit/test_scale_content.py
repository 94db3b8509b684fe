"""Tests for phaselib.scale_content and its sweeps (scale_content_runs): the task, the
evidence, the model, the runs."""

import pytest
import torch

from phaselib.scale_content import (LevelSelector, level_evidence, level_rule,
                                    segment_compare_batch, segment_labels)
from phaselib.scale_content_runs import LONG_KINDS, SWEEP_KINDS, run_cell, sweep
from phaselib.selection import selection_entropy


def _batch(n=64, T=64, L=5, seed=0):
    return segment_compare_batch(n, T, 16, L, generator=torch.Generator().manual_seed(seed))


def test_labels_on_a_hand_built_sequence():
    # k = 1: segments of two tokens: 3 3 | 5 5 | 5 5 | 2 2 ; n_levels = 2 scores t >= 3.
    x = torch.tensor([[3, 3, 5, 5, 5, 5, 2, 2]])
    y = segment_labels(x, torch.tensor([1]), n_levels=2)
    # t=3: segments (3, 5) rising; t=4: still (3, 5); t=5: (5, 5) equal -> not scored;
    # t=6: still (5, 5); t=7: (5, 2) falling.
    assert y.tolist() == [[-1, -1, -1, 1, 1, -1, -1, 0]]


def test_batch_is_made_of_segments_of_two_to_the_k():
    x, y, k = _batch()
    for b in range(len(x)):
        s = 2 ** k[b].item()
        seg = x[b].view(-1, s)
        assert (seg == seg[:, :1]).all()
    assert y.shape == x.shape and set(y.unique().tolist()) <= {-1, 0, 1}
    assert (y[:, :2 ** 5 - 1] == -1).all()
    assert set(k.tolist()) == set(range(5))


def test_the_scale_is_recoverable_from_the_content_before_the_first_scored_position():
    # The first change of token falls at a multiple of 2**k; its 2-adic valuation,
    # read from x[:, :2**L - 1] only, gives k for nearly every sequence.
    x, y, k = _batch(n=512, seed=1)
    first = 2 ** 5 - 1
    hits = 0
    for b in range(len(x)):
        change = (x[b, 1:first] != x[b, :first - 1]).nonzero()[:, 0] + 1
        if len(change):
            v = min((int(p) & -int(p)).bit_length() - 1 for p in change)
            hits += int(min(v, 4) == k[b].item())
    assert hits / len(x) > 0.9


def test_level_k_of_the_pyramid_gives_every_label_and_a_fixed_level_does_not():
    x, y, k = _batch(n=256, seed=2)
    pred = level_rule(x, 5)                                   # [B, T, L]
    scored = y >= 0
    right = pred.gather(2, k[:, None, None].expand(-1, x.shape[1], 1))[..., 0]
    assert torch.equal(right[scored], y[scored])
    for level in range(5):
        assert (pred[..., level] == y)[scored].float().mean() < 0.75


def test_level_evidence_is_a_causal_running_mean_over_valid_positions():
    feats = torch.zeros(1, 6, 2, 3)
    feats[0, :, 0, 0] = torch.tensor([9.0, 1.0, 3.0, 0.0, 2.0, 0.0])
    feats[0, :, 1, 1] = 4.0
    mask = torch.tensor([[False, False], [True, False], [True, False], [True, True],
                         [True, True], [True, True]])
    ev = level_evidence(feats, mask)
    torch.testing.assert_close(ev[0, :, 0], torch.tensor([0.0, 1.0, 2.0, 4 / 3, 1.5, 1.2]))
    torch.testing.assert_close(ev[0, :, 1], torch.tensor([0.0, 0.0, 0.0, 4.0, 4.0, 4.0]))


def test_level_evidence_rejects_a_wrong_mask():
    with pytest.raises(ValueError, match="mask must have shape"):
        level_evidence(torch.zeros(1, 6, 2, 3), torch.ones(5, 2, dtype=torch.bool))


@pytest.mark.parametrize("kind", SWEEP_KINDS)
def test_model_shapes_and_loss(kind):
    x, y, _ = _batch(n=4)
    model = LevelSelector(16, 5, kind)
    logits, loss = model(x, y)
    assert logits.shape == (4, 64, 2) and model.weights.shape == (4, 64, 5)
    assert loss.ndim == 0 and torch.isfinite(loss)
    torch.testing.assert_close(model.weights.sum(-1), torch.ones(4, 64))


@pytest.mark.parametrize("kind", ["softmax", "hard_st"])
def test_model_is_causal(kind):
    torch.manual_seed(0)
    model = LevelSelector(16, 5, kind).eval()
    x, _, _ = _batch(n=2)
    t = 40
    x2 = x.clone()
    x2[:, t + 1:] = (x2[:, t + 1:] + 7) % 16
    with torch.no_grad():
        a, b = model(x)[0], model(x2)[0]
    torch.testing.assert_close(a[:, :t + 1], b[:, :t + 1])
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])


@pytest.mark.parametrize("kind", SWEEP_KINDS)
@pytest.mark.parametrize("level", [0, 3])
def test_a_one_hot_score_picks_that_level(kind, level):
    torch.manual_seed(0)
    model = LevelSelector(16, 5, kind).eval()
    with torch.no_grad():
        model.select.score.weight.zero_()
        model.select.score.bias.copy_(torch.nn.functional.one_hot(
            torch.tensor(level), 5).float() * 1e3)
    x, _, _ = _batch(n=2)
    feats, _ = model.candidates(x)
    with torch.no_grad():
        out, w = model.select(model.query(torch.zeros(2, 64, 5)), feats)
        model(x)
    assert (model.weights.argmax(-1) == level).all()
    torch.testing.assert_close(out, feats[:, :, level])


def test_model_rejects_bad_input():
    with pytest.raises(ValueError, match="kind must be one of"):
        LevelSelector(16, 5, "argmax")
    with pytest.raises(TypeError, match="idx must be a long tensor"):
        LevelSelector(16, 5)(torch.zeros(2, 64))
    with pytest.raises(ValueError, match="T must be >= 2\\*\\*n_levels"):
        segment_compare_batch(2, 16, 16, 5)


def test_a_short_run_learns_and_reports():
    r = run_cell(0, "hard_st", steps=120, n_test=64, eval_every=60)
    assert r["curve_steps"] == [60, 120]
    assert 0.0 <= r["entropy"] < 1e-6             # one-hot at test time
    assert r["acc"] > 0.62 and r["right_level"] > 0.5   # above the best fixed level
    assert r["acc_hardened"] == r["acc"]     # hard_st is one-hot already: nothing changes


def test_sweep_cells():
    spec = sweep(seeds=(0, 1))
    assert spec.name == "selection" and spec.out.endswith("selection.json")
    assert len(spec.cells) == 2 * (len(SWEEP_KINDS) + len(LONG_KINDS))
    assert sum("steps" in c for c in spec.cells) == 2 * len(LONG_KINDS)


def test_the_entropy_penalty_adds_the_mean_scored_entropy_to_the_loss():
    x, y, _ = _batch(n=4)
    torch.manual_seed(0)
    plain = LevelSelector(16, 5, "softmax")
    torch.manual_seed(0)
    penalised = LevelSelector(16, 5, "softmax", entropy_weight=0.7)
    _, l0 = plain(x, y)
    _, l1 = penalised(x, y)
    h = selection_entropy(penalised.weights)[y >= 0].mean()
    torch.testing.assert_close(l1, l0 + 0.7 * h)
    l1.backward()                            # and the penalty reaches the selector's scores
    l0.backward()
    assert not torch.allclose(penalised.select.score.weight.grad,
                              plain.select.score.weight.grad)
    with pytest.raises(ValueError, match="entropy_weight must be >= 0"):
        LevelSelector(16, 5, entropy_weight=-0.1)


def test_rate_sweep_tries_every_rate_on_seed_zero_first():
    from phaselib.scale_content_runs import RATES, RATES_OUT, sweep_rates

    cells = sweep_rates().cells
    n = len(SWEEP_KINDS) * len(RATES)
    assert len(cells) == n + len(SWEEP_KINDS) * 4
    assert {c["seed"] for c in cells[:n]} == {0} and {c["lr"] for c in cells[:n]} == set(
        RATES)
    assert all(c["lr"] == "best" and c["out"] == RATES_OUT for c in cells[n:])
    assert {c["kind"] for c in cells} == set(SWEEP_KINDS)
    # the registered grid, extended upward only (stop 50's registered step)
    from phaselib.scale_content_runs import ADDED_RATES, NEXT_RATE, REGISTERED_RATES
    assert RATES[:3] == REGISTERED_RATES == (1e-3, 3e-3, 1e-2)
    assert sorted(RATES) == list(RATES) and min(ADDED_RATES) > 1e-2
    assert NEXT_RATE > RATES[-1] or RATES[-1] == NEXT_RATE


def test_rate_cell_scores_validation_apart_from_the_test(one_thread):
    from phaselib.scale_content_runs import run_rate_cell

    res = run_rate_cell(0, "softmax", 3e-3)
    # Validation and test are different sequences: close scores, not the same one.
    assert res["lr"] == 3e-3 and res["val_acc"] != res["acc"]
    assert abs(res["val_acc"] - res["acc"]) < 0.05
    with pytest.raises(ValueError, match="needs out"):
        run_rate_cell(0, "softmax", "best")
    with pytest.raises(ValueError, match="positive float"):
        run_rate_cell(0, "softmax", 0)


def test_the_anneals_end_where_they_say_and_refuse_what_they_cannot_anneal():
    from phaselib.scale_content import LATE_ENTROPY_WEIGHT, TAU_END, fit

    model, _, _ = fit(0, "softmax", steps=4, n_test=8, anneal="temperature")
    assert abs(model.select.tau - TAU_END) < 1e-12 and model.entropy_weight == 0
    model, _, _ = fit(0, "softmax", steps=2, n_test=8, anneal="late_entropy")
    assert model.entropy_weight == LATE_ENTROPY_WEIGHT and model.select.tau == 1.0
    with pytest.raises(ValueError, match="anneal needs a softmax"):
        fit(0, "sparsemax", steps=1, n_test=8, anneal="temperature")
    with pytest.raises(ValueError, match="anneal needs a softmax"):
        fit(0, "softmax", steps=1, n_test=8, anneal="temperature", entropy_weight=0.1)
    with pytest.raises(ValueError, match="anneal must be one of"):
        fit(0, "softmax", steps=1, n_test=8, anneal="cosine")


def test_the_temperature_falls_geometrically_step_by_step():
    from phaselib.scale_content import TAU_END, _annealer

    model = LevelSelector(16, 5, "softmax")
    hook = _annealer(model, "temperature", 10)
    assert model.select.tau == 1.0
    seen = []
    for done in range(1, 11):
        hook(done, None, None)
        seen.append(model.select.tau)
    ratios = [b / a for a, b in zip(seen, seen[1:])]
    assert all(abs(r - TAU_END ** 0.1) < 1e-9 for r in ratios)
    late = LevelSelector(16, 5, "softmax")
    hook = _annealer(late, "late_entropy", 10)
    weights = []
    for done in range(1, 11):
        hook(done, None, None)
        weights.append(late.entropy_weight)
    assert weights[:4] == [0.0] * 4 and weights[4] > 0 and len(set(weights[4:])) == 1


def test_the_anneal_sweep_tries_each_schedule_at_every_rate_first():
    from phaselib.scale_content import ANNEALS
    from phaselib.scale_content_runs import ANNEAL_OUT, RATES, sweep_anneal

    cells = sweep_anneal().cells
    n = len(ANNEALS) * len(RATES)
    assert len(cells) == n + len(ANNEALS) * 4
    assert all(c["seed"] == 0 and c["lr"] in RATES for c in cells[:n])
    assert all(c["lr"] == "best" and c["out"] == ANNEAL_OUT for c in cells[n:])
    assert {c["anneal"] for c in cells} == set(ANNEALS)
    assert {c["kind"] for c in cells} == {"softmax"}
