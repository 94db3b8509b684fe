"""phaselib.predictions.rl: tasks, the REINFORCE loss and its gradient, fine-tuning."""

import pytest
import torch

from phaselib.predictions.rl import (RLFamily, greedy_accuracy, pretrain, reinforce,
                                     reinforce_loss, task_answers)

FAM = RLFamily(m=8, pretrain_shifts=(0, 1, 2), new_shift=5, reflect_c=3)


def test_tasks_and_tokens():
    x = torch.arange(8)
    assert task_answers(FAM, ("shift", 5), x).tolist() == [5, 6, 7, 0, 1, 2, 3, 4]
    assert task_answers(FAM, ("reflect", 3), x).tolist() == [3, 2, 1, 0, 7, 6, 5, 4]
    assert FAM.vocab_size == 8 + 5
    assert FAM.token(("shift", 5)) == 11 and FAM.token(("reflect", 3)) == 12
    with pytest.raises(ValueError, match="task must be"):
        FAM.token(("shift", 7))
    with pytest.raises(ValueError, match="new_shift"):
        RLFamily(m=8, pretrain_shifts=(0, 1), new_shift=1)
    with pytest.raises(ValueError, match="kind"):
        task_answers(FAM, ("rotate", 1), x)


def test_reinforce_gradient_sign_on_a_toy():
    logits = torch.zeros(1, 4, requires_grad=True)
    # action 2 rewarded above the baseline: descent raises its probability
    reinforce_loss(logits, torch.tensor([2]), torch.tensor([1.0]), 0.5).backward()
    assert logits.grad[0, 2] < 0 and (logits.grad[0, [0, 1, 3]] > 0).all()
    logits.grad = None
    # below the baseline: descent lowers it
    reinforce_loss(logits, torch.tensor([2]), torch.tensor([0.0]), 0.5).backward()
    assert logits.grad[0, 2] > 0


def test_reinforce_loss_bad_shapes():
    with pytest.raises(ValueError, match="logits"):
        reinforce_loss(torch.zeros(4), torch.zeros(4).long(), torch.zeros(4), 0.0)
    with pytest.raises(ValueError, match="actions and rewards"):
        reinforce_loss(torch.zeros(4, 3), torch.zeros(3).long(), torch.zeros(4), 0.0)


def test_pretraining_learns_its_shifts_and_rl_learns_a_bandit():
    model = pretrain(FAM, steps=300, seed=0, n_embd=32)
    assert min(greedy_accuracy(model, FAM, ("shift", c)) for c in (0, 1, 2)) == 1.0
    out = reinforce(model, FAM, ("shift", 5), steps=150, seed=0, lr=3e-3)
    assert out["step"][0] == 0 and out["step"][-1] == 150
    assert out["accuracy"][-1] > out["accuracy"][0]
    assert sum(out["reward"][-20:]) > sum(out["reward"][:20])
