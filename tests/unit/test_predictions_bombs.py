"""phaselib.predictions.bombs: bomb insertion, candidates, the worst bomb and its success."""

import pytest
import torch

from phaselib.predictions.bombs import (bomb_batch, bomb_candidates, bomb_success,
                                        worst_bomb)
from phaselib.predictions.icl import ICLTask, train_icl

TASK = ICLTask(n_keys=4, n_values=3)


def test_candidates_leave_out_the_answer_tokens():
    c = bomb_candidates(TASK)
    assert set(range(3)).isdisjoint(c)                  # pair tokens (0, v)
    assert len(c) == TASK.vocab_size - 3
    assert TASK.query_token(torch.tensor(0)).item() in c


def test_bomb_insertion_keeps_the_body_in_order():
    bomb, m = 10, 5
    clean, bombed, answer = bomb_batch(TASK, 8, n_base=6, n_shown=2, bomb=bomb, m=m,
                                       generator=torch.Generator().manual_seed(0))
    assert clean.shape == (8, 13) and bombed.shape == (8, 13 + m) and answer.shape == (8,)
    for c, b in zip(clean, bombed):
        assert (b == bomb).sum() == m + (c == bomb).sum()
        assert torch.equal(b[b != bomb], c[c != bomb])    # the body, in order, unchanged
        assert b[-1] == c[-1] == TASK.query_token(torch.tensor(0))
    # key 0 is shown exactly n_shown times, with its answer
    pairs = clean[:, 1:-1:2]
    shown = (pairs // 3 == 0)
    assert (shown.sum(1) == 2).all()
    assert torch.equal(pairs[shown].view(8, 2)[:, 0], answer)


def test_bomb_positions_vary():
    _, bombed, _ = bomb_batch(TASK, 64, n_base=6, n_shown=1, bomb=10, m=3,
                              generator=torch.Generator().manual_seed(1))
    first = (bombed == 10).float().argmax(1)
    assert len(set(first.tolist())) > 3


def test_bad_inputs():
    g = torch.Generator()
    with pytest.raises(ValueError, match="bomb must be"):
        bomb_batch(TASK, 2, 4, 1, bomb=0, m=2, generator=g)
    with pytest.raises(ValueError, match="n_shown"):
        bomb_batch(TASK, 2, 4, 5, bomb=10, m=2, generator=g)
    with pytest.raises(ValueError, match="m must be"):
        bomb_batch(TASK, 2, 4, 1, bomb=10, m=-1, generator=g)


def test_worst_bomb_and_success_on_a_tiny_model():
    model = train_icl(ICLTask(n_keys=4, n_values=3, max_examples=8), n_embd=16,
                      n_head=2, steps=2, block_size=64)
    b = worst_bomb(model, TASK, n_base=4, n_shown=1, m=4, batch=8)
    assert b in bomb_candidates(TASK)
    out = bomb_success(model, TASK, b, n_base=4, n_shown=1, ms=[0, 4], batch=16)
    assert out["success"][0] == 0.0                 # no bomb, no flip
    assert all(0.0 <= s <= 1.0 for s in out["success"])
