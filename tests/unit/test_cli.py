"""The command line `python -m phaselib.train` (phaselib.cli, phaselib.cli_runs): train,
report, save, write the results file, score a checkpoint, refuse bad input by name and a
result for the book from uncommitted code."""

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from phaselib.checkpoint import load_checkpoint
from phaselib.cli import main
from phaselib.lm_runs import load_corpus, read_run_results
from phaselib.train import evaluate_loss

ROOT = Path(__file__).resolve().parents[2]
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 6

pytestmark = pytest.mark.usefixtures("one_thread")


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
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    args = ["--model", "phase", "--text", str(tmp_path / "t.txt"), "--steps", "3", "--block", "8",
            "--batch", "2", "--n-layer", "1", "--n-embd", "8", "--n-head", "2", "--window", "3",
            "--n-slots", "2", "--eval-batch", "5", "--out", str(tmp_path / "c.pt"),
            "--results-json", str(tmp_path / "r" / "run.json"), "--note", "a test run",
            "--weight-decay", "0.1", "--beta2", "0.99"]
    out = main(args)
    printed = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines() if " " in line)
    doc = json.loads((tmp_path / "r" / "run.json").read_text(encoding="utf-8"))  # strict JSON
    assert doc == read_run_results(tmp_path / "r" / "run.json")
    assert doc["val_loss"] == out["val_loss"] and f"{doc['val_loss']:.4f}" == printed["val_loss"].split()[0]
    assert doc["params"] == out["params"] == int(printed["params"])
    _, _, va = load_corpus(tmp_path / "t.txt")
    assert doc["val_tokens"] == len(va) - 1 and doc["mode"] == "train" and doc["notes"] == ["a test run"]
    assert doc["model_config"]["window"] == 3 and doc["run"]["steps"] == 3 and doc["train_config"]["steps"] == 3
    assert doc["train_config"]["weight_decay"] == 0.1 and doc["train_config"]["beta2"] == 0.99
    assert len(doc["position_losses"]) == 8 and all(math.isfinite(v) for v in doc["position_losses"])
    assert doc["history"]["step"] == [0, 1, 2] and len(doc["history"]["loss"]) == 3
    assert doc["tokens_per_s"] > 0 and doc["wall_time_s"] >= doc["train_s"] > 0
    assert doc["train_cpu_s"] > 0
    assert doc["command"].startswith("python -m phaselib.train --model phase")
    assert {"python", "torch", "platform", "threads", "device"} <= set(doc["machine"])
    assert len(doc["git_commit"]) == 40 and isinstance(doc["git_dirty"], bool)
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
    lambda p: p.write_bytes(pickle.dumps(NotAModel())),  # a pickle
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


def test_cli_save_every_needs_somewhere_to_save(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["--model", "transformer", "--text", str(tmp_path / "t.txt"), "--save-every", "5"])
    assert e.value.code == 2 and "--save-every needs --out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", "transformer", "--text", str(tmp_path / "t.txt"), "--save-every", "-1"])
    assert "--save-every must be >= 0" in capsys.readouterr().err


# A results file in the book must come from a commit (phaselib.provenance.require_clean):
# the repository root is moved to tmp_path and git is made to report a dirty tree.
TINY = ["--model", "transformer", "--steps", "2", "--block", "8", "--batch", "2", "--n-layer", "1",
        "--n-embd", "8", "--n-head", "1", "--eval-batch", "4"]


@pytest.fixture
def dirty_repo(tmp_path, monkeypatch):
    import phaselib.provenance as pv
    monkeypatch.setattr(pv, "_ROOT", tmp_path)
    monkeypatch.setattr(pv, "git_commit", lambda root=None: {"commit": "f" * 40, "dirty": True})
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("mode", ["train", "eval-only"])
def test_cli_refuses_a_book_result_from_a_dirty_tree_before_it_runs(dirty_repo, capsys, mode):
    target = dirty_repo / "book" / "part4" / "results" / "run.json"
    args = (TINY + ["--text", str(dirty_repo / "t.txt"), "--out", str(dirty_repo / "c.pt")]
            if mode == "train" else ["--eval-only", str(dirty_repo / "missing.pt")])
    with pytest.raises(SystemExit) as e:
        main(args + ["--results-json", str(target)])
    out, err = capsys.readouterr()
    assert e.value.code == 2 and "uncommitted changes" in err and "--allow-dirty" in err
    assert "error:" in err.splitlines()[-1] and "Traceback" not in err
    # It failed fast: nothing was trained, loaded or written.
    assert "training from step" not in out and "checkpoint" not in err
    assert not target.exists() and not (dirty_repo / "c.pt").exists()


def test_cli_allow_dirty_writes_a_book_result_marked_as_such(dirty_repo, capsys):
    target = dirty_repo / "book" / "part4" / "results" / "run.json"
    main(TINY + ["--text", str(dirty_repo / "t.txt"), "--results-json", str(target), "--allow-dirty"])
    capsys.readouterr()
    doc = read_run_results(target)
    assert doc["allow_dirty"] is True and doc["git_dirty"] is True and doc["git_commit"] == "f" * 40
    assert doc["command"].endswith("--allow-dirty")


def test_cli_writes_a_result_outside_the_book_from_a_dirty_tree(dirty_repo, capsys):
    target = dirty_repo / "elsewhere" / "run.json"
    main(TINY + ["--text", str(dirty_repo / "t.txt"), "--results-json", str(target)])
    capsys.readouterr()
    doc = read_run_results(target)
    assert doc["git_dirty"] is True and "allow_dirty" not in doc


def test_cli_allow_dirty_on_a_clean_tree_marks_nothing(dirty_repo, capsys, monkeypatch):
    import phaselib.provenance as pv
    monkeypatch.setattr(pv, "git_commit", lambda root=None: {"commit": "e" * 40, "dirty": False})
    target = dirty_repo / "book" / "part4" / "results" / "run.json"
    main(TINY + ["--text", str(dirty_repo / "t.txt"), "--results-json", str(target), "--allow-dirty"])
    capsys.readouterr()
    doc = read_run_results(target)
    assert doc["git_dirty"] is False and "allow_dirty" not in doc


def test_the_training_loop_and_checkpoints_do_not_import_the_command_line():
    # `python -m phaselib.train` reaches the command line through phaselib/train/__main__.py;
    # importing the loop must not, or train -> cli -> checkpoint -> train is a circle again.
    code = ("import sys, phaselib.checkpoint, phaselib.train, phaselib.lm_runs; "
            "print(sorted(m for m in sys.modules if m.startswith(('phaselib.cli', 'phaselib.train.'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
