"""F5 in seed 003's form: the loss at each history length, and a noisy past."""

import math

import pytest
import torch

from phaselib.history import (late_and_middle, loss_by_position, noisy_past_loss,
                              run_history, sweep)


class Counter(torch.nn.Module):
    """Predicts x[t] + 1 (mod V) at positions t >= `after` when the window's first id is
    0, and nothing (uniform) otherwise."""

    def __init__(self, vocab, after=0):
        super().__init__()
        self.vocab, self.after = vocab, after

    def forward(self, x):
        sure = torch.nn.functional.one_hot((x + 1) % self.vocab, self.vocab).float() * 50
        knows = (x[:, :1] == 0).float()[..., None]
        far = (torch.arange(x.shape[1]) >= self.after).float()[None, :, None]
        return (sure * knows * far,)


V, BLOCK = 8, 16
IDS = torch.arange(40 * BLOCK) % V                  # every window starts at id 0


def test_the_compared_positions_are_the_last_and_second_quarters():
    late, mid = late_and_middle(16)
    assert list(late) == [12, 13, 14, 15] and list(mid) == [4, 5, 6, 7]
    with pytest.raises(ValueError, match="multiple of 4"):
        late_and_middle(10)


def test_loss_by_position_reads_each_history_length():
    by_pos = loss_by_position(Counter(V, after=3), IDS, BLOCK, n_windows=4)
    assert by_pos.shape == (BLOCK,)
    assert torch.allclose(by_pos[:3], torch.full((3,), math.log(V)), atol=1e-5)
    assert by_pos[3:].max() < 1e-6                 # position t has history t + 1
    with pytest.raises(ValueError, match="fewer than n_windows"):
        loss_by_position(Counter(V), IDS, BLOCK, n_windows=100)


def test_a_noisy_past_erases_what_only_the_far_past_knew():
    model = Counter(V)
    clean = loss_by_position(model, IDS, BLOCK, n_windows=8)
    g = torch.Generator().manual_seed(0)
    noisy = noisy_past_loss(model, IDS, BLOCK, 8, keep=2, vocab=V, generator=g)
    late, _ = late_and_middle(BLOCK)
    assert noisy.shape == (len(late),)
    assert clean.max() < 1e-6 and noisy.mean() > 1.0     # the first id became noise
    with pytest.raises(ValueError, match="keep must lie in"):
        noisy_past_loss(model, IDS, BLOCK, 8, keep=12, vocab=V, generator=g)


def test_a_tiny_history_run_and_the_sweep():
    res = run_history(0, block=16, n_layer=1, n_embd=16, steps=2, batch=2,
                      n_windows=4, keep=4)
    assert len(res["loss_by_position"]) == 16 and len(res["noisy_late"]) == 4
    assert res["late"] > 0 and res["middle"] > 0 and res["late_noisy"] > 0
    spec = sweep()
    assert spec.name == "f5-history" and [c["seed"] for c in spec.cells] == [0, 1, 2,
                                                                             3, 4]
