"""Language-model runs: the results file (strict JSON, atomic) and the results table."""

import json
from pathlib import Path

import pytest
import torch

from phaselib.lm_runs import (RESULTS_FORMAT, load_corpus, read_run_results, results_table,
                              train_lm, write_run_results)
from phaselib.models import build_model
from phaselib.train import TrainConfig

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n" * 6
RESULTS = Path(__file__).resolve().parents[2] / "book" / "part4" / "results"


def doc(params, val, n_embd=16, **kw):
    return {"model": "phase", "params": params, "val_loss": val, "position_losses": [1.0],
            "model_config": {"n_embd": n_embd}, "val_tokens": 12345, "tokens_per_s": 2500.0,
            "wall_time_s": 61.4} | kw


def test_results_round_trip_as_strict_json_with_nan_as_null(tmp_path):
    path = write_run_results(tmp_path / "a" / "r.json", doc(100, float("nan"),
                                                            history={"loss": [1.5, 2.0]}))
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and '"loss": [1.5, 2.0]' in text  # number lists on one line
    back = read_run_results(path)
    assert back["format"] == RESULTS_FORMAT and back["val_loss"] is None
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["r.json"]


def test_read_run_results_names_what_is_wrong(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a phaselib language-model results file"):
        read_run_results(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"format": RESULTS_FORMAT, "model": "phase"}))
    with pytest.raises(ValueError, match="no 'params' field"):
        read_run_results(tmp_path / "y.json")


def test_results_table_rows_hold_the_hand_computed_values():
    runs = {"transformer": doc(1000, 1.5, n_embd=64),
            "phase": doc(1100, 1.4321, n_embd=72, tokens_per_s=None, wall_time_s=None)}
    lines = results_table(runs).splitlines()
    assert lines[0].split()[:3] == ["model", "width", "parameters"] and "vs transformer" in lines[0]
    assert lines[1].split() == ["transformer", "64", "1,000", "+0.0%", "1.5000", "2,500", "61s"]
    assert lines[2].split() == ["phase", "72", "1,100", "+10.0%", "1.4321", "-", "-"]
    assert "12,345 held-out targets" in lines[3]
    assert "+0.0%" in results_table(runs, reference="phase").splitlines()[2].split()
    with pytest.raises(ValueError, match="reference must be one of"):
        results_table(runs, reference="rnn")
    with pytest.raises(ValueError, match="at least one"):
        results_table({})


def test_results_table_reads_the_committed_command_line_runs():
    # The chapter's command-line runs (book/part4/results/cli): 2000 steps each, with
    # the provenance a results file must carry.
    runs = {p.stem: read_run_results(p) for p in sorted((RESULTS / "cli").glob("*.json"))}
    assert len(runs) >= 5
    table = results_table(runs)
    for name, d in runs.items():
        assert f"{d['val_loss']:.4f}" in table and f"{d['params']:,d}" in table
        assert d["run"]["steps"] == 2000 and d["command"].startswith("python -m phaselib")
        assert len(d["git_commit"]) == 40 and d["machine"]["device"] == "cpu"


def test_train_lm_counts_speed_over_the_steps_it_ran():
    torch.manual_seed(0)
    model = build_model("transformer", 5, block_size=4, n_layer=1, n_head=1, n_embd=4)
    ids = torch.randint(5, (40,))
    hist, stats = train_lm(model, ids, TrainConfig(steps=3, progress=False), block=4, batch=2)
    assert hist.step == [0, 1, 2] and stats["params"] == 5 * 4 + 12 * 16 + 8 + 4
    assert stats["tokens_per_s"] == pytest.approx(3 * 2 * 4 / stats["train_s"])
    assert 0 < stats["train_cpu_s"]
    # With evaluations along the way, their CPU time is left out as their wall time is.
    _, with_eval = train_lm(model, ids, TrainConfig(steps=2, eval_every=1, progress=False),
                            block=4, batch=2, val_ids=ids, eval_tokens=40)
    assert 0 < with_eval["train_cpu_s"] and 0 < with_eval["train_s"]
    with pytest.raises(ValueError, match="block \\+ 1 = 5"):
        train_lm(model, ids[:4], TrainConfig(steps=1, progress=False), block=4, batch=1)


def test_load_corpus_splits_a_text_file_in_order(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    tok, tr, va = load_corpus(tmp_path / "t.txt")
    cut = int(len(TEXT) * 0.9)
    assert tok.decode(tr) == TEXT[:cut] and tok.decode(va) == TEXT[cut:]
    with pytest.raises(ValueError, match="existing file"):
        load_corpus(tmp_path / "missing.txt")
