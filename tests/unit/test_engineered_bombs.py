"""Tests for phaselib.engineered_bombs: the worst single-token bomb of a retrieval head."""

import pytest
import torch

from phaselib.context_collapse import train_needle
from phaselib.engineered_bombs import (BOMB_RULES, BOMB_SEEDS, HEADS, bomb_weights,
                                       worst_bomb)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def head():
    return train_needle(0, "standard", (8,), steps=40, batch=16, max_len=64)


def test_a_distractor_made_to_look_like_the_value_is_the_worst_bomb(head):
    # Give distractor 20 the key of value 3 (its embedding): it now scores as a value.
    with torch.no_grad():
        head.wte.weight[20] = head.wte.weight[3]
    assert worst_bomb(head, 16, seed=0) == 20
    # As a bomb it takes far more weight from the value than random distractors do.
    assert bomb_weights(head, 16, 20, 0) < 0.5 * bomb_weights(head, 16, None, 0)


def test_bomb_weights_are_shares_and_refuse_a_token_that_is_no_distractor(head):
    w = bomb_weights(head, 16, None, 0)
    assert 0.0 < w <= 1.0
    with pytest.raises(ValueError, match="token must be a distractor"):
        bomb_weights(head, 16, 3, 0)          # a value
    with pytest.raises(ValueError, match="n must"):
        bomb_weights(head, 0, None, 0)


def test_the_bomb_sweep_runs_every_head_on_five_seeds_and_judges_the_two_remedies():
    from phaselib.sweep import get_spec

    cells = get_spec("f5-bombs").cells
    assert {(c["seed"], c["head"]) for c in cells} == {
        (s, h) for s in BOMB_SEEDS for h in HEADS}
    assert len(BOMB_SEEDS) >= 5
    parts = BOMB_RULES["f5-token-bombs"]
    assert all((r["threshold"], r["direction"], r["unit"]) == (0.5, -1, "ratio")
               for r in parts.values())
