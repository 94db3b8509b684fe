"""random_windows: every start reachable (the last window too), the shortest split works."""

import pytest
import torch

from phaselib.data import random_windows


def test_random_windows_reach_the_last_window():
    data = torch.arange(10)
    g = torch.Generator().manual_seed(0)
    x, y = random_windows(data, 4, 400, generator=g)
    starts = set(x[:, 0].tolist())
    assert starts == set(range(0, 6))  # starts 0..N-block-1 = 0..5; 5 ends at the last token
    assert torch.equal(y, x + 1)
    assert y.max().item() == 9


def test_random_windows_on_exactly_block_plus_one_tokens():
    data = torch.tensor([3, 1, 4, 1, 5])
    x, y = random_windows(data, 4, 3)
    assert x.tolist() == [[3, 1, 4, 1]] * 3 and y.tolist() == [[1, 4, 1, 5]] * 3


@pytest.mark.parametrize("kw, msg", [
    (dict(data=torch.arange(4), block=4), "at least block \\+ 1 = 5"),
    (dict(data=torch.zeros(2, 9, dtype=torch.long)), "1-D"),
    (dict(block=0), "block must be a positive int"),
    (dict(batch=0), "batch must be a positive int"),
])
def test_random_windows_reject_bad_input(kw, msg):
    args = dict(data=torch.arange(20), block=4, batch=2) | kw
    with pytest.raises(ValueError, match=msg):
        random_windows(**args)
