"""The kernel checks that ship in the package (`phaselib.kernels.checks`, what
`python -m phaselib.bench gpu-check` runs) pass on the kernels, at small sizes, on the
CPU under TRITON_INTERPRET=1 (compiled on CUDA: the `device` fixture picks), and they
fail, naming the check, on a kernel that is wrong in one row, crashes, or is not
deterministic. Every Triton launch enters the device of its tensors."""

import ast
from pathlib import Path

import pytest
import torch

import phaselib.kernels
from phaselib.kernels import checks
from phaselib.kernels import tolerance as tol
from phaselib.kernels._launch import launch_device
from phaselib.kernels.pyramid import streaming_triton
from phaselib.kernels.transport import triton as transport_triton_module


def _failed(records):
    return [(r["name"], r.get("error") or r.get("worst")) for r in records
            if not r["passed"]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_shipped_checks_pass_at_small_scale(device, dtype):
    if dtype not in checks.supported_dtypes(device):
        pytest.skip(f"{dtype} is not supported on {device}")
    records = checks.run_checks(device, "small", dtypes=[dtype])
    assert not _failed(records), _failed(records)
    kernels = {r["kernel"] for r in records}
    assert kernels == {"transport", "pyramid", "pyramid step", "select"}
    kinds = {r["check"] for r in records}
    assert {"forward", "grad a", "grad b", "grad x", "features", "guard",
            "grad w", "grad table", "determinism"} <= kinds
    for r in records:
        assert r["dtype"] == str(dtype).removeprefix("torch.")
        assert 0.0 <= r["max_abs_err"] < float("inf") and r["worst"] <= 1.0
    twice = [r for r in records if r["check"] == "determinism"]
    n_select = len(checks.SCALES["small"]["select"])
    assert len(twice) == 4 + 2 * n_select        # select: grad w and grad table each
    assert all(r["bitwise"] for r in twice)             # no kernel uses atomics
    assert checks.summarize(records)[0]


def test_summarize_says_when_nothing_ran_or_something_failed():
    assert checks.summarize([]) == (False, "no kernel check ran: nothing was tested")
    ok, why = checks.summarize([{"name": "a", "passed": True},
                                {"name": "b", "passed": False}])
    assert not ok and "1 of 2" in why and "b" in why


def test_compare_bounds_every_element():
    ref = torch.linspace(-1.0, 1.0, 101, dtype=torch.float64)
    rtol, atol = tol.tolerance(torch.bfloat16, "output")
    assert tol.compare("ok", ref, ref.to(torch.bfloat16), rtol, atol)["passed"]
    bad = ref.to(torch.bfloat16)
    bad[7] += 0.05                                          # one element, ~13 u off
    rec = tol.compare("bad", ref, bad, rtol, atol)
    assert not rec["passed"] and rec["worst_index"] == [7] and rec["rel_rms"] < 1e-2
    nan = ref.clone()
    nan[3] = float("nan")
    assert "NaN" in tol.compare("nan", ref, nan, 1.0, 1.0)["error"]
    assert not tol.compare("shape", ref, ref[:5], 1.0, 1.0)["passed"]


def test_tolerances_scale_with_the_dtype_and_name_bad_arguments():
    for kind in ("output", "pyramid"):
        t32, t16, tb = (tol.tolerance(d, kind) for d in
                        (torch.float32, torch.float16, torch.bfloat16))
        assert t32 == (tol.FP32_FLOOR, tol.FP32_FLOOR)
        assert t32[0] < t16[0] < tb[0] < 0.05
    with pytest.raises(ValueError, match="kind"):
        tol.tolerance(torch.float32, "loose")
    with pytest.raises(ValueError, match="dtype"):
        tol.tolerance(torch.float64)
    with pytest.raises(ValueError, match="scale"):
        checks.run_checks("cpu", "huge")
    with pytest.raises(ValueError, match="dtypes"):
        checks.run_checks("cpu", "small", dtypes=[torch.float64])


def test_one_wrong_row_fails_the_transport_check(device, monkeypatch):
    real = transport_triton_module.transport_triton

    def wrong(a, b, block_n=None):
        out = real(a, b, block_n)
        scale = torch.ones_like(out)
        scale[30] = 1.02                                    # 2% off in one row of 65
        return out * scale

    monkeypatch.setattr(transport_triton_module, "transport_triton", wrong)
    records = checks.check_transport(device, torch.float32, 65, 24)
    failed = {r["check"] for r in records if not r["passed"]}
    assert "forward" in failed
    fwd = next(r for r in records if r["check"] == "forward")
    assert fwd["worst_index"][0] == 30 and fwd["rel_rms"] < 1e-2


def test_a_crashing_kernel_fails_its_check_with_the_reason(device, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("no kernel image is available")

    monkeypatch.setattr(transport_triton_module, "transport_triton", crash)
    (rec,) = checks.check_transport(device, torch.float32, 9, 5)
    assert not rec["passed"] and "no kernel image" in rec["error"]
    assert rec["kernel"] == "transport"


def test_one_wrong_position_fails_the_select_check(device, monkeypatch):
    from phaselib.kernels.select import triton as select_triton_module
    real = select_triton_module.select_triton

    def wrong(w, table, block_t=None):
        out = real(w, table, block_t)
        scale = torch.ones_like(out)
        scale[0, 20] = 1.02                                 # 2% off at one position
        return out * scale

    monkeypatch.setattr(select_triton_module, "select_triton", wrong)
    records = checks.check_select(device, torch.float32, 2, 37, 9)
    fwd = next(r for r in records if r["check"] == "forward")
    assert not fwd["passed"] and fwd["worst_index"][:2] == [0, 20]


def test_a_nondeterministic_step_fails_the_determinism_check(device, monkeypatch):
    real = streaming_triton.pyramid_step_triton
    calls = []

    def racy(x_t, state):
        y, state = real(x_t, state)
        calls.append(1)
        return y + 1e-3 * len(calls), state                 # differs between runs

    monkeypatch.setattr(streaming_triton, "pyramid_step_triton", racy)
    records = checks.check_determinism(device, torch.float32, 1, 9, 4)
    step = next(r for r in records if r["kernel"] == "pyramid step")
    assert not step["passed"] and not step["bitwise"]
    assert all(r["passed"] for r in records if r["kernel"] != "pyramid step")


def _launches_outside_launch_device(path: Path) -> list[int]:
    """Line numbers of `kernel[grid](...)` calls outside `with launch_device(...)`."""
    tree = ast.parse(path.read_text())
    bad = []

    def visit(node, inside):
        if isinstance(node, ast.With):
            inside = inside or any(
                isinstance(i.context_expr, ast.Call)
                and getattr(i.context_expr.func, "id", None) == "launch_device"
                for i in node.items)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript) \
                and not inside:
            bad.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    return bad


def test_every_triton_launch_enters_the_tensors_device():
    root = Path(phaselib.kernels.__file__).parent
    launches = 0
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if "@triton.jit" not in text:
            continue
        launches += text.count("](")
        assert not _launches_outside_launch_device(path), \
            f"{path.name}: a launch outside `with launch_device(...)` at lines " \
            f"{_launches_outside_launch_device(path)}"
    assert launches >= 7


def test_launch_device_enters_the_cuda_device_of_the_tensor(monkeypatch):
    import contextlib

    class OnCuda1(torch.Tensor):            # looks like a tensor on cuda:1
        is_cuda = True
        device = torch.device("cuda", 1)

    entered = []
    monkeypatch.setattr(torch.cuda, "device",
                        lambda d: entered.append(d) or contextlib.nullcontext())
    with launch_device(torch.Tensor._make_subclass(OnCuda1, torch.zeros(1))):
        pass
    assert entered == [torch.device("cuda", 1)]
    with launch_device(torch.zeros(1)):     # CPU (the interpreter): nothing entered
        pass
    assert len(entered) == 1
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        launch_device([1.0])


def test_step_kernel_does_not_specialise_on_the_position():
    kernel = streaming_triton._pyramid_step_kernel
    names = getattr(kernel, "do_not_specialize", None)     # compiled: a JITFunction
    if names is None:                                       # the interpreter's wrapper
        names = getattr(kernel, "kwargs", {}).get("do_not_specialize")
    assert names is not None, "the step kernel must mark t and top do_not_specialize"
    marked = {kernel.arg_names[i] if isinstance(i, int) else i for i in names}
    assert {"t", "top"} <= marked
