"""`python -m phaselib.bench phase-features`: rows for both ways, in the bench format."""

import json

import pytest

from phaselib.bench import BENCHMARKS
from phaselib.bench.phase_features import METHODS, features_cost, main


def test_rows_for_both_methods_with_time_and_memory():
    for method in METHODS:
        rows = features_cost(64, method, n_embd=16, pyr_dim=4, repeats=1)
        assert [r["pass"] for r in rows] == ["forward", "forward+backward"]
        assert all(r["method"] == method and r["T"] == 64 and r["levels"] == 6
                   for r in rows)
        assert all(r["time_s"] > 0 and r["peak_bytes"] > 0 for r in rows)
    with pytest.raises(ValueError, match="method must be"):
        features_cost(64, "fused")


def test_the_command_writes_a_result_file(tmp_path):
    assert BENCHMARKS["phase-features"] == "phaselib.bench.phase_features"
    out = tmp_path / "pf.json"
    assert main(["--out", str(out), "--min-t", "32", "--max-t", "64", "--repeats", "1",
                 "--n-embd", "16", "--pyr-dim", "4"]) == 0
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "phase-features"
    assert doc["provenance"]["seeds"] == [0]
    assert doc["provenance"]["command"].startswith("python -m phaselib.bench phase-features")
    assert {(r["method"], r["T"]) for r in doc["rows"]} == {
        (m, T) for m in METHODS for T in (32, 64)}
