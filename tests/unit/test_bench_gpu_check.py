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


def _fake_gpu_run(monkeypatch, checks, tests=None):
    """gpu-check's main on a CPU machine: CUDA claimed, and the checks, the pytest run
    and the benchmarks replaced by canned results."""
    from phaselib.bench import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "fake GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(gpu_check, "run_shipped_checks", lambda device="cuda": checks)
    no_tests = {"returncode": None, "summary": {},
                "tail": "tests/unit not found beside phaselib"}
    monkeypatch.setattr(gpu_check, "run_kernel_tests", lambda *a: tests or no_tests)
    monkeypatch.setattr(gpu_check, "run_benchmarks", lambda *a: [
        result_row("pyramid", "forward", 1024, 1e-4, 2**20)])


PASSED = [{"name": "transport[8x4]/forward/float32", "passed": True,
           "max_abs_err": 1e-7, "worst": 0.01}]


def test_a_run_in_which_no_check_ran_fails_and_says_so(tmp_path, monkeypatch, capsys):
    # As from a pip install: no tests/ folder (returncode None) and, here, no check.
    _fake_gpu_run(monkeypatch, checks=[])
    out = tmp_path / "gpu.json"
    assert bench_main(["gpu-check", "--out", str(out)]) == 1
    assert "no kernel check ran" in capsys.readouterr().err
    verdict = read_gpu_results(out)["meta"]["verdict"]
    assert verdict["passed"] is False and "no kernel check ran" in verdict["reason"]


def test_a_failed_check_fails_the_run_and_is_recorded(tmp_path, monkeypatch, capsys):
    failed = {"name": "pyramid[2x64x8, L=6]/grad x/bfloat16", "passed": False,
              "max_abs_err": 0.3, "worst": 12.0}
    _fake_gpu_run(monkeypatch, checks=PASSED + [failed])
    out = tmp_path / "gpu.json"
    assert bench_main(["gpu-check", "--out", str(out)]) == 1
    assert "1 of 2 kernel checks failed: pyramid" in capsys.readouterr().err
    doc = read_gpu_results(out)
    assert doc["meta"]["checks"] == PASSED + [failed]
    assert doc["meta"]["verdict"]["passed"] is False


def test_shipped_checks_pass_a_run_without_the_tests_folder(tmp_path, monkeypatch,
                                                            capsys):
    _fake_gpu_run(monkeypatch, checks=PASSED)
    out = tmp_path / "gpu.json"
    assert bench_main(["gpu-check", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "all 1 kernel checks passed" in said and "did not run" in said
    doc = read_gpu_results(out)
    assert doc["meta"]["checks"][0]["name"] == PASSED[0]["name"]
    assert doc["meta"]["checks"][0]["max_abs_err"] == 1e-7


def test_failing_pytest_kernel_tests_fail_the_run(tmp_path, monkeypatch, capsys):
    _fake_gpu_run(monkeypatch, checks=PASSED,
                  tests={"returncode": 1, "summary": {"failed": 2, "passed": 40}})
    assert bench_main(["gpu-check", "--out", str(tmp_path / "gpu.json")]) == 1
    assert "pytest kernel tests failed" in capsys.readouterr().err


def test_check_records_keep_the_name_verdict_and_error_without_inf():
    from phaselib.bench.gpu_check import check_record

    rec = check_record({"name": "x", "passed": False, "max_abs_err": float("inf"),
                        "worst": float("inf"), "error": "2 NaN or inf element(s)",
                        "shape": [3, 4], "rtol": 1e-3})
    assert rec == {"name": "x", "passed": False, "max_abs_err": None, "worst": None,
                   "error": "2 NaN or inf element(s)"}


def test_shipped_checks_print_a_line_each_and_are_kept_for_json(monkeypatch, capsys):
    import json

    from phaselib.bench import gpu_check
    from phaselib.kernels import checks

    canned = [{"name": "a", "passed": True, "max_abs_err": 0.0, "worst": 0.0,
               "shape": [2], "rtol": 1e-3, "atol": 1e-3},
              {"name": "b", "passed": False, "max_abs_err": float("inf"),
               "worst": float("inf"), "error": "RuntimeError: boom"}]

    def fake_run_checks(device, scale, progress=None):
        assert (device, scale) == ("cuda", "benchmark")
        for r in canned:
            progress(r)
        return canned

    monkeypatch.setattr(checks, "run_checks", fake_run_checks)
    kept = gpu_check.run_shipped_checks()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok   a") and lines[1].startswith("FAIL b")
    assert "RuntimeError: boom" in lines[1]
    assert json.loads(json.dumps(kept, allow_nan=False))[1]["max_abs_err"] is None
