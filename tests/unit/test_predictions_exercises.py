"""The checkers of phaselib/exercises/predictions.py accept right answers and reject wrong
ones."""

import pytest
import torch

from phaselib.exercises.predictions import check_reinforce_loss, check_vote
from phaselib.predictions.rl import reinforce_loss


def vote(keys, values, key):
    counts = {}
    for k, v in zip(keys, values):
        if k == key:
            counts[v] = counts.get(v, 0) + 1
    if not counts:
        return -1
    best = max(counts.values())
    return min(v for v, c in counts.items() if c == best)


def vote_last(keys, values, key):  # the most recent value: wrong under noise
    shown = [v for k, v in zip(keys, values) if k == key]
    return shown[-1] if shown else -1


def test_check_vote(capsys):
    assert check_vote(vote) is True
    assert "all checks passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="commonest value"):
        check_vote(vote_last)


def test_check_reinforce_loss(capsys):
    assert check_reinforce_loss(reinforce_loss) is True
    with pytest.raises(AssertionError, match="baseline"):
        check_reinforce_loss(lambda lg, a, r, b: reinforce_loss(lg, a, r, 0.0))
    with pytest.raises(AssertionError, match="sign"):
        check_reinforce_loss(lambda lg, a, r, b: -reinforce_loss(lg, a, r, b))


def test_stubs_are_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError

    assert check_vote(stub) is False
    assert check_reinforce_loss(stub) is False
    assert "not attempted" in capsys.readouterr().out
