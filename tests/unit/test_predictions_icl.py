"""phaselib.predictions.icl: the in-context task, its ideal observer, the falls per seed."""

import pytest
import torch

from phaselib.predictions.icl import (ICLTask, accuracy_by_n, binned, icl_falls,
                                      largest_fall, majority_vote, make_batch,
                                      query_entropy, same_key_mass, train_icl)


def test_make_batch_shapes_and_tokens():
    task = ICLTask(n_keys=4, n_values=3, noise=0.0)
    idx, targets, keys, values, answers = make_batch(task, 5, 7, torch.Generator())
    assert idx.shape == targets.shape == (5, 14)
    assert keys.shape == values.shape == answers.shape == (5, 7)
    assert torch.equal(idx[:, 0::2], task.query_token(keys))           # queries
    assert torch.equal(idx[:, 1::2], keys * 3 + values)                 # pairs
    assert torch.equal(values, answers)                                 # noise 0
    assert (targets[:, 1::2] == -1).all() and torch.equal(targets[:, 0::2], answers)


def test_noise_changes_some_values_not_answers():
    task = ICLTask(n_keys=4, n_values=8, noise=0.5)
    _, _, keys, values, answers = make_batch(task, 64, 32, torch.Generator().manual_seed(1))
    share = (values != answers).float().mean().item()
    assert 0.3 < share < 0.55                     # 0.5 * 7/8 expected
    # the answer is a function of the key within a sequence
    for b in range(4):
        for k in range(4):
            a = answers[b][keys[b] == k]
            assert (a == a[0]).all() if len(a) else True


def test_majority_vote_hand_built():
    task = ICLTask(n_keys=2, n_values=4)
    keys = torch.tensor([[0, 0, 1, 0, 0, 1]])
    values = torch.tensor([[2, 3, 1, 2, 1, 1]])
    vote = majority_vote(task, keys, values, torch.Generator().manual_seed(0))
    # round 1: key 0 seen once (2); round 3: key 0 seen 2, 3 -> tie {2,3};
    # round 4: key 0: 2, 3, 2 -> 2; round 5: key 1 seen once (1)
    assert vote[0, 1].item() == 2
    assert vote[0, 3].item() in (2, 3)
    assert vote[0, 4].item() == 2
    assert vote[0, 5].item() == 1


def test_observer_accuracy_rises_with_examples():
    task = ICLTask(n_keys=4, n_values=8, noise=0.2)
    _, _, keys, values, answers = make_batch(task, 2000, 40, torch.Generator())
    acc = (majority_vote(task, keys, values, torch.Generator()) == answers).float().mean(0)
    assert acc[:2].mean() < 0.5 < 0.9 < acc[-8:].mean()


def test_bad_inputs():
    with pytest.raises(ValueError, match="noise"):
        ICLTask(noise=1.0)
    with pytest.raises(ValueError, match="n_keys"):
        ICLTask(n_keys=0)
    with pytest.raises(ValueError, match="block_size"):
        train_icl(ICLTask(max_examples=32), block_size=40, steps=1)
    with pytest.raises(ValueError, match="width"):
        binned([0.1, 0.2], width=4)


def test_short_training_runs_and_evaluates_past_its_length():
    task = ICLTask(n_keys=4, n_values=4, max_examples=8)
    model = train_icl(task, n_embd=16, n_head=2, steps=3, block_size=64)
    assert (model.wpe.weight == 0).all() and not model.wpe.weight.requires_grad
    res = accuracy_by_n(model, task, n_rounds=32, batch=8)
    assert len(res["model"]) == len(res["observer"]) == 32
    with pytest.raises(ValueError, match="n_rounds"):
        accuracy_by_n(model, task, n_rounds=33, batch=8)
    ent = query_entropy(model, task, n_rounds=16, batch=4)
    assert len(ent) == 16 and len(ent[0]) == 2
    assert ent[0][0] == pytest.approx(0.0, abs=1e-4)     # the first query sees one token
    assert ent[-1][0] <= torch.log(torch.tensor(31.0)).item() + 1e-4


def test_binned_and_largest_fall():
    assert binned([1, 3, 5, 7, 9], width=2) == [2.0, 6.0]
    assert largest_fall([0.1, 0.5, 0.9, 1.0]) == 0.0
    assert largest_fall([0.1, 0.8, 0.5, 0.9, 0.6]) == pytest.approx(0.3)


def test_icl_falls_per_seed_inside_and_past_the_training_length():
    rising = [0.2, 0.6, 0.9, 0.95, 0.96, 0.97]
    late_fall = [0.2, 0.6, 0.9, 0.95, 0.7, 0.5]
    peak = [0.2, 0.9, 0.6, 0.5, 0.4, 0.3]
    out = icl_falls([rising, late_fall, peak], train_bins=3)
    assert out["fall_within"] == pytest.approx([0.0, 0.0, 0.3])
    assert out["fall_anywhere"] == pytest.approx([0.0, 0.45, 0.6])
    with pytest.raises(ValueError, match="curves"):
        icl_falls([0.1, 0.2], train_bins=1)            # one curve, not a table
    with pytest.raises(ValueError, match="train_bins"):
        icl_falls([rising], train_bins=7)


def test_same_key_mass_shapes_bounds_and_share():
    task = ICLTask(n_keys=2, n_values=3, max_examples=8)
    model = train_icl(task, n_embd=16, n_head=2, steps=2, block_size=64)
    out = same_key_mass(model, task, n_rounds=10, batch=64)
    mass = torch.tensor(out["mass"])
    share = torch.tensor(out["share"])
    assert mass.shape == (10, 2) and share.shape == (10,)
    assert (mass >= 0).all() and (mass <= 1 + 1e-6).all()
    assert share[0] == 0                       # the first query has no earlier example
    # with two keys, about half of the i earlier pairs share the key, of 2i + 1 tokens
    i = torch.arange(1, 10)
    assert torch.allclose(share[1:], 0.5 * i / (2 * i + 1), atol=0.08)


def test_the_distractor_variant_grows_the_irrelevant_share_and_scores_only_asked_keys():
    task = ICLTask(n_keys=4, n_values=3, noise=0.0, distract=5, distract_half=8)
    assert task.all_keys == 9 and task.vocab_size == 9 * 3 + 9
    idx, targets, keys, values, answers = make_batch(task, 4000, 64,
                                                     torch.Generator().manual_seed(0))
    other = keys >= task.n_keys
    assert (keys < task.all_keys).all() and other.any() and (~other).any()
    # a distractor round is not scored, an asked round is, with its map's value
    assert ((answers == -1) == other).all() and (targets[:, 0::2] == answers).all()
    assert (targets[:, 1::2] == -1).all()
    # the share of distractor rounds follows i / (i + distract_half)
    share = other.float().mean(0)
    expected = task.distractor_share(64).float()
    assert torch.allclose(share, expected, atol=0.03) and share[0] == 0
    assert share[-8:].mean() > 0.8 > share[:8].mean()
    # query and pair tokens: the distractors' tokens are their own
    assert (idx[:, 0::2] == task.query_token(keys)).all()
    assert (idx[:, 1::2] == keys * task.n_values + values).all()
    # the observer votes over the asked key's own examples only: with no noise it is
    # right at every asked round whose key was shown before
    vote = majority_vote(task, keys, values, torch.Generator().manual_seed(1))
    seen = torch.zeros_like(other)
    for i in range(1, 64):
        seen[:, i] = (keys[:, :i] == keys[:, i:i + 1]).any(1)
    asked = ~other & seen
    assert (vote[asked] == answers[asked]).all()
    assert ICLTask().distractor_share(5).eq(0).all()          # the plain task has none
    with pytest.raises(ValueError, match="distract must be"):
        ICLTask(distract=-1)


def test_accuracy_by_n_with_distractors_counts_the_scored_rounds():
    task = ICLTask(n_keys=4, n_values=3, max_examples=8, distract=4, distract_half=4)
    model = train_icl(task, n_embd=16, n_head=2, steps=2, block_size=64)
    out = accuracy_by_n(model, task, n_rounds=16, batch=256)
    assert len(out["model"]) == len(out["observer"]) == len(out["scored"]) == 16
    assert out["scored"][0] == 256 and out["scored"][-1] < 128   # late: mostly distractors
    assert all(0 <= a <= 1 for a in out["model"] + out["observer"])
    assert "scored" not in accuracy_by_n(model, ICLTask(n_keys=4, n_values=3,
                                                        max_examples=8, distract=0),
                                         n_rounds=4, batch=8)
