"""Tests for phaselib.predictions.sweep: the heads cell's model and first measure."""

import torch

from phaselib.predictions import sweep as ps


def test_train_heads_is_reproducible_and_heads_accuracy_spans_the_evaluation(
        one_thread, monkeypatch):
    monkeypatch.setitem(ps.ICL, "steps", 5)
    monkeypatch.setattr(ps, "EVAL_BATCH", 16)
    a, b = ps.train_heads(2, seed=0), ps.train_heads(2, seed=0)
    assert a.cfg.n_head == 2 and a.cfg.n_embd == ps.ICL["n_embd"]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    other = ps.train_heads(2, seed=1)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), other.parameters()))
    acc = ps.heads_accuracy(a, seed=0)
    n = ps.ICL["eval_examples"]
    assert len(acc["model"]) == len(acc["observer"]) == n
    assert all(0 <= x <= 1 for x in acc["model"] + acc["observer"])
    # past the training length the model runs on rounds it never saw in training
    assert 2 * n <= a.cfg.block_size and n > ps.ICL["train_examples"]


def test_the_distract_cells_train_and_score_the_variant(one_thread, monkeypatch):
    cells = ps.sweep(seeds=(0, 1, 2)).cells
    distract = [c for c in cells if c["experiment"] == "distract"]
    assert distract == [{"experiment": "distract", "n_head": ps.DISTRACT["n_head"],
                         "seed": s} for s in (0, 1, 2)]
    assert ps.heads_task(distract=True).distract == ps.DISTRACT["keys"]
    assert ps.heads_task().distract == 0
    monkeypatch.setitem(ps.ICL, "steps", 3)
    monkeypatch.setitem(ps.DISTRACT, "eval_batch", 64)
    r = ps.run("distract", seed=0, n_head=2)
    n = ps.ICL["eval_examples"]
    assert len(r["accuracy"]) == len(r["observer"]) == len(r["scored"]) == n
    share = r["distractor_share_before"]
    # the expected share of distractor rounds before a query grows with its round
    assert share[0] == 0 and all(b > a for a, b in zip(share[1:], share[2:]))
    assert 0.5 < share[-1] < 1


def test_the_sweep_runs_five_seeds_by_default():
    cells = ps.sweep().cells
    assert sorted({c["seed"] for c in cells}) == [0, 1, 2, 3, 4]
    # per seed: the heads, two RL budgets, distract, and the composed RL family
    assert len(cells) == 5 * (len(ps.HEADS) + 2 + 1 + 1)
    assert sum(c["experiment"] == "rl-composed" for c in cells) == 5
