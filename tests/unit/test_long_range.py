"""The topic task: its exact Bayes losses, the window reach, one tiny cell end to end."""

import math

import pytest
import torch

from phaselib import long_range as lr_
from phaselib.rates import mean_best_rate
from phaselib.sweep import get_spec

pytestmark = pytest.mark.usefixtures("one_thread")


def brute_force(x, dists, reach):
    """The posterior predictive by explicit products over the symbols seen, per topic."""
    n, T1 = x.shape
    out = torch.zeros(n, T1 - 1, dtype=torch.float64)
    for i in range(n):
        for t in range(T1 - 1):
            lo = 0 if reach is None else max(0, t + 1 - reach)
            like = [math.prod(float(dists[k, s]) for s in x[i, lo:t + 1])
                    for k in range(dists.shape[0])]
            pred = sum(w * float(dists[k, x[i, t + 1]]) for k, w in enumerate(like))
            out[i, t] = -math.log(pred / sum(like))
    return out


@pytest.mark.parametrize("reach", [None, 1, 3])
def test_bayes_losses_match_explicit_products(reach):
    dists = lr_.topic_dists(5, 3, 1.5)
    x, _ = lr_.topic_batch(4, 7, dists, torch.Generator().manual_seed(0))
    got = lr_.bayes_losses(x, dists, reach)
    assert got.shape == (4, 7)
    assert torch.allclose(got, brute_force(x, dists, reach), atol=1e-10)


def test_the_whole_past_beats_a_short_reach_late_in_the_sequence():
    d = lr_.TOPIC_DEFAULTS
    dists = lr_.topic_dists(d["vocab"], d["topics"], d["beta"])
    x, k = lr_.topic_batch(256, d["T"], dists, torch.Generator().manual_seed(1))
    late = slice(3 * d["T"] // 4, d["T"])
    full = lr_.bayes_losses(x, dists)[:, late].mean()
    bound = lr_.bayes_losses(x, dists, lr_.window_reach(2, 8))[:, late].mean()
    # the headroom the task leaves a model that carries the topic past its window
    assert bound - full > 0.05
    # and the floor is the topics' own entropy once the topic is known
    H = -(dists * dists.log()).sum(-1)[k].mean()
    assert abs(full - H) < 0.02


def test_window_reach_and_bad_input():
    assert lr_.window_reach(1, 8) == 8 and lr_.window_reach(2, 8) == 15
    with pytest.raises(ValueError, match="reach"):
        lr_.bayes_losses(torch.zeros(2, 5, dtype=torch.long), lr_.topic_dists(4, 2, 1), 0)
    with pytest.raises(ValueError, match="shape"):
        lr_.bayes_losses(torch.zeros(5, dtype=torch.long), lr_.topic_dists(4, 2, 1))
    with pytest.raises(ValueError, match="beta"):
        lr_.topic_dists(4, 2, 0.0)
    with pytest.raises(ValueError, match="variant"):
        lr_.topic_model("lstm", 8, 16, 1, 16, 2, 4)
    with pytest.raises(ValueError, match="hp"):
        lr_.run_topic(0, "transformer", 1e-3, layers=3)


def test_one_tiny_cell_end_to_end_and_the_sweep():
    r = lr_.run_topic(0, "no-slots", 3e-3, T=32, steps=3, batch=2, n_val=4, n_test=8,
                      n_embd=16)
    assert r["reach"] == 15 and r["bound_late"] > r["bayes_late"]
    assert len(r["test_curve"]) == 16 and all(v > 0 for v in r["test_curve"])
    assert r["test_late"] > r["bayes_late"] - 0.5          # three steps learn little
    assert lr_.run_topic(0, "phase", 3e-3, T=32, steps=1, batch=2, n_val=4, n_test=8,
                         n_embd=16)["bound_late"] is None
    cells = get_spec("long-range").cells
    assert len(cells) == 3 * len(lr_.TOPIC_VARIANTS) * len(lr_.TOPIC_RATES)


def test_the_edge_sweep_runs_exactly_the_models_at_the_top_of_the_stored_grid():
    """The registered edge sweep covers every model whose mean-over-seeds choice lies
    at the top of TOPIC_RATES in the stored sweep, at one grid step past it, on every
    seed of the stored sweep (and nothing at the bottom edge needs one)."""
    from phaselib.sweep import load_sweep

    rows = load_sweep(get_spec("long-range").out).results()
    at = {v: mean_best_rate([r for r in rows if r["variant"] == v], "val_late")
          for v in lr_.TOPIC_VARIANTS}
    top, step = max(lr_.TOPIC_RATES), lr_.TOPIC_RATES[-1] / lr_.TOPIC_RATES[-2]
    assert sorted(v for v, lr in at.items() if lr == top) == sorted(lr_.EDGE_VARIANTS)
    assert not any(lr == min(lr_.TOPIC_RATES) for lr in at.values())
    assert lr_.EDGE_RATE == pytest.approx(float(f"{top * step:.1g}"))
    spec = get_spec("long-range-edges")
    seeds = sorted({r["seed"] for r in rows})
    assert sorted((c["variant"], c["seed"]) for c in spec.cells) == sorted(
        (v, s) for v in lr_.EDGE_VARIANTS for s in seeds)
    assert {c["lr"] for c in spec.cells} == {lr_.EDGE_RATE}
    assert spec.out == lr_.EDGES_OUT
