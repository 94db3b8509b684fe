"""F5 in seed 003's form: the loss at each history length, and a noisy past."""

import math

import pytest
import torch

from phaselib.history import (late_and_middle, loss_by_position, paired_history_loss,
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
        return sure * knows * far, None            # (logits, loss) as the models


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
    assert torch.allclose(by_pos[:3], torch.full((3,), math.log(V), dtype=by_pos.dtype), atol=1e-5)
    assert by_pos[3:].max() < 1e-6                 # position t has history t + 1
    with pytest.raises(ValueError, match="fewer than n_windows"):
        loss_by_position(Counter(V), IDS, BLOCK, n_windows=100)


def test_the_paired_histories_score_the_same_late_characters():
    # Knows the answer only when its window starts at id 0: the long history (the whole
    # window) does, the short one (starting half a window later, at id 0 again since
    # BLOCK / 2 is a multiple of V) does too, and the noisy one almost never.
    g = torch.Generator().manual_seed(0)
    got = paired_history_loss(Counter(V), IDS, BLOCK, 8, vocab=V, generator=g)
    late, _ = late_and_middle(BLOCK)
    assert all(v.shape == (len(late),) for v in got.values())
    assert got["long"].max() < 1e-6 and got["short"].max() < 1e-6
    assert got["noisy"].mean() > 1.0                     # the first id became noise
    # A model that needs more than the short history's first id: only the long one.
    late_only = Counter(V, after=BLOCK // 2 + 1)          # positions the short lacks
    got = paired_history_loss(late_only, IDS, BLOCK, 8, vocab=V, generator=g)
    assert got["long"].max() < 1e-6
    assert torch.allclose(got["short"], torch.full_like(got["short"], math.log(V)))


def test_a_tiny_history_run_and_the_sweep():
    res = run_history(0, block=16, n_layer=1, n_embd=16, steps=2, batch=2,
                      n_windows=4)
    assert len(res["loss_by_position"]) == 16 and len(res["paired_noisy"]) == 4
    assert all(res[k] > 0 for k in ("late", "middle", "late_long", "late_short",
                                    "late_noisy"))
    spec = sweep()
    assert spec.name == "f5-history" and [c["seed"] for c in spec.cells] == [0, 1, 2,
                                                                             3, 4]
