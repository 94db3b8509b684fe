"""Every Triton kernel compiles for three GPUs (sm_90: H100 and H200; sm_80: A100;
sm_75: Colab's T4) without one, and without spilling.

The other kernel tests run the kernels under the interpreter, which accepts some
programs the compiler rejects (and says nothing about registers). Here a fresh Python
process, with TRITON_INTERPRET=0, compiles each kernel to a cubin with the ptxas that
ships with triton, at the tile sizes the launchers pick on a GPU for D = 64 and for D = 1000 (above the
tile cap, so the D loop is compiled), and reads
ptxas's register and spill report. Skipped when the NVIDIA backend cannot compile here.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(r'''
    import json, os, subprocess, tempfile
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from phaselib.kernels.transport import triton as tt
    from phaselib.kernels.pyramid import triton as pt, streaming_triton as st
    from phaselib.kernels.select import triton as sel

    def sig(fn, pointers, ints, constexprs):
        s = {n: ("*fp32" if n in pointers else "i32" if n in ints else "constexpr") for n in fn.arg_names}
        assert set(s) == set(pointers) | set(ints) | set(constexprs), fn.__name__
        return s

    from phaselib.kernels._tiles import tile_sizes

    G = dict(EPS=1e-6, TOL=1e-4)
    ARCHS = [(90, "sm_90a"), (80, "sm_80"), (75, "sm_75")]   # H100/H200, A100, T4
    cases = []
    for D in (64, 1000):   # one tile, and D above the cap (walked in MAX_BLOCK_D tiles)
        n, bd = tile_sizes(4096, D)
        nf, _ = tile_sizes(4096, D, max_rows=tt.FWD_MAX_ROWS)     # as the launchers
        nb, _ = tile_sizes(4096, D, budget=tt.BWD_BUDGET)
        n1, bd1 = tile_sizes(4096, D + 1)
        ns, _ = tile_sizes(4096, D, budget=st.STEP_BUDGET, max_rows=st.STEP_MAX_ROWS)
        cases += [
            (tt._transport_fwd_kernel, "A B OUT", "N D stride_a stride_b stride_o",
             dict(G, BLOCK_N=nf, BLOCK_D=bd)),
            (tt._transport_bwd_kernel, "A B G GA GB",
             "N D stride_a stride_b stride_g stride_ga stride_gb", dict(G, BLOCK_N=nb, BLOCK_D=bd)),
            (pt._centroid_fwd_kernel, "C", "off_src off_dst n_dst Ctot D", dict(BLOCK_J=n, BLOCK_D=bd)),
            (pt._gather_fwd_kernel, "P OUT", "T L Ctot D1", dict(BLOCK_T=n1, BLOCK_D=bd1)),
            (pt._gather_bwd_kernel, "GOUT GP", "T L Ctot D1", dict(BLOCK_T=n1, BLOCK_D=bd1)),
            (pt._centroid_bwd_kernel, "GA GB G", "R off_l n_l off_up n_up Ctot D",
             dict(BLOCK_J=n, BLOCK_D=bd)),
            (st._pyramid_step_kernel, "X RING PEND FEAT", "Bsz t top L D",
             dict(G, BLOCK_B=ns, BLOCK_D=bd), {"num_warps": st.STEP_NUM_WARPS}),
            (sel._select_fwd_kernel, "W TAB Y", "T L R C", dict(BLOCK_T=n, BLOCK_C=bd)),
            (sel._select_bwd_w_kernel, "GY TAB GW", "T L R C",
             dict(BLOCK_T=n, BLOCK_C=bd)),
            (sel._select_bwd_table_kernel, "GY W GTAB", "T L R C",
             dict(BLOCK_T=n, BLOCK_C=bd)),
        ]
    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    report = {}
    cases = [c if len(c) == 5 else (*c, {"num_warps": 4}) for c in cases]
    for (cap, arch), (fn, ptrs, ints, cx, opts) in [(a, c) for a in ARCHS for c in cases]:
        src = ASTSource(fn=fn, signature=sig(fn, ptrs.split(), ints.split(), cx),
                        constexprs={(fn.arg_names.index(k),): v for k, v in cx.items()})
        ptx = triton.compile(src, target=GPUTarget("cuda", cap, 32), options=opts).asm["ptx"]
        with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
            f.write(ptx)
        out = subprocess.run([ptxas, "-v", f"-arch={arch}", f.name, "-o", os.devnull],
                             capture_output=True, text=True)
        os.unlink(f.name)
        entry = report.setdefault(f"{fn.__name__}@{arch}", {"rc": 0, "log": ""})
        entry["rc"] = entry["rc"] or out.returncode
        entry["log"] += f"[{cx} {opts}]\n" + out.stderr + out.stdout
    print(json.dumps(report))
''')


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, TRITON_INTERPRET="0")
    try:
        import triton.backends.nvidia  # noqa: F401
    except ImportError:
        pytest.skip("triton has no NVIDIA backend here")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0 and ("ptxas" in proc.stderr and "No such file" in proc.stderr):
        pytest.skip("no ptxas shipped with triton here")
    assert proc.returncode == 0, f"compiling the kernels failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


KERNELS = ["_transport_fwd_kernel", "_transport_bwd_kernel", "_centroid_fwd_kernel", "_gather_fwd_kernel",
           "_gather_bwd_kernel", "_centroid_bwd_kernel", "_pyramid_step_kernel",
           "_select_fwd_kernel", "_select_bwd_w_kernel", "_select_bwd_table_kernel"]


ARCHS = ["sm_90a", "sm_80", "sm_75"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_compiles_without_spills(report, name, arch):
    entry = report[f"{name}@{arch}"]
    assert entry["rc"] == 0, f"ptxas failed on {name} for {arch}:\n{entry['log']}"
    spills = [line for line in entry["log"].splitlines() if "spill stores" in line]
    assert len(spills) == 2, f"expected a report for each tile size of {name}:\n{entry['log']}"
    assert all(re.search(r"(^|\s)0 bytes spill stores", line) for line in spills), \
        f"{name} spills registers on {arch}:\n{entry['log']}"
