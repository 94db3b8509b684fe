"""The shared training loop, full-split evaluation and the command line (phaselib.train,
phaselib.cli)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from phaselib.checkpoint import load_checkpoint
from phaselib.cli import main
from phaselib.data import CharTokenizer
from phaselib.lm_runs import load_corpus, read_run_results
from phaselib.models import build_model
from phaselib.train import (History, TrainConfig, TrainState, eval_windows, evaluate_loss,
                            position_losses, sample, train)

ROOT = Path(__file__).resolve().parents[2]
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


def test_sample_is_seeded_and_continues_the_prompt():
    tok = CharTokenizer(TEXT)
    model = build_model("transformer", tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8)
    a = sample(model, tok, "All:", 20, seed=3)
    assert a.startswith("All:") and len(a) == 24 and a == sample(model, tok, "All:", 20, seed=3)
    assert sample(model, tok, "All:", n_tokens=7, seed=3) == a[:11]  # n_tokens counts tokens
    assert a != sample(model, tok, "All:", 20, seed=4)
    with pytest.raises(ValueError, match="prompt"):
        sample(model, tok, "", 5)


def test_load_corpus_splits_a_text_file_in_order(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    tok, tr, va = load_corpus(tmp_path / "t.txt")
    cut = int(len(TEXT) * 0.9)
    assert tok.decode(tr) == TEXT[:cut] and tok.decode(va) == TEXT[cut:]
    with pytest.raises(ValueError, match="existing file"):
        load_corpus(tmp_path / "missing.txt")


@pytest.mark.parametrize("kind, extra", [("transformer", []),
                                         ("phase", ["--window", "4", "--n-slots", "2"])])
def test_cli_trains_reports_and_saves(tmp_path, capsys, kind, extra):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    out = main(["--model", kind, "--text", str(tmp_path / "t.txt"), "--steps", "4", "--block", "16",
                "--batch", "3", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--eval-batch", "5",
                "--sample", "10", "--prompt", "All", "--out", str(tmp_path / "c.pt")] + extra)
    text = capsys.readouterr().out
    for key in ("val_loss", "params", "wall_time_s"):
        assert f"\n{key} " in text
    _, _, va = load_corpus(tmp_path / "t.txt")
    assert out["val_tokens"] == len(va) - 1
    ck = load_checkpoint(tmp_path / "c.pt")
    assert evaluate_loss(ck.model, va, 16, 7) == pytest.approx(out["val_loss"], rel=1e-5)
    assert ck.extra["params"] == out["params"]
    if kind == "transformer":  # hand count: tied embedding, per layer 12 C^2 + 2 C, ln_f
        V, C = len(set(TEXT)), 16
        assert out["params"] == V * C + (12 * C * C + 2 * C) + C


def test_cli_runs_as_a_module(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "phaselib.train", "--model", "transformer", "--text",
                        str(tmp_path / "t.txt"), "--steps", "2", "--block", "8", "--batch", "2",
                        "--n-layer", "1", "--n-embd", "8", "--n-head", "1", "--threads", "1"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines() if line[:1].islower() and " " in line)
    assert float(lines["val_loss"].split()[0]) > 0
    assert int(lines["params"]) > 0 and float(lines["wall_time_s"].split()[0]) >= 0


@pytest.mark.parametrize("args, msg", [
    (["--model", "rnn"], "invalid choice"),
    (["--model", "transformer", "--text", "/nonexistent/file.txt"], "existing file"),
    (["--model", "transformer", "--steps", "0"], "--steps"),
    (["--model", "transformer", "--block", "400"], "too short"),
])
def test_cli_rejects_bad_input(tmp_path, capsys, args, msg):
    (tmp_path / "t.txt").write_text(TEXT[:300], encoding="utf-8")
    if "--text" not in args:
        args = args + ["--text", str(tmp_path / "t.txt")]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def test_cli_results_json_is_well_formed_and_holds_the_printed_loss(tmp_path, capsys):
    import json
    import math

    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    args = ["--model", "phase", "--text", str(tmp_path / "t.txt"), "--steps", "3", "--block", "8",
            "--batch", "2", "--n-layer", "1", "--n-embd", "8", "--n-head", "2", "--window", "3",
            "--n-slots", "2", "--eval-batch", "5", "--out", str(tmp_path / "c.pt"),
            "--results-json", str(tmp_path / "r" / "run.json"), "--note", "a test run"]
    out = main(args)
    printed = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines() if " " in line)
    doc = json.loads((tmp_path / "r" / "run.json").read_text(encoding="utf-8"))  # strict JSON
    assert doc == read_run_results(tmp_path / "r" / "run.json")
    assert doc["val_loss"] == out["val_loss"] and f"{doc['val_loss']:.4f}" == printed["val_loss"].split()[0]
    assert doc["params"] == out["params"] == int(printed["params"])
    _, _, va = load_corpus(tmp_path / "t.txt")
    assert doc["val_tokens"] == len(va) - 1 and doc["mode"] == "train" and doc["notes"] == ["a test run"]
    assert doc["model_config"]["window"] == 3 and doc["run"]["steps"] == 3 and doc["train_config"]["steps"] == 3
    assert len(doc["position_losses"]) == 8 and all(math.isfinite(v) for v in doc["position_losses"])
    assert doc["history"]["step"] == [0, 1, 2] and len(doc["history"]["loss"]) == 3
    assert doc["tokens_per_s"] > 0 and doc["wall_time_s"] >= doc["train_s"] > 0
    assert doc["command"].startswith("python -m phaselib.train --model phase")
    assert {"python", "torch", "platform", "threads", "device"} <= set(doc["machine"])
    # Scoring the saved checkpoint without training gives the same numbers.
    ev = main(["--eval-only", str(tmp_path / "c.pt"), "--eval-batch", "3",
               "--results-json", str(tmp_path / "e.json")])
    capsys.readouterr()
    doc2 = read_run_results(tmp_path / "e.json")
    assert doc2["mode"] == "eval-only" and doc2["text"] == str(tmp_path / "t.txt")
    assert doc2["val_loss"] == pytest.approx(doc["val_loss"], rel=1e-5) == ev["val_loss"]
    assert doc2["position_losses"] == pytest.approx(doc["position_losses"], rel=1e-5)
    assert doc2["tokens_per_s"] == doc["tokens_per_s"] and doc2["training"]["seed"] == 1337
    assert doc2["history"] == doc["history"]


class NotAModel:
    """A pickled object of a class torch's weights_only loader refuses."""


@pytest.mark.parametrize("write", [
    lambda p: torch.save({"weights": torch.zeros(2)}, p),      # plain data, not ours
    lambda p: p.write_bytes(__import__("pickle").dumps(NotAModel())),  # a pickle
    lambda p: p.write_bytes(os.urandom(4096)),                  # random bytes
    lambda p: p.write_text("hello\n"),                         # text
], ids=["other-dict", "pickle", "random-bytes", "text"])
def test_cli_eval_only_says_a_file_is_not_a_checkpoint(tmp_path, capsys, write):
    write(tmp_path / "x.pt")
    with pytest.raises(SystemExit) as e:
        main(["--eval-only", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "is not a phaselib language-model checkpoint" in err
    assert "weights_only=False" not in err and "weights_only` set to `False" not in err


def test_cli_eval_only_rejects_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--eval-only", str(tmp_path / "missing.pt")])
    assert e.value.code == 2 and "existing checkpoint file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--steps", "2"])
    assert e.value.code == 2 and "--model is required" in capsys.readouterr().err
