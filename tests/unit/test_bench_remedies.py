"""The remedies benchmark: a --quick run writes a well-formed file with every method,
length and slope. No timing is asserted: speed is measured by
`python -m phaselib.bench remedies`."""

import pytest

from phaselib.bench import BENCHMARKS
from phaselib.bench.__main__ import main as bench_main
from phaselib.bench.io import read_results
from phaselib.bench.remedies import DECODE, FORWARD, QUICK, decode_rows, fit_slopes


def test_remedies_is_registered():
    assert BENCHMARKS["remedies"] == "phaselib.bench.remedies"


def test_quick_run_writes_every_method_length_and_slope(tmp_path):
    out = tmp_path / "r.json"
    assert bench_main(["remedies", "--quick", "--out", str(out), "--threads", "1"]) == 0
    doc = read_results(out)
    assert doc["benchmark"] == "remedies"
    assert doc["provenance"]["command"].startswith("python -m phaselib.bench remedies")
    assert doc["meta"]["block"] == QUICK["block"] and doc["meta"]["threads"] == 1
    fwd = {(r["method"], r["T"]) for r in doc["rows"] if r["pass"] == "forward"}
    want = {(m, t) for m in FORWARD for t in (16, 32, 64) if not (m == "exact" and t > 32)}
    assert fwd == want
    dec = [r for r in doc["rows"] if r["pass"] == "decode"]
    assert {(r["method"], r["T"]) for r in dec} == {(m, L) for m in DECODE for L in (32, 64)}
    for r in doc["rows"]:
        assert r["time_s"] > 0 and r["peak_bytes"] >= 0 and r["cpu_s"] >= 0
    for r in dec:
        assert r["state_bytes"] > 0 and r["steps"] == QUICK["decode_steps"]
    slopes = doc["meta"]["slopes"]
    assert set(slopes) == set(FORWARD) | set(DECODE)
    assert isinstance(slopes["fused"]["forward_time"], float)
    assert isinstance(slopes["kv-cache"]["decode_time"], float)


def test_state_bytes_grow_with_the_cache_and_not_with_a_fixed_state():
    cfg = dict(QUICK, repeats=1)
    rows = decode_rows([32, 64], ("kv-cache", "mqa", "sinks", "linear", "ssm"), cfg,
                       log=lambda *_: None)
    size = {(r["method"], r["T"]): r["state_bytes"] for r in rows}
    assert size[("kv-cache", 64)] == 2 * size[("kv-cache", 32)]
    assert size[("kv-cache", 32)] == QUICK["H"] * size[("mqa", 32)]
    for m in ("sinks", "linear", "ssm"):
        assert size[(m, 64)] == size[(m, 32)]
    s = fit_slopes(rows, 0)
    assert s["kv-cache"]["state_bytes"] == pytest.approx(1.0)
    assert s["ssm"]["state_bytes"] == pytest.approx(0.0, abs=1e-9)


def test_unknown_methods_are_rejected(capsys):
    with pytest.raises(SystemExit):
        bench_main(["remedies", "--quick", "--forward", "dense"])
    assert "unknown methods" in capsys.readouterr().err
