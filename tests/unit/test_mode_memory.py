"""The slots chapter's experiment: variants, accuracy windows, the sweep's cells."""

import numpy as np
import pytest
import torch

from phaselib.mode_memory import (RATES, RATES_OUT, VAL_SEED, ModeConfig,
                                  accuracy_between, held_out, mode_model, run_cell,
                                  run_rate_cell, switch_masks, sweep_rates,
                                  train_and_test, validation_accuracy, variants)
from phaselib.slots import DecisionSlots, GRUState, matched_gru_hidden
from phaselib.tasks import mode_switch_batch


def test_accuracy_between_counts_distances_lo_to_hi_minus_one():
    acc = np.array([1.0, 0.0, 0.5, 0.5, 0.0])     # distances 1 .. 5
    assert accuracy_between(acc, 2, 4) == 0.25    # distances 2, 3
    assert accuracy_between(acc, 1, 6) == 0.4
    with pytest.raises(ValueError, match="need 1 <= lo < hi <= 6"):
        accuracy_between(acc, 3, 7)


def test_variants_build_the_named_memories():
    cfg = ModeConfig(n_embd=8, n_slots=3)
    table = variants(cfg)
    assert mode_model(cfg, **table["window + sink"]).blocks[0].sink is True
    assert mode_model(cfg, **table["window + GRU"]).blocks[1].slots.gru.hidden_size == 24
    assert mode_model(cfg, **table["window + hard slots"]).blocks[0].slots.hard is True
    assert mode_model(cfg, **table["full attention"]).blocks[0].window is None
    assert mode_model(cfg, **table["window"]).blocks[0].slots is None


def test_a_tiny_run_returns_per_position_accuracy_in_range():
    cfg = ModeConfig(train_len=8, test_len=16, n_embd=8, steps=3, batch=4, n_test=5)
    x, y = held_out(cfg, 0)
    assert x.shape == (5, 16)
    _, acc = train_and_test(cfg, 0, x, y)
    assert acc.shape == (15,) and ((acc >= 0) & (acc <= 1)).all()


def test_run_cell_rejects_an_unknown_variant_and_task():
    with pytest.raises(ValueError, match="variant must be one of"):
        run_cell(0, "window + lstm", steps=1)
    with pytest.raises(ValueError, match="task must be one of"):
        ModeConfig(task="swap")


def test_the_switch_task_sets_the_mode_anywhere_and_overwrites_it():
    x, y = mode_switch_batch(64, 64, 8, generator=torch.Generator().manual_seed(0))
    vocab = 8
    for row_x, row_y in zip(x, y):
        (p1, p2) = (row_x >= vocab).nonzero().flatten().tolist()
        assert 0 <= p1 < 8 and 32 <= p2 < 40
        first, second = row_x[p1].item() - vocab, row_x[p2].item() - vocab
        assert second == 1 - first                        # always the other mode
        assert (row_y[:p1 + 1] == -1).all() and row_y[p2] == -1
        assert torch.equal(row_y[p1 + 1:p2], (row_x[p1 + 1:p2] + first) % vocab)
        assert torch.equal(row_y[p2 + 1:], (row_x[p2 + 1:] + second) % vocab)
    assert (x[:, 0] < vocab).float().mean() > 0.5         # token 0 is mostly content
    with pytest.raises(ValueError, match="T >= 16"):
        mode_switch_batch(2, 8)


def test_switch_masks_score_out_of_reach_of_each_mode_token():
    x = torch.tensor([[8, 1, 2, 3, 4, 9, 1, 2, 3, 4],
                      [0, 1, 9, 3, 4, 5, 8, 2, 3, 4]])
    m = switch_masks(x, 8, reach=2)
    assert m["hold"][0].nonzero()[0].tolist() == [3, 4]       # 0 + 2 < t < 5
    assert m["override"][0].nonzero()[0].tolist() == [8, 9]   # t > 5 + 2
    assert m["hold"][1].nonzero()[0].tolist() == [5]
    assert m["override"][1].nonzero()[0].tolist() == [9]
    with pytest.raises(ValueError, match="exactly two mode tokens"):
        switch_masks(torch.tensor([[8, 1, 2, 3]]), 8, reach=1)


def test_the_matched_gru_has_about_the_slots_parameters_and_a_smaller_state():
    h = matched_gru_hidden(32, 2)
    count = lambda m: sum(p.numel() for p in m.parameters())
    slots, gru = count(DecisionSlots(32, 2)), count(GRUState(32, 2, hidden=h))
    assert abs(gru - slots) / slots < 0.05 and h < 2 * 32
    assert abs(count(GRUState(32, 2, hidden=h + 1)) - slots) > abs(gru - slots)
    state = torch.get_rng_state()
    matched_gru_hidden(16, 3)
    assert torch.equal(state, torch.get_rng_state())      # counting leaves the seed
    cfg = ModeConfig(n_embd=8, n_slots=3)
    m = mode_model(cfg, **variants(cfg)["GRU, matched params"])
    assert m.blocks[0].slots.gru.hidden_size == matched_gru_hidden(8, 3)


def test_validation_scores_out_of_the_windows_reach_on_sequences_of_their_own():
    cfg = ModeConfig(train_len=16, test_len=32, n_embd=8, window=2, steps=2, batch=4,
                     n_test=4)
    for task in ("first", "switch"):
        c = ModeConfig(**{**cfg.__dict__, "task": task})
        torch.manual_seed(0)
        m = mode_model(c, **variants(c)["window + hard slots"])
        v = validation_accuracy(c, m, n_val=8)
        assert 0 <= v <= 1
        x_test, _ = held_out(c, 0)
        x_val, _ = c.batch_fn()(8, c.test_len, c.vocab,
                                generator=torch.Generator().manual_seed(VAL_SEED))
        assert not torch.equal(x_val[:4], x_test)            # not the test sequences


def test_validation_accuracy_is_the_oracle_one_and_a_constant_guess_at_chance():
    cfg = ModeConfig(test_len=32, window=2)

    class Oracle(torch.nn.Module):
        """Predicts the target where the mode is known, token 0 elsewhere."""
        def __init__(self, cheat):
            super().__init__()
            self.cheat = cheat

        def forward(self, x):
            mode = (x[:, :1] - cfg.vocab).clamp(min=0)
            y = (x + mode) % cfg.vocab if self.cheat else torch.zeros_like(x)
            return torch.nn.functional.one_hot(y, cfg.vocab).float(), None

    assert validation_accuracy(cfg, Oracle(True), n_val=16) == 1.0
    assert validation_accuracy(cfg, Oracle(False), n_val=16) < 0.3


def test_the_rate_cells_choose_each_memory_on_each_task_from_seed_zero():
    spec = sweep_rates()
    assert spec.name == "slots-rates" and spec.out == RATES_OUT
    n = len(variants(ModeConfig()))
    zero = [c for c in spec.cells if c["seed"] == 0]
    assert len(zero) == 2 * n * len(RATES)
    assert {c["lr"] for c in zero} == set(RATES)
    # the registered grid, extended one step each way (stop 50's registered step)
    from phaselib.mode_memory import ADDED_RATES, NEXT_RATE, REGISTERED_RATES
    assert RATES[1:4] == REGISTERED_RATES == (1e-3, 3e-3, 1e-2)
    assert sorted(RATES) == list(RATES) and set(ADDED_RATES) == {RATES[0], RATES[4]}
    assert RATES[5:] == (NEXT_RATE,)       # the rule's one further step, taken
    rest = [c for c in spec.cells if c["seed"] != 0]
    assert len(rest) == 2 * n * 4 and all(c["lr"] == "best" for c in rest)
    assert {c["task"] for c in spec.cells} == {"first", "switch"}
    assert spec.cells.index(zero[-1]) < spec.cells.index(rest[0])   # rate cells first
    with pytest.raises(ValueError, match="lr must be a positive float"):
        run_rate_cell(0, "window", "first", 0.0)
    with pytest.raises(ValueError, match="needs out"):
        run_rate_cell(0, "window", "first", "best")


def test_a_tiny_rate_cell_records_its_rate_and_validation_accuracy():
    res = run_rate_cell(0, "window + hard slots", "switch", 1e-3, n_val=4, train_len=16,
                        test_len=32, n_embd=8, window=2, steps=2, batch=4, n_test=4)
    assert res["lr"] == 1e-3 and res["config"]["lr"] == 1e-3
    assert res["config"]["task"] == "switch" and 0 <= res["val_acc"] <= 1
    assert {"hold", "override"} <= set(res)
