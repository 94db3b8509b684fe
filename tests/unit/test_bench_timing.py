"""The one timer and the one peak-memory measurement of the benchmarks."""

import time

import pytest
import torch

from phaselib.bench.timing import geometric_lengths, peak_bytes, time_call


def test_time_call_measures_a_known_sleep():
    t = time_call(lambda: time.sleep(0.02), "cpu", repeats=3)
    assert 0.018 < t < 0.2


def test_time_call_refuses_zero_repeats():
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: None, "cpu", repeats=0)


def test_peak_bytes_sees_a_temporary_matrix():
    def make_and_drop():
        a = torch.ones(256, 256)          # 256 KiB, freed before the function returns
        return float(a.sum())

    peak = peak_bytes(make_and_drop)
    assert peak is not None and 256 * 256 * 4 <= peak < 4 * 256 * 256 * 4


def test_peak_bytes_does_not_count_what_was_allocated_before():
    big = torch.ones(512, 512)            # 1 MiB, made before the call
    peak = peak_bytes(lambda: big.add_(1.0))
    assert peak < 512 * 512 * 4


def test_geometric_lengths_end_at_max():
    assert geometric_lengths(256, 2048) == [256, 512, 1024, 2048]
    assert geometric_lengths(4, 40, 4) == [4, 16, 40]


def test_a_benchmark_refuses_to_write_into_the_book_from_a_dirty_tree(
        monkeypatch, tmp_path, capsys):
    from phaselib import provenance as pv
    from phaselib.bench.__main__ import main as bench_main
    monkeypatch.setattr(pv, "git_commit", lambda root=None: {"commit": "a" * 40,
                                                             "dirty": True})
    monkeypatch.setattr(pv, "_ROOT", tmp_path)
    target = tmp_path / "book" / "part4" / "results" / "s.json"
    args = ["streaming", "--out", str(target), "--min-t", "32", "--max-t", "64",
            "--repeats", "1", "--steps", "4"]
    assert bench_main(args) == 2
    assert "--allow-dirty" in capsys.readouterr().err and not target.exists()
    assert bench_main(args + ["--allow-dirty"]) == 0
    import json
    doc = json.loads(target.read_text())
    assert doc["git_dirty"] is True and doc["allow_dirty"] is True
    assert doc["git_commit"] == "a" * 40
