"""`python -m phaselib.bench gpu-check`: the first thing to run on a machine with a GPU.

In under five minutes on one GPU it

1. checks every Triton kernel against its PyTorch twin with the compiled kernels:
   `phaselib.kernels.checks.run_checks` (forward, backward, the streaming step, run
   twice for determinism; fp32, fp16 and bf16 where the GPU has it; element-by-element
   bounds), which ship in the package, so a pip install runs them too; and, in a
   checkout, also the pytest kernel tests (tests/unit/test_kernels_*.py with
   TRITON_INTERPRET=0), keeping pytest's summary;
2. benchmarks the pyramid (forward, forward+backward) against causal
   `F.scaled_dot_product_attention` at T = 1024 .. 65536, in fp32 and bf16 (--dtypes;
   fp32 SDPA takes the memory-efficient kernel, bf16 the flash kernel, and each row
   records which it took), and the streaming pyramid step against a KV-cache decode step
   at contexts 256 .. 65536;
3. writes it all, with provenance (command, seed, git commit, machine), to
   `book/part4/results/gpu/gpu_check.json`, which the GPU-kernels chapter reads.

On a machine without CUDA it says so and exits with status 3, writing nothing. It
exits with status 1, and says why, when no kernel check ran, when any failed, or when
the pytest kernel tests failed; the file then records the failures (each check's name,
pass or fail and largest error are in meta["checks"], the verdict in meta["verdict"]).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from ..provenance import provenance
from .io import add_out_arguments, check_out, read_results, write_results
from .timing import MEMORY, TIMER, geometric_lengths

__all__ = ["DEFAULT_OUT", "KERNEL_TESTS", "parse_pytest_summary", "run_kernel_tests",
           "run_shipped_checks", "check_record", "verdict", "run_benchmarks",
           "write_gpu_results", "read_gpu_results", "main"]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "book" / "part4" / "results" / "gpu" / "gpu_check.json"
KERNEL_TESTS = ["tests/unit/test_kernels_transport.py", "tests/unit/test_kernels_pyramid.py",
                "tests/unit/test_kernels_exercises.py", "tests/unit/test_kernels_compile.py"]
NO_GPU = ("gpu-check needs a CUDA GPU, and torch.cuda.is_available() is False here "
          "(torch {}). Nothing was run and nothing was written; run it on a GPU machine.")


def parse_pytest_summary(text: str) -> dict:
    """Counts from pytest's last summary line ("3 passed, 1 skipped in 2.1s") as a dict
    {"passed": 3, "skipped": 1, ...}; {} if there is no such line."""
    lines = [ln for ln in text.strip().splitlines()
             if re.search(r"\d+ (passed|failed|error|errors|skipped)\b", ln)]
    if not lines:
        return {}
    counts = re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)",
                        lines[-1])
    return {("errors" if k == "error" else k): int(n) for n, k in counts}


def run_kernel_tests(timeout_s: int = 240) -> dict:
    """Run the kernel tests on CUDA in a fresh process; returns the summary and its tail."""
    files = [f for f in KERNEL_TESTS if (ROOT / f).exists()]
    if not files:
        return {"returncode": None, "summary": {}, "tail": "tests/unit not found beside phaselib"}
    if importlib.util.find_spec("pytest") is None:
        return {"returncode": None, "summary": {}, "tail": "pytest is not installed"}
    env = dict(os.environ, TRITON_INTERPRET="0")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *files]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
        out, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = f"{e.stdout or ''}\nTIMEOUT after {timeout_s} s", -1
    return {"command": " ".join(["TRITON_INTERPRET=0", "python", *cmd[1:]]), "returncode": rc,
            "summary": parse_pytest_summary(out), "seconds": time.perf_counter() - t0,
            "tail": out[-4000:]}


def check_record(r: dict) -> dict:
    """What the result file keeps of one check: name, pass or fail, largest error, and
    the reason of a failure."""
    keep = ("name", "passed", "max_abs_err", "worst", "worst_index", "rel_rms",
            "kernel", "dtype", "check", "bitwise", "error", "where")
    out = {k: r[k] for k in keep if k in r}
    for k in ("max_abs_err", "worst", "rel_rms"):     # JSON has no inf
        if k in out and not abs(out[k]) < float("inf"):
            out[k] = None
    return out


def run_shipped_checks(device: str = "cuda", scale: str = "benchmark") -> list[dict]:
    """`phaselib.kernels.checks.run_checks` on `device`, one printed line per check;
    the records as `check_record` keeps them."""
    from ..kernels.checks import run_checks

    def show(r):
        mark = "ok  " if r.get("passed") else "FAIL"
        err = r.get("max_abs_err")
        print(f"{mark} {r['name']}  max |err| {err:.3g}"
              + (f"  {r['error']}" if r.get("error") else ""), flush=True)

    return [check_record(r) for r in run_checks(device, scale, progress=show)]


def verdict(checks: list[dict], tests: dict) -> tuple[bool, str]:
    """(ok, why): ok only when at least one shipped check ran, none failed, and the
    pytest kernel tests, where they ran, passed."""
    from ..kernels.checks import summarize

    ok, why = summarize(checks)
    rc = tests.get("returncode")
    if rc not in (0, None) or tests.get("summary", {}).get("failed"):
        ok = False
        why += (f"; the pytest kernel tests failed (return code {rc}, "
                f"{tests.get('summary')})")
    elif rc is None and not tests.get("skipped"):
        why += f"; the pytest kernel tests did not run ({tests.get('tail')})"
    return ok, why


def run_benchmarks(max_t: int, dim: int, repeats: int,
                   dtypes=("float32", "bfloat16")) -> list[dict]:
    """The benchmark rows on CUDA: pyramid against SDPA for each of `dtypes` (in fp32
    SDPA cannot take its flash kernel; each row names the kernel it took), then the two
    decode steps (fp32)."""
    from .kernels import pyramid_cost, sdpa_cost
    from .streaming import attention_decode_cost, context_lengths, pyramid_decode_cost

    rows = []
    for dt in dtypes:
        for T in geometric_lengths(1024, max_t, 2):
            rows += pyramid_cost(T, dim, repeats=repeats, device="cuda", dtype=dt)
            rows += sdpa_cost(T, dim, repeats=repeats, device="cuda", dtype=dt)
            for r in rows[-4:]:
                print(f"{r['method']:>8} {r['pass']:>16} {dt:>8} T={T:>6} "
                      f"{r['time_s'] * 1e3:9.3f} ms {r['peak_bytes'] / 2**20:9.2f} MiB "
                      f"{r.get('sdpa_backend', '')}", flush=True)
    for T in context_lengths(256, max_t):
        rows.append(attention_decode_cost(T, dim, repeats=repeats, device="cuda"))
        rows.append(pyramid_decode_cost(T, dim, repeats=repeats, device="cuda"))
        for r in rows[-2:]:
            print(f"{r['method']:>9} decode T={T:>6} {r['time_s'] * 1e6:9.1f} us/token",
                  flush=True)
    return rows


def write_gpu_results(path, rows: list[dict], tests: dict, command: str, seed: int = 0,
                      device: str = "cuda", allow_dirty: bool = False, **meta) -> Path:
    """Write the gpu-check result file (the `bench.io` format) with provenance."""
    prov = provenance(command, [seed], device)
    return write_results(path, "gpu-check", rows, device=device, provenance=prov,
                         allow_dirty=allow_dirty, tests=tests,
                         timed=TIMER["cuda" if device.startswith("cuda") else "cpu"],
                         memory=MEMORY["cuda" if device.startswith("cuda") else "cpu"], **meta)


def read_gpu_results(path=DEFAULT_OUT) -> dict | None:
    """The recorded gpu-check result, or None when no GPU run has been recorded yet."""
    path = Path(path)
    return read_results(path) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench gpu-check",
                                description=__doc__.split("\n")[0])
    add_out_arguments(p, default=DEFAULT_OUT)
    p.add_argument("--max-t", type=int, default=65536)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"],
                   choices=["float32", "bfloat16", "float16"],
                   help="input dtypes of the pyramid and SDPA benchmark rows")
    p.add_argument("--tests-timeout", type=int, default=240,
                   help="seconds the pytest kernel tests may take")
    p.add_argument("--skip-tests", action="store_true",
                   help="no pytest kernel tests (the shipped kernel checks still run)")
    a = p.parse_args(argv)
    check_out(a.out, a.allow_dirty)
    if not torch.cuda.is_available():
        print(NO_GPU.format(torch.__version__), file=sys.stderr)
        return 3
    command = "python -m phaselib.bench gpu-check " + " ".join(argv or sys.argv[1:])
    t0 = time.perf_counter()
    checks = run_shipped_checks("cuda")
    tests = {"skipped": True} if a.skip_tests else run_kernel_tests(a.tests_timeout)
    print(f"kernel tests: {tests.get('summary')} (return code {tests.get('returncode')})",
          flush=True)
    ok, why = verdict(checks, tests)
    rows = run_benchmarks(a.max_t, a.dim, a.repeats, a.dtypes)
    path = write_gpu_results(a.out, rows, tests, command, allow_dirty=a.allow_dirty,
                             checks=checks, verdict={"passed": ok, "reason": why},
                             dim=a.dim, repeats=a.repeats, dtypes=a.dtypes,
                             seconds=time.perf_counter() - t0)
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")
    if not ok:
        print(f"gpu-check FAILED: {why}", file=sys.stderr)
        return 1
    print(f"gpu-check passed: {why}")
    return 0
