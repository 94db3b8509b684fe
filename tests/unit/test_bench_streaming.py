"""The streaming benchmark runs at tiny sizes and writes a well-formed result file.

No timing is asserted: speed is measured by `python -m phaselib.bench streaming`.
"""

import json
import math

import pytest

from phaselib.bench import BENCHMARKS
from phaselib.bench.__main__ import main as bench_main
from phaselib.bench.io import read_results
from phaselib.bench.streaming import context_lengths, filled_state, pyramid_decode_cost, run


def test_streaming_is_registered():
    assert BENCHMARKS["streaming"] == "phaselib.bench.streaming"


def test_context_lengths_are_powers_of_four_up_to_max():
    assert context_lengths(256, 65536) == [256, 1024, 4096, 16384, 65536]
    assert context_lengths(4, 40) == [4, 16, 40]
    assert context_lengths(8, 8) == [8]


def test_command_line_writes_well_formed_json(tmp_path):
    out = tmp_path / "sub" / "streaming.json"
    rc = bench_main(["streaming", "--out", str(out), "--min-t", "4", "--max-t", "32", "--dim", "6",
                     "--heads", "2", "--steps", "3", "--repeats", "1"])
    assert rc == 0
    doc = read_results(out)
    assert json.loads(out.read_text())["rows"] == doc["rows"]
    assert doc["benchmark"] == "streaming" and doc["machine"]["device"] == "cpu"
    assert doc["meta"]["dim"] == 6
    rows = doc["rows"]
    assert [(r["method"], r["T"]) for r in rows] == [
        (m, T) for T in (4, 16, 32) for m in ("attention", "pyramid")]
    for r in rows:
        assert r["time_s"] > 0 and math.isfinite(r["time_s"]) and r["pass"] == "decode"
        assert r["peak_bytes"] >= 0
        assert isinstance(r["state_bytes"], int) and r["state_bytes"] > 0
    att = [r["state_bytes"] for r in rows if r["method"] == "attention"]
    assert att == [2 * (T + 1) * 6 * 4 for T in (4, 16, 32)]          # keys and values, fp32


def test_pyramid_row_reports_the_state_it_timed():
    r = pyramid_decode_cost(100, dim=4, steps=2, repeats=1)
    assert r["levels"] == 6 and r["state_bytes"] == filled_state(100, 4, 6).nbytes()
    assert filled_state(100, 4, 6).t == 100


def test_run_returns_both_methods_per_length():
    rows = run([8, 16], dim=4, repeats=1, steps=2)
    assert len(rows) == 4 and {r["method"] for r in rows} == {"attention", "pyramid"}


def test_bad_arguments_exit_with_usage(tmp_path):
    with pytest.raises(SystemExit):
        bench_main(["streaming", "--out", str(tmp_path / "x.json"), "--min-t", "64", "--max-t", "8"])
    with pytest.raises(SystemExit):
        bench_main(["streaming"])                                      # --out is required
