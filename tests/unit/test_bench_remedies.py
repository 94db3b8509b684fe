"""The remedies benchmark: a --quick run writes a well-formed file with every method,
length and slope. No timing is asserted: speed is measured by
`python -m phaselib.bench remedies`."""

import pytest

from phaselib.bench import BENCHMARKS
from phaselib.bench.__main__ import main as bench_main
from phaselib.bench.io import read_results
from phaselib.bench.remedies import (DECODE, DENSE, FORWARD, QUICK, decode_rows,
                                     fit_slopes, forward_rows)

FAITHFUL_FORWARD = ("landmark-retrieval", "lsh", "fmm-all", "ssm-selective")
FAITHFUL_DECODE = ("fmm-all", "ssm-selective")


@pytest.fixture(scope="module")
def quick_doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("remedies") / "r.json"
    assert bench_main(["remedies", "--quick", "--out", str(out), "--threads", "1"]) == 0
    return read_results(out)


def test_remedies_is_registered():
    assert BENCHMARKS["remedies"] == "phaselib.bench.remedies"


def test_quick_run_writes_every_method_length_and_slope(quick_doc):
    doc = quick_doc
    assert doc["benchmark"] == "remedies"
    assert doc["provenance"]["command"].startswith("python -m phaselib.bench remedies")
    assert doc["meta"]["block"] == QUICK["block"] and doc["meta"]["threads"] == 1
    fwd = {(r["method"], r["T"]) for r in doc["rows"] if r["pass"] == "forward"}
    want = {(m, t) for m in FORWARD for t in (16, 32, 64)
            if not (m in DENSE and t > QUICK["max_t_exact"])}
    assert fwd == want
    dec = [r for r in doc["rows"] if r["pass"] == "decode"]
    assert ({(r["method"], r["T"]) for r in dec}
            == {(m, L) for m in DECODE for L in (32, 64)})
    for r in doc["rows"]:
        assert r["time_s"] > 0 and r["peak_bytes"] >= 0 and r["cpu_s"] >= 0
    for r in dec:
        assert r["state_bytes"] > 0 and r["steps"] == QUICK["decode_steps"]
    slopes = doc["meta"]["slopes"]
    assert set(slopes) == set(FORWARD) | set(DECODE)
    assert isinstance(slopes["fused"]["forward_time"], float)
    assert isinstance(slopes["kv-cache"]["decode_time"], float)


def test_faithful_remedies_have_rows_with_positive_costs_and_slopes(quick_doc):
    assert set(FAITHFUL_FORWARD) <= set(FORWARD)
    assert set(FAITHFUL_DECODE) <= set(DECODE)
    assert not {"landmark-retrieval", "lsh"} & set(DECODE)     # no decode step
    rows, slopes = quick_doc["rows"], quick_doc["meta"]["slopes"]
    for m in FAITHFUL_FORWARD:
        fwd = [r for r in rows if r["method"] == m and r["pass"] == "forward"]
        assert len(fwd) >= 2, m
        assert all(r["time_s"] > 0 and r["peak_bytes"] > 0 for r in fwd), m
        for key in ("forward_time", "forward_cpu", "forward_peak"):
            assert isinstance(slopes[m][key], float), (m, key, slopes[m])
    for m in FAITHFUL_DECODE:
        dec = [r for r in rows if r["method"] == m and r["pass"] == "decode"]
        assert len(dec) == 2, m
        assert all(r["time_s"] > 0 and r["state_bytes"] > 0 for r in dec), m
        for key in ("decode_time", "state_bytes"):
            assert isinstance(slopes[m][key], float), (m, key, slopes[m])


def test_gqa_forward_peak_is_not_above_fused_since_kv_is_not_copied():
    rows = forward_rows([16, 32, 64], ("fused", "gqa", "mqa"), dict(QUICK, repeats=1),
                        log=lambda *_: None)
    peak = {(r["method"], r["T"]): r["peak_bytes"] for r in rows}
    for T in (16, 32, 64):
        for m in ("gqa", "mqa"):
            assert peak[(m, T)] <= 1.1 * peak[("fused", T)], (m, T, peak)


def test_state_bytes_grow_with_the_cache_and_not_with_a_fixed_state():
    cfg = dict(QUICK, repeats=1)
    fixed = ("sinks", "linear", "ssm", "fmm-all", "ssm-selective")
    rows = decode_rows([32, 64], ("kv-cache", "mqa") + fixed, cfg, log=lambda *_: None)
    size = {(r["method"], r["T"]): r["state_bytes"] for r in rows}
    assert size[("kv-cache", 64)] == 2 * size[("kv-cache", 32)]
    assert size[("kv-cache", 32)] == QUICK["H"] * size[("mqa", 32)]
    for m in fixed:
        assert size[(m, 64)] == size[(m, 32)]
    s = fit_slopes(rows, 0)
    assert s["kv-cache"]["state_bytes"] == pytest.approx(1.0)
    for m in ("ssm", "ssm-selective", "fmm-all"):
        assert s[m]["state_bytes"] == pytest.approx(0.0, abs=1e-9)


def test_unknown_methods_are_rejected(capsys):
    with pytest.raises(SystemExit):
        bench_main(["remedies", "--quick", "--forward", "dense"])
    assert "unknown methods" in capsys.readouterr().err


def test_decode_rejects_methods_without_a_step(capsys):
    with pytest.raises(SystemExit):
        bench_main(["remedies", "--quick", "--decode", "lsh"])
    assert "unknown methods" in capsys.readouterr().err


def test_odd_lsh_bucket_counts_are_rejected(capsys):
    with pytest.raises(SystemExit):
        bench_main(["remedies", "--quick", "--n-buckets", "3"])
    assert "--n-buckets" in capsys.readouterr().err
