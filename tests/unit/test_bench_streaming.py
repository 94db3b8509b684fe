"""The streaming benchmark runs at tiny sizes and writes a well-formed result file.

No timing is asserted: speed is measured by `python -m phaselib.bench streaming`.
"""

import json
import math

import pytest

from phaselib.bench import BENCHMARKS
from phaselib.bench.__main__ import main as bench_main
from phaselib.bench.io import read_results
import torch

from phaselib.bench.streaming import (METHODS, context_lengths, filled_state,
                                      linear_attention_step, linear_decode_cost,
                                      pyramid_decode_cost, run,
                                      window_decode_cost)


def test_streaming_is_registered():
    assert BENCHMARKS["streaming"] == "phaselib.bench.streaming"


def test_context_lengths_are_powers_of_four_up_to_max():
    assert context_lengths(256, 65536) == [256, 1024, 4096, 16384, 65536]
    assert context_lengths(4, 40) == [4, 16, 40]
    assert context_lengths(8, 8) == [8]


def test_command_line_writes_well_formed_json(tmp_path):
    out = tmp_path / "sub" / "streaming.json"
    rc = bench_main(["streaming", "--out", str(out), "--min-t", "4", "--max-t", "32", "--dim", "6",
                     "--heads", "2", "--steps", "3", "--repeats", "1", "--window", "8"])
    assert rc == 0
    doc = read_results(out)
    assert json.loads(out.read_text())["rows"] == doc["rows"]
    assert doc["benchmark"] == "streaming" and doc["machine"]["device"] == "cpu"
    assert doc["meta"]["dim"] == 6
    rows = doc["rows"]
    assert [(r["method"], r["T"]) for r in rows] == [
        (m, T) for T in (4, 16, 32) for m in ("attention", "window", "linear", "pyramid")]
    for r in rows:
        assert r["time_s"] > 0 and math.isfinite(r["time_s"]) and r["pass"] == "decode"
        assert r["peak_bytes"] >= 0
        assert isinstance(r["state_bytes"], int) and r["state_bytes"] > 0
    att = [r["state_bytes"] for r in rows if r["method"] == "attention"]
    assert att == [2 * (T + 1) * 6 * 4 for T in (4, 16, 32)]          # keys and values, fp32
    win = [r["state_bytes"] for r in rows if r["method"] == "window"]
    assert win == [2 * min(T + 1, 8) * 6 * 4 for T in (4, 16, 32)]    # stops at the window
    lin = {r["state_bytes"] for r in rows if r["method"] == "linear"}
    assert lin == {(2 * 3 * 3 + 2 * 3) * 4}                          # S and z of 2 heads
    pyr = [r for r in rows if r["method"] == "pyramid"]
    assert [r["readout_numbers"] for r in pyr] == [r["levels"] * 7 for r in pyr]


def test_pyramid_row_reports_the_state_it_timed():
    r = pyramid_decode_cost(100, dim=4, steps=2, repeats=1)
    assert r["levels"] == 6 and r["state_bytes"] == filled_state(100, 4, 6).nbytes()
    assert filled_state(100, 4, 6).t == 100


def test_run_returns_every_method_per_length():
    rows = run([8, 16], dim=4, repeats=1, steps=2)
    assert len(rows) == 8 and {r["method"] for r in rows} == set(METHODS)


def test_linear_step_is_the_recurrent_form_of_causal_linear_attention():
    """The timed step, replayed from an empty state over a sequence, gives at every
    position what causal linear attention's quadratic form gives there."""
    g = torch.Generator().manual_seed(0)
    T, dh = 7, 4
    q, k, v = (torch.randn(T, dh, generator=g) for _ in range(3))
    S, z = torch.zeros(dh, dh), torch.zeros(dh)
    steps = torch.stack([linear_attention_step(S, z, q[t], k[t], v[t]) for t in range(T)])
    phi = lambda x: torch.nn.functional.elu(x) + 1
    w = (phi(q) @ phi(k).T).tril()                       # causal, unnormalised
    assert torch.allclose(steps, (w / w.sum(-1, keepdim=True)) @ v, atol=1e-6)
    r = linear_decode_cost(1000, dim=4, repeats=1)
    assert r["method"] == "linear" and r["state_bytes"] == (16 + 4) * 4


def test_window_row_stops_growing_at_the_window():
    small = window_decode_cost(10, dim=4, window=16, repeats=1)
    big = window_decode_cost(1000, dim=4, window=16, repeats=1)
    assert small["state_bytes"] == 2 * 11 * 4 * 4 and big["state_bytes"] == 2 * 16 * 4 * 4
    with pytest.raises(ValueError, match="window"):
        window_decode_cost(10, dim=4, window=0)


def test_bad_arguments_exit_with_usage(tmp_path):
    with pytest.raises(SystemExit):
        bench_main(["streaming", "--out", str(tmp_path / "x.json"), "--min-t", "64", "--max-t", "8"])
    with pytest.raises(SystemExit):
        bench_main(["streaming"])                                      # --out is required
