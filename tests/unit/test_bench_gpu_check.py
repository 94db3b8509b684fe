"""`python -m phaselib.bench gpu-check`: refuses clearly without a GPU; its result file
(written here from a small fake result) has the rows, the test summary and provenance."""

import pytest
import torch

from phaselib.bench import BENCHMARKS
from phaselib.bench.__main__ import main as bench_main
from phaselib.bench.gpu_check import (KERNEL_TESTS, ROOT, parse_pytest_summary, read_gpu_results,
                                      write_gpu_results)
from phaselib.bench.io import result_row


def test_gpu_check_is_registered_and_its_test_files_exist():
    assert BENCHMARKS["gpu-check"] == "phaselib.bench.gpu_check"
    assert all((ROOT / f).exists() for f in KERNEL_TESTS)


def test_without_cuda_it_exits_nonzero_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu.json"
    assert bench_main(["gpu-check", "--out", str(out)]) == 3
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not out.exists()


def test_pytest_summary_is_parsed():
    text = "....F\n=== short test summary info ===\nFAILED x\n1 failed, 40 passed, 2 skipped in 9.1s\n"
    assert parse_pytest_summary(text) == {"failed": 1, "passed": 40, "skipped": 2}
    assert parse_pytest_summary("no summary here") == {}


def test_result_file_round_trips_with_provenance(tmp_path):
    rows = [result_row("pyramid", "forward", 1024, 1.5e-4, 2**20, levels=10),
            result_row("sdpa", "forward", 1024, 9e-5, 2**19)]
    tests = {"returncode": 0, "summary": {"passed": 3}}
    path = write_gpu_results(tmp_path / "gpu" / "gpu_check.json", rows, tests,
                             "python -m phaselib.bench gpu-check", device="cpu", dim=64)
    doc = read_gpu_results(path)
    assert doc["benchmark"] == "gpu-check"
    assert doc["rows"] == rows
    assert doc["meta"]["tests"] == tests and doc["meta"]["dim"] == 64
    prov = doc["provenance"]
    assert prov["command"] == "python -m phaselib.bench gpu-check" and prov["seeds"] == [0]
    assert prov["machine"]["device"] == "cpu" and "created" in prov


def test_no_recorded_run_reads_as_none(tmp_path):
    assert read_gpu_results(tmp_path / "absent.json") is None


def test_result_row_refuses_a_nonpositive_time():
    with pytest.raises(ValueError, match="time_s"):
        result_row("pyramid", "forward", 8, 0.0, 10)
