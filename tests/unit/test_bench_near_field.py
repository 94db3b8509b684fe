"""The near-field benchmark runs at tiny sizes and writes a well-formed result file.

No timing is asserted: speed and memory are measured by `python -m phaselib.bench near-field`.
"""

import pytest
import torch

from phaselib.bench import BENCHMARKS
from phaselib.bench.__main__ import main as bench_main
from phaselib.bench.io import read_results
from phaselib.bench.near_field import forward_cost, one_layer_model


def test_near_field_is_registered():
    assert BENCHMARKS["near-field"] == "phaselib.bench.near_field"


def test_command_line_writes_rows_with_provenance(tmp_path):
    out = tmp_path / "nf.json"
    rc = bench_main(["near-field", "--out", str(out), "--min-t", "8", "--max-t", "32",
                     "--max-t-masked", "8", "--window", "3", "--n-embd", "12",
                     "--n-head", "3", "--pyr-dim", "4", "--repeats", "1"])
    assert rc == 0
    doc = read_results(out)
    assert doc["benchmark"] == "near-field" and doc["meta"]["window"] == 3
    assert doc["provenance"]["command"].startswith("python -m phaselib.bench near-field")
    got = [(r["method"], r["T"]) for r in doc["rows"]]
    assert got == [("banded", 8), ("masked", 8), ("no-window", 8), ("banded", 32),
                   ("no-window", 32)]
    for r in doc["rows"]:
        assert r["pass"] == "forward" and r["time_s"] > 0 and r["peak_bytes"] > 0


def test_masked_and_banded_models_share_their_weights():
    a, b = one_layer_model(20, 3, n_embd=12, n_head=3), one_layer_model(20, 3, n_embd=12, n_head=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_forward_cost_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        forward_cost(8, "dense")
