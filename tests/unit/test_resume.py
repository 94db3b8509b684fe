"""Long runs survive interruption: periodic checkpoints, exact resume after SIGKILL,
Ctrl-C that saves and says how to continue, a resume with another configuration refused."""

import os
import random
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from phaselib.checkpoint import load_checkpoint, save_checkpoint
from phaselib.cli import main
from phaselib.models import build_model
from phaselib.resume import config_diff, require_same_config, rng_state, set_rng_state

ROOT = Path(__file__).resolve().parents[2]
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 8

pytestmark = pytest.mark.usefixtures("one_thread")


def flags(text, steps=40):
    # Big enough that 40 steps take a fraction of a second, so a kill lands mid-run.
    return ["--model", "transformer", "--text", str(text), "--steps", str(steps),
            "--block", "16", "--batch", "8", "--n-layer", "2", "--n-embd", "32",
            "--n-head", "2", "--warmup", "5", "--lr", "3e-3", "--eval-batch", "8",
            "--seed", "7"]


def start(args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "phaselib.train", *args, "--threads", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(proc, start_of_line: str) -> str:
    """Read the run's output up to the first line that starts so; returns what was read."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(start_of_line):
            return "".join(lines)
    proc.wait(timeout=60)
    raise AssertionError(f"no line {start_of_line!r}: {''.join(lines)} {proc.stderr.read()}")


def same_weights(a: Path, b: Path):
    sa = torch.load(a, weights_only=True)["state_dict"]
    sb = torch.load(b, weights_only=True)["state_dict"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted run: (corpus file, its final checkpoint, its printed results)."""
    d = tmp_path_factory.mktemp("whole")
    (d / "t.txt").write_text(TEXT, encoding="utf-8")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = main(flags(d / "t.txt") + ["--out", str(d / "whole.pt")])
    finally:
        torch.set_num_threads(n)
    return d / "t.txt", d / "whole.pt", out


def test_a_run_killed_mid_way_and_resumed_ends_bit_for_bit_as_the_whole_run(whole, tmp_path,
                                                                              capsys):
    text, whole_ckpt, whole_out = whole
    part = tmp_path / "part.pt"
    proc = start(flags(text) + ["--out", str(part), "--save-every", "3"])
    wait_for(proc, "saved ")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it was killed"
    ck = load_checkpoint(part)  # the last complete save survives the kill
    step = ck.resume["step"]
    assert 3 <= step < 40 and step % 3 == 0 and ck.history.step == list(range(step))
    out = main(flags(text) + ["--resume", str(part)])
    assert f"resuming {part} at step {step} of 40" in capsys.readouterr().out
    same_weights(part, whole_ckpt)
    assert out["val_loss"] == whole_out["val_loss"]
    assert out["final_train_loss"] == whole_out["final_train_loss"]
    assert load_checkpoint(part).history == load_checkpoint(whole_ckpt).history


def test_ctrl_c_saves_and_prints_the_command_that_continues(whole, tmp_path, capsys):
    text, whole_ckpt, whole_out = whole
    part = tmp_path / "part.pt"
    proc = start(flags(text) + ["--out", str(part), "--save-every", "4"])
    wait_for(proc, "saved ")
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    step = load_checkpoint(part).resume["step"]
    assert 0 < step < 40 and f"stopped at step {step} of 40; continue with:" in rest
    command = rest.split("continue with:")[1].strip().splitlines()[0]
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "phaselib.train"] and words[-2:] == ["--resume", str(part)]
    out = main(words[3:])
    capsys.readouterr()
    same_weights(part, whole_ckpt)
    assert out["val_loss"] == whole_out["val_loss"]


@pytest.mark.parametrize("change, field", [
    (["--batch", "5"], "batch: 8 -> 5"),
    (["--n-embd", "24"], "n_embd: 32 -> 24"),
    (["--seed", "8"], "seed: 7 -> 8"),
    (["--steps", "50"], "steps: 40 -> 50"),
])
def test_resume_with_another_configuration_is_refused_naming_the_fields(whole, tmp_path,
                                                                         capsys, change, field):
    text, whole_ckpt, _ = whole
    args = flags(text) + change + ["--resume", str(whole_ckpt), "--out", str(tmp_path / "x.pt")]
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "another configuration" in err and field in err
    assert not (tmp_path / "x.pt").exists()


def test_resume_with_another_corpus_is_refused(whole, tmp_path, capsys):
    _, whole_ckpt, _ = whole
    (tmp_path / "other.txt").write_text(TEXT.upper(), encoding="utf-8")
    with pytest.raises(SystemExit):
        main(flags(tmp_path / "other.txt") + ["--resume", str(whole_ckpt),
                                              "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert "text: " in err and "vocabulary: " in err


def test_resume_refuses_a_checkpoint_without_resume_state(whole, tmp_path, capsys):
    text, _, _ = whole
    model = build_model("transformer", 5, block_size=4, n_layer=1, n_head=1, n_embd=4)
    save_checkpoint(tmp_path / "plain.pt", model)
    with pytest.raises(SystemExit):
        main(flags(text) + ["--resume", str(tmp_path / "plain.pt")])
    assert "holds no resume state" in capsys.readouterr().err


def test_require_same_config_names_each_differing_field():
    with pytest.raises(ValueError, match=r"differing fields \(saved -> now\): a: 1 -> 2; "
                                         r"c: '\(absent\)' -> 3"):
        require_same_config({"a": 1, "b": 2}, {"a": 2, "b": 2, "c": 3})
    require_same_config({"a": 1}, {"a": 1})  # the same: no error
    assert config_diff({"a": 1}, {"a": 1}) == []


def test_rng_state_restores_every_generator(tmp_path):
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    saved = rng_state(g)
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=g))
    set_rng_state(saved, g)
    again = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=g))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and torch.equal(first[3], again[3])
    torch.save(saved, tmp_path / "rng.pt")  # plain data: weights_only reads it back
    back = torch.load(tmp_path / "rng.pt", weights_only=True)
    set_rng_state(back, g)
    assert torch.equal(torch.rand(3), first[0])
    with pytest.raises(ValueError, match="lacks \\['data'\\]"):
        set_rng_state({k: v for k, v in saved.items() if k != "data"}, g)


def test_ctrl_c_without_out_says_nothing_was_saved(whole, tmp_path):
    text, _, _ = whole
    proc = start(flags(text, steps=100_000))
    wait_for(proc, "training from step 0 of 100000 (Ctrl-C stops)")
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped at step" in rest and "nothing saved (give --out and --save-every" in rest
    assert "Traceback" not in err and not list(tmp_path.iterdir())
