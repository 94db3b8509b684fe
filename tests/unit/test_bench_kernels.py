"""The pyramid and pyramid-bandwidth benchmarks run at tiny sizes and write well-formed JSON.

No timing is asserted: speed is measured by `python -m phaselib.bench pyramid`.
"""

import math

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from phaselib.bench import BENCHMARKS  # noqa: E402
from phaselib.bench.__main__ import main as bench_main  # noqa: E402
from phaselib.bench.io import read_results  # noqa: E402
from phaselib.bench.kernels import lengths, plot_bandwidth, plot_cost  # noqa: E402


def test_benchmarks_are_registered():
    assert BENCHMARKS["pyramid"] == "phaselib.bench.kernels"
    assert BENCHMARKS["pyramid-bandwidth"] == "phaselib.bench.pyramid_bandwidth"


def test_lengths_double_up_to_max():
    assert lengths(256, 2048) == [256, 512, 1024, 2048]
    assert lengths(4, 12) == [4, 8, 12]


def test_pyramid_benchmark_writes_well_formed_json(tmp_path):
    out = tmp_path / "sub" / "pyramid.json"
    rc = bench_main(["pyramid", "--out", str(out), "--device", "cpu", "--min-t", "8", "--max-t", "24",
                     "--dim", "6", "--heads", "2", "--repeats", "1"])
    assert rc == 0
    doc = read_results(out)
    assert doc["benchmark"] == "pyramid" and doc["machine"]["device"] == "cpu"
    assert doc["meta"]["dim"] == 6 and "memory" in doc["meta"]
    rows = doc["rows"]
    assert [(r["method"], r["pass"], r["T"]) for r in rows] == [
        (m, p, T) for T in (8, 16, 24) for m in ("pyramid", "sdpa") for p in ("forward", "forward+backward")]
    for r in rows:
        assert r["time_s"] > 0 and math.isfinite(r["time_s"]) and r["peak_bytes"] > 0
    fwd = {r["T"]: r["peak_bytes"] for r in rows if r["method"] == "pyramid" and r["pass"] == "forward"}
    assert fwd[8] >= 8 * 3 * 7 * 4, "the features [T, L, D+1] alone are this many bytes"
    fig, axes = plt.subplots(1, 2)
    plot_cost(axes[0], doc, "time_s")
    plot_cost(axes[1], doc, "peak_bytes", pass_="forward")
    plt.close(fig)


def test_bandwidth_benchmark_writes_well_formed_json(tmp_path):
    out = tmp_path / "bw.json"
    rc = bench_main(["pyramid-bandwidth", "--out", str(out), "--device", "cpu", "--min-t", "16",
                     "--max-t", "32", "--dim", "5", "--repeats", "1"])
    assert rc == 0
    doc = read_results(out)
    assert doc["benchmark"] == "pyramid-bandwidth"
    assert {r["method"] for r in doc["rows"]} == {"pyramid"}
    assert [(r["pass"], r["T"]) for r in doc["rows"]] == [
        (p, T) for T in (16, 32) for p in ("forward", "backward")]
    for r in doc["rows"]:
        assert r["bytes"] > 0 and 0 < r["fraction_of_copy"] and math.isfinite(r["fraction_of_copy"])
    fig, ax = plt.subplots()
    plot_bandwidth(ax, doc)
    plt.close(fig)


def test_bad_lengths_are_rejected(tmp_path):
    with pytest.raises(SystemExit):
        bench_main(["pyramid", "--out", str(tmp_path / "x.json"), "--min-t", "64", "--max-t", "8"])
