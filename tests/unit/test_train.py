"""The shared training loop (resumable), full-split evaluation and sampling."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from phaselib.data import CharTokenizer
from phaselib.models import build_model
from phaselib.train import (History, TrainConfig, TrainState, eval_windows, evaluate_loss,
                            param_groups, position_losses, sample, train)

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 6


pytestmark = pytest.mark.usefixtures("one_thread")


class Bigram(nn.Module):
    """Logits depend on the current token only, so the loss of every target is fixed."""

    def __init__(self, V):
        super().__init__()
        self.table = nn.Parameter(torch.randn(V, V, generator=torch.Generator().manual_seed(0)))

    def forward(self, idx, targets=None):
        return self.table[idx], None


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 80), block=st.integers(1, 17), data=st.data())
def test_eval_windows_score_every_target_exactly_once(n, block, data):
    stride = data.draw(st.one_of(st.none(), st.integers(1, block)))
    seen = []
    for start, length, first in eval_windows(n, block, stride):
        assert 1 <= length <= block and 0 <= first < length and start + length <= n - 1
        seen += range(start + 1 + first, start + 1 + length)
    assert seen == list(range(1, n))


@pytest.mark.parametrize("stride", [None, 1, 3, 7])
@pytest.mark.parametrize("n", [2, 7, 50, 101])
def test_evaluate_loss_is_the_mean_over_every_held_out_target(n, stride):
    V = 9
    data = torch.randint(V, (n,), generator=torch.Generator().manual_seed(n))
    model = Bigram(V)
    want = F.cross_entropy(model.table[data[:-1]], data[1:]).item()
    got = evaluate_loss(model, data, block=7, batch=3, stride=stride)
    assert got == pytest.approx(want, rel=1e-6)


def test_evaluate_loss_matches_the_model_loss_on_whole_windows():
    torch.manual_seed(0)
    model = build_model("transformer", 13, block_size=8, n_layer=1, n_head=2, n_embd=16).eval()
    data = torch.randint(13, (8 * 5 + 1,))
    x, y = data[:-1].view(5, 8), data[1:].view(5, 8)
    _, want = model(x, y)
    assert evaluate_loss(model, data, 8, batch=2) == pytest.approx(want.item(), rel=1e-5)
    pos = position_losses(model, data, 8, batch=4)
    assert pos.shape == (8,) and pos.mean().item() == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("bad, err", [
    (dict(data=torch.zeros(10)), ValueError), (dict(data=torch.zeros(2, 5, dtype=torch.long)), ValueError),
    (dict(data=torch.zeros(1, dtype=torch.long)), ValueError), (dict(block=0), ValueError),
    (dict(stride=9), ValueError), (dict(stride=0), ValueError), (dict(batch=0), ValueError),
])
def test_evaluate_loss_rejects_bad_input(bad, err):
    kw = dict(model=Bigram(4), data=torch.zeros(20, dtype=torch.long), block=8, batch=2) | bad
    with pytest.raises(err):
        evaluate_loss(**kw)


def test_train_resumed_at_a_step_ends_where_the_whole_run_ends():
    """One loop: start=TrainState(step, history, optimizer) continues a run exactly."""
    import copy

    def run(start=None, snap_at=None):
        torch.manual_seed(0)
        model = build_model("transformer", 7, block_size=6, n_layer=1, n_head=2, n_embd=8)
        if start is not None:
            model.load_state_dict(start[0])
        data = torch.randint(7, (10, 2, 6), generator=torch.Generator().manual_seed(1))
        snaps = {}

        def on_step(step, opt, hist):
            if step == snap_at:
                snaps["s"] = (copy.deepcopy(model.state_dict()),
                              TrainState(step, copy.deepcopy(hist),
                                         copy.deepcopy(opt.state_dict())))
        cfg = TrainConfig(steps=10, warmup=3, progress=False)
        hist = train(model, lambda s: (data[s], data[s]), cfg,
                     start=None if start is None else start[1], on_step=on_step)
        return model, hist, snaps.get("s")

    whole, hist, snap = run(snap_at=4)
    resumed, hist2, _ = run(start=snap)
    for (k, v), w in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k
    assert hist2 == hist and hist.step == list(range(10))
    # Without the optimizer state the continuation differs (the test can fail).
    stale, _, _ = run(start=(snap[0], TrainState(4, snap[1].history, None)))
    assert not torch.equal(stale.wte.weight, whole.wte.weight)


def test_train_rejects_a_start_beyond_the_run():
    model = build_model("transformer", 5, block_size=4, n_layer=1, n_head=1, n_embd=4)
    with pytest.raises(ValueError, match="start must be a TrainState"):
        train(model, None, TrainConfig(steps=3, progress=False),
              start=TrainState(4, History(step=[0, 1, 2, 3], loss=[1.0] * 4)))


def test_train_keeps_its_old_interface():
    torch.manual_seed(0)
    model = build_model("transformer", 5, block_size=8, n_layer=1, n_head=1, n_embd=8)
    x = torch.randint(5, (2, 8))
    hist = train(model, lambda step: (x, x), TrainConfig(steps=6, eval_every=3, progress=False),
                 eval_fn=lambda m: 1.5)
    assert isinstance(hist, History) and hist.step == list(range(6))
    assert hist.eval_step == [3, 6] and hist.eval == [1.5, 1.5]


def test_param_groups_decay_matrices_only():
    model = build_model("transformer", 5, block_size=8, n_layer=1, n_head=1, n_embd=8)
    decay, rest = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and decay["params"]
    assert all(p.dim() == 1 for p in rest["params"]) and rest["params"]
    n = len(list(model.parameters()))
    assert len(decay["params"]) + len(rest["params"]) == n
    (only,) = param_groups(model, 0.0)          # no decay: one group, as before
    assert len(only["params"]) == n


def test_weight_decay_and_beta2_reach_the_optimizer():
    torch.manual_seed(0)
    model = build_model("transformer", 5, block_size=8, n_layer=1, n_head=1, n_embd=8)
    x = torch.randint(5, (2, 8))
    seen = []
    train(model, lambda step: (x, x),
          TrainConfig(steps=2, weight_decay=0.1, beta2=0.99, progress=False),
          on_step=lambda step, opt, hist: seen.append(
              [(g["weight_decay"], g["betas"]) for g in opt.param_groups]))
    assert seen[-1] == [(0.1, (0.9, 0.99)), (0.0, (0.9, 0.99))]


def test_sample_is_seeded_and_continues_the_prompt():
    tok = CharTokenizer(TEXT)
    model = build_model("transformer", tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8)
    a = sample(model, tok, "All:", 20, seed=3)
    assert a.startswith("All:") and len(a) == 24 and a == sample(model, tok, "All:", 20, seed=3)
    assert sample(model, tok, "All:", n_tokens=7, seed=3) == a[:11]  # n_tokens counts tokens
    assert a != sample(model, tok, "All:", 20, seed=4)
    with pytest.raises(ValueError, match="prompt"):
        sample(model, tok, "", 5)
