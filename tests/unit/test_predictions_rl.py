"""phaselib.predictions.rl: tasks, the REINFORCE loss and its gradient, fine-tuning."""

import pytest
import torch

from phaselib.predictions.rl import (ComposedFamily, RLFamily, greedy_accuracy,
                                     pretrain, reinforce, reinforce_loss, task_answers)
from phaselib.predictions.sweep import choose_rate

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


def test_composed_family_pieces_answers_and_pretraining_pairs():
    fam = ComposedFamily()
    x = torch.arange(16)
    assert fam.answers(("shift", 1, 3), x).tolist() == [(v + 7) % 16 for v in range(16)]
    assert fam.answers(("reflect", 2, 0), x).tolist() == [(8 - v) % 16
                                                          for v in range(16)]
    idx = fam.inputs(("shift", 3, 2), x[:2])
    assert idx.tolist() == [[19, 22, 0], [19, 22, 1]]      # hi 16 + 3, lo 20 + 2, x
    assert fam.vocab_size == 24 and len(fam.pairs) == 12
    # every piece of a held-out pair is seen in pre-training, the pair itself never
    seen = set(fam.pairs)
    for h, l in fam.held_out:
        assert (h, l) not in seen
        assert any(p[0] == h for p in seen) and any(p[1] == l for p in seen)
    idx, targets = fam.pretrain_batch(torch.Generator().manual_seed(0), 512)
    batch_pairs = {(h - 16, l - 20) for h, l in idx[:, :2].tolist()}
    assert batch_pairs <= seen and len(batch_pairs) == 12
    assert (targets[:, :2] == -1).all()
    want = (idx[:, 2] + 4 * (idx[:, 0] - 16) + idx[:, 1] - 20) % 16
    assert torch.equal(targets[:, 2], want)


def test_composed_family_bad_input():
    with pytest.raises(ValueError, match="held_out"):
        ComposedFamily(held_out=((4, 0),))
    with pytest.raises(ValueError, match="task must be"):
        ComposedFamily().inputs(("shift", 0), torch.arange(3))
    with pytest.raises(ValueError, match="task must be"):
        ComposedFamily().answers(("rotate", 0, 0), torch.arange(3))


def test_composed_pretraining_learns_its_pairs():
    fam = ComposedFamily(m=8, n_hi=2, n_lo=4, held_out=((1, 2),))
    models = [pretrain(fam, steps=s, seed=0, n_embd=32) for s in (0, 800)]
    untrained, trained = ([greedy_accuracy(m, fam, ("shift", h, l)) for h, l in fam.pairs]
                          for m in models)
    assert sum(untrained) / len(untrained) < 0.3       # chance is 1/8
    assert sum(trained) / len(trained) > 0.85


def test_choose_rate_by_final_reward_not_accuracy():
    entry = {"runs": {"0.001": [{"reward_last": 0.5, "accuracy": [0, 1.0]}],
                      "0.003": [{"reward_last": 0.9, "accuracy": [0, 0.2]}],
                      "0.01": [{"reward_last": 0.9, "accuracy": [0, 0.1]}]}}
    assert choose_rate(entry) == "0.003"              # the first of a tie


def test_each_pairs_rate_is_chosen_on_the_other_pairs_only():
    from phaselib.predictions.sweep import held_out_pair_gains

    def run(start, end):
        return {"accuracy": [start, end], "reward_last": 0.0}

    # Pair 0 scores best at 0.003 itself, but the other pairs prefer 0.001.
    entry = {"runs": {"0.001": [run(0.0, 0.2), run(0.1, 0.9), run(0.0, 0.8)],
                      "0.003": [run(0.0, 1.0), run(0.1, 0.5), run(0.0, 0.6)]}}
    gains, chosen = held_out_pair_gains(entry)
    assert chosen == ["0.001", "0.003", "0.003"]
    assert gains == pytest.approx([0.2, 0.4, 0.6])
    tie = {"runs": {"a": [run(0, 1), run(0, 1)], "b": [run(0, 1), run(0, 1)]}}
    assert held_out_pair_gains(tie)[1] == ["a", "a"]        # ties to the first rate
    with pytest.raises(ValueError, match="two or more pair runs"):
        held_out_pair_gains({"runs": {"a": [run(0, 1)], "b": [run(0, 1)]}})
