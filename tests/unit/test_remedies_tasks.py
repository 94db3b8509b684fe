"""The task suite of Part III: what each generator promises, one cell, the sweep, sinks."""

import pytest
import torch

from phaselib.remedies.streaming_sinks import CONDITIONS, _cache_mask, stream_losses
from phaselib.remedies.model import RemedyConfig, RemedyLM
from phaselib.remedies.tasks import (COPY_LONG_STEPS, COPY_LONGER_STEPS, COPY_RATES,
                                     FAITHFUL_MIXERS, GAPS, SWEEP_MIXERS, TASKS,
                                     mqar_batch, run_cell, span_copy_batch, sweep)


def test_mqar_queries_ask_for_the_value_paired_with_their_key():
    g = torch.Generator().manual_seed(0)
    x, y = mqar_batch(7, n_pairs=5, n_keys=9, n_values=6, generator=g)
    assert x.shape == y.shape == (7, 15)
    assert (y[:, :10] == -1).all()
    for b in range(7):
        pairs = {int(x[b, 2 * i]): int(x[b, 2 * i + 1]) for i in range(5)}
        assert len(pairs) == 5                              # distinct keys
        assert all(9 <= v < 15 for v in pairs.values())     # values after the keys
        for t in range(10, 15):
            assert int(y[b, t]) == pairs[int(x[b, t])]


def test_mqar_rejects_more_pairs_than_keys():
    with pytest.raises(ValueError, match="n_keys must be"):
        mqar_batch(2, n_pairs=5, n_keys=4)


@pytest.mark.parametrize("gap", [0, 3, 26])
def test_span_copy_targets_are_the_next_token_of_the_first_copy(gap):
    g = torch.Generator().manual_seed(gap)
    x, y = span_copy_batch(9, gap, T=48, vocab=20, span=6, generator=g)
    assert x.shape == y.shape == (9, 48)
    assert ((y >= 0).sum(1) == 5).all()
    for b in range(9):
        ts = (y[b] >= 0).nonzero().flatten()
        for t in ts.tolist():
            back = t - 6 - gap                      # the same token in the first copy
            assert x[b, back] == x[b, t]
            assert y[b, t] == x[b, back + 1]


def test_span_copy_mixes_gaps_from_a_tuple_and_checks_its_sizes():
    g = torch.Generator().manual_seed(3)
    x, y = span_copy_batch(64, GAPS, generator=g)
    firsts = [(y[b] >= 0).nonzero()[0].item() for b in range(64)]
    assert len(set(firsts)) > 5
    with pytest.raises(ValueError, match="T must be >="):
        span_copy_batch(2, 40, T=48)


def test_run_cell_scores_each_task_and_rejects_unknown_names():
    r = run_cell("fused", "mqar", 0, steps=3, n_embd=16, n_head=2, batch=4)
    assert 0.0 <= r["acc"] <= 1.0 and r["params"] > 0
    c = run_cell("window", "copy", 0, steps=2, n_embd=16, n_head=2, batch=4)
    assert sorted(c) == sorted(["train_loss", "params", "seconds", "steps", "batch", "lr"]
                               + [f"acc_gap_{d}" for d in GAPS])
    assert (c["steps"], c["batch"]) == (2, 4)
    with pytest.raises(ValueError, match="task must be one of"):
        run_cell("fused", "nope", 0)
    with pytest.raises(ValueError, match="mixer must be one of"):
        run_cell("nope", "mqar", 0)


def test_run_cell_takes_each_tasks_own_budget(monkeypatch):
    from phaselib.remedies import tasks
    monkeypatch.setitem(tasks.BUDGETS, "mqar", (3, 5, 1e-2))
    r = run_cell("fused", "mqar", 0, n_embd=16, n_head=2)
    assert (r["steps"], r["batch"], r["lr"]) == (3, 5, 1e-2)
    assert tasks.BUDGETS["copy"][:2] == (300, 32)    # the precomputed copy cells' budget


def test_sweep_has_every_mixer_task_and_seed_and_the_streaming_cells():
    spec = sweep(seeds=(0, 1))
    assert spec.name == "remedies"
    tasks = {(c["mixer"], c["task"], c["seed"]) for c in spec.cells if c["kind"] == "task"}
    mixers = SWEEP_MIXERS + FAITHFUL_MIXERS
    assert tasks == {(m, t, s) for m in mixers for t in TASKS for s in (0, 1)}
    long = [(c["mixer"], c["seed"]) for c in spec.cells
            if c.get("steps") == COPY_LONG_STEPS]
    assert sorted(long) == [("fused", 0), ("fused", 1), ("window", 0), ("window", 1)]
    longer = [(c["mixer"], c["seed"], c["lr"]) for c in spec.cells
              if c.get("steps") == COPY_LONGER_STEPS]
    assert sorted(longer) == [("fused", s, r) for s in (0, 1) for r in COPY_RATES]
    assert {c["steps"] for c in spec.cells if c.get("steps")} == {COPY_LONG_STEPS,
                                                                   COPY_LONGER_STEPS}
    assert sorted(c["seed"] for c in spec.cells if c["kind"] == "streaming") == [0, 1]


def test_cache_masks_keep_the_cache_size_fixed():
    L, W = 40, 8
    for cond in ("window", "sinks_1", "sinks_4"):
        m = _cache_mask(cond, L, W)
        assert (m.sum(1)[W:] == W).all()
    assert _cache_mask("sinks_4", L, W)[30, :4].all()
    assert not _cache_mask("window", L, W)[30, :4].any()


def test_stream_losses_agree_before_the_first_eviction():
    torch.manual_seed(0)
    model = RemedyLM(RemedyConfig(vocab_size=7, mixer="softmax", block_size=16,
                                  pos="none", n_embd=16, n_head=2))
    x = torch.randint(7, (2, 24))
    y = torch.randint(7, (2, 24))
    curves = {c: stream_losses(model, x, y, c, 6) for c in CONDITIONS}
    for c in CONDITIONS:
        torch.testing.assert_close(curves[c][:6], curves["dense"][:6])
    assert not torch.allclose(curves["window"][6:], curves["dense"][6:])
    with pytest.raises(ValueError, match="cond must be one of"):
        stream_losses(model, x, y, "nope", 6)


def test_a_copy_run_at_its_own_rate_reports_a_validation_loss():
    r = run_cell("window", "copy", 0, steps=3, batch=4, lr=1e-3)
    assert r["lr"] == 1e-3 and r["val_loss"] > 0
    assert "val_loss" not in run_cell("window", "copy", 0, steps=3, batch=4)
    with pytest.raises(ValueError, match="lr"):
        run_cell("window", "copy", 0, steps=3, batch=4, lr=-1.0)
