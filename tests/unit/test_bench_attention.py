"""The attention benchmark runs at tiny sizes and writes a well-formed result file."""

import json

import matplotlib
import pytest

matplotlib.use("Agg")

from phaselib.bench import BENCHMARKS  # noqa: E402
from phaselib.bench.__main__ import main as bench_main  # noqa: E402
from phaselib.bench.attention import METHODS, accounted_bytes, plot_memory, plot_time, run  # noqa: E402
from phaselib.bench.io import read_results  # noqa: E402


def test_attention_is_registered():
    assert BENCHMARKS["attention"] == "phaselib.bench.attention"


def test_command_line_writes_json_with_every_method_and_length(tmp_path):
    out = tmp_path / "att.json"
    assert bench_main(["attention", "--out", str(out), "--min-t", "8", "--max-t", "32",
                       "--repeats", "1", "--heads", "2", "--head-dim", "4", "--window", "5"]) == 0
    doc = read_results(out)
    assert json.loads(out.read_text())["rows"] == doc["rows"]
    assert doc["benchmark"] == "attention"
    assert {(r["method"], r["T"]) for r in doc["rows"]} == {(m, t) for m in METHODS for t in (8, 16, 32)}
    for r in doc["rows"]:
        assert r["time_s"] > 0 and r["peak_bytes"] > 0 and r["accounted_bytes"] > 0
        assert r["pass"] == "forward" and r["mem_kind"] == "measured (profiler)"


def test_naive_max_t_skips_only_naive():
    rows = run([8, 16], ("naive", "linear"), H=1, dh=4, repeats=1, naive_max_t=8)
    assert [(r["method"], r["T"]) for r in rows] == [("naive", 8), ("linear", 8), ("linear", 16)]


def test_accounting_is_quadratic_for_naive_and_linear_for_the_others():
    for m in METHODS:
        a, b = accounted_bytes(m, 1, 2, 1024, 16), accounted_bytes(m, 1, 2, 2048, 16)
        if m == "naive":
            assert 3.9 < b / a <= 4.0
        elif m == "pyramid":
            assert 2.0 < b / a < 2.4  # T log T
        else:
            assert 1.9 < b / a <= 2.01


def test_plot_helpers_draw_on_the_given_ax_and_return_slopes():
    import matplotlib.pyplot as plt

    rows = run([8, 16, 32], ("linear", "sdpa"), H=1, dh=4, repeats=1)
    fig, (a1, a2) = plt.subplots(1, 2)
    st = plot_time(a1, {"rows": rows})
    sm = plot_memory(a2, rows, fit_from=16, key="accounted_bytes")
    assert set(st) == set(sm) == {"linear", "sdpa"}
    assert sm["sdpa"] == pytest.approx(1.0, abs=0.05)
    assert a1.get_xscale() == "log" and a2.get_ylabel()
    plt.close(fig)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        run([8], ("quadratic",))


def test_time_slopes_gives_one_finite_slope_per_pass_and_method():
    from phaselib.bench.attention import time_slopes

    out = time_slopes([8, 13, 24], ("naive", "window"), passes=3, H=2, dh=4, window=5,
                      repeats=1)
    assert set(out) == {"naive", "window"}
    assert all(len(v) == 3 and all(abs(s) < 10 for s in v) for v in out.values())
    with pytest.raises(ValueError, match="passes >= 2"):
        time_slopes([8, 16], passes=1)
