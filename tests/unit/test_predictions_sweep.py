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
