"""The Triton transport kernel against its reference twin, forward and every gradient.

The same tests run on CUDA (compiled kernels) and on the CPU under TRITON_INTERPRET=1:
the `device` fixture of tests/unit/conftest.py picks. Tolerance in the manner of
flash-linear-attention (`phaselib.testing.assert_close`): rms(ref - out) / rms(ref) below
a ratio, NaN/inf checked first; fp32 rounding gives ~1e-7. And at every element
(`assert_close_elementwise`): |out - ref| <= atol rms(ref) + rtol |ref|, with the
per-dtype bounds of `phaselib.kernels.tolerance.tolerance` (the kernel rounds once, on the
store: rtol = 2u, atol = 4u for unit roundoff u, floors 2e-5), so a few wrong rows fail
even where the rms ratio forgives them. Low-precision inputs (and the upstream gradient)
are compared with the fp64 reference of the same rounded values.
"""

import pytest
import torch

from phaselib import transport
from phaselib.kernels._tiles import MAX_BLOCK_D
from phaselib.kernels.checks import transport_inputs
from phaselib.kernels.tolerance import tolerance
from phaselib.kernels.transport.reference import EPS, transport_reference
from phaselib.kernels.transport.triton import transport_triton
from phaselib.testing import assert_close, assert_close_elementwise

# (dtype, ratio for the output, ratio for the gradients)
DTYPES = [(torch.float32, 1e-5, 1e-5), (torch.float16, 3e-3, 1e-2),
          (torch.bfloat16, 2e-2, 5e-2)]


def awkward_rows(n, d, seed):
    """Random rows plus the guards (zero a, zero b, antipodal, equal, scaled copy), on
    the CPU in fp32: the shipped checks' own inputs (`kernels.checks`)."""
    return transport_inputs(n, d, seed, "cpu", torch.float32)


def check(a, b, device, dtype=torch.float32, ratio=1e-5, gratio=1e-5, block_n=None):
    a = a.to(device, dtype).requires_grad_(True)
    b = b.to(device, dtype).requires_grad_(True)
    a64 = a.detach().double().requires_grad_(True)
    b64 = b.detach().double().requires_grad_(True)
    ref, out = transport_reference(a64, b64), transport_triton(a, b, block_n=block_n)
    assert out.dtype == dtype and out.device.type == device.type
    rtol, atol = tolerance(dtype, "output")
    assert_close("out", ref, out, ratio)
    assert_close_elementwise("out", ref, out, rtol, atol)
    up = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    up = up.to(device, dtype)
    ga_r, gb_r = torch.autograd.grad(ref, (a64, b64), up.double())
    ga_t, gb_t = torch.autograd.grad(out, (a, b), up)
    assert ga_t.dtype == dtype
    for name, g_r, g_t in (("grad a", ga_r, ga_t), ("grad b", gb_r, gb_t)):
        assert_close(name, g_r, g_t, gratio)
        assert_close_elementwise(name, g_r, g_t, rtol, atol)
    return out


@pytest.mark.parametrize("n,d", [(1, 5), (5, 2), (63, 5), (100, 12), (257, 3)])
def test_forward_and_gradients_match_reference(device, n, d):
    check(*awkward_rows(n, d, seed=n * 31 + d), device)


@pytest.mark.parametrize("dtype,ratio,gratio", DTYPES[1:])
def test_low_precision_keeps_its_dtype_and_computes_in_fp32(device, dtype, ratio, gratio):
    # bf16 runs under the interpreter too (its fp32 -> bf16 conversion truncates where a
    # GPU rounds to nearest: twice the error, still inside rtol = 2u).
    check(*awkward_rows(65, 24, seed=11), device, dtype, ratio, gratio)


def test_one_wrong_row_fails_the_elementwise_bound_but_not_the_rms_ratio():
    ref = transport_reference(*awkward_rows(65, 24, seed=11)).double()
    out = ref.to(torch.bfloat16)
    out[40] *= 1.05                                       # one row 5% off
    assert_close("out", ref, out, DTYPES[2][1])      # the bf16 rms ratio forgives it
    with pytest.raises(AssertionError, match=r"index \[40, "):
        assert_close_elementwise("out", ref, out, *tolerance(torch.bfloat16, "output"))


@pytest.mark.parametrize("d", [MAX_BLOCK_D + 1, 3 * MAX_BLOCK_D - 5])
def test_large_d_is_walked_in_tiles(device, d):
    a, b = awkward_rows(9, d, seed=d)
    # The fallback axis (smallest |u|) in the last tile: the argmin runs across tiles.
    a[2] = torch.linspace(1.0, 2.0, d)
    a[2, d - 3] = 1e-3
    b[2] = -2.0 * a[2]
    out = check(a, b, device, block_n=4)
    anti = out[2, :-1].detach().cpu()
    assert anti.norm().item() == pytest.approx(torch.pi, rel=1e-5)
    assert anti.abs().argmax().item() == d - 3, "antipodal tangent along the smallest axis"


def test_guard_rows_match_reference_row_by_row(device):
    a, b = awkward_rows(5, 7, seed=3)
    a, b = a.to(device).requires_grad_(True), b.to(device).requires_grad_(True)
    ref, tri = transport_reference(a, b), transport_triton(a, b)
    torch.testing.assert_close(tri, ref, atol=1e-6, rtol=1e-5)
    assert (tri[:2] == 0).all(), "a zero a or b gives the zero delta"
    assert tri[2, :-1].norm().item() == pytest.approx(torch.pi, rel=1e-5), "antipodal: angle pi"
    up = torch.randn_like(ref)
    for g_r, g_t in zip(torch.autograd.grad(ref, (a, b), up), torch.autograd.grad(tri, (a, b), up)):
        torch.testing.assert_close(g_t, g_r, atol=1e-5, rtol=1e-4)


def test_zero_guard_is_the_same_squared_norm_test_in_kernel_and_reference(device):
    # Norms just below and just above EPS: the kernel and the reference must agree on which
    # rows count as zero, by comparing |a|^2 with EPS^2 (no sqrt rounding involved).
    scales = torch.tensor([0.5, 0.999, 1.001, 2.0, 10.0]) * EPS
    a = torch.zeros(5, 3)
    a[:, 0] = scales
    b = torch.ones(5, 3)
    ref = transport_reference(a, b)
    tri = transport_triton(a.to(device), b.to(device)).cpu()
    zero_ref = (ref == 0).all(-1)
    assert zero_ref.tolist() == [True, True, False, False, False]
    assert (tri == 0).all(-1).tolist() == zero_ref.tolist()


def test_several_programs_and_leading_dims(device):
    a, b = awkward_rows(60, 12, seed=7)
    a, b = a.view(3, 4, 5, 12).to(device), b.view(3, 4, 5, 12).to(device)
    tri = transport_triton(a, b, block_n=8)
    assert tri.shape == (3, 4, 5, 13)
    assert_close("out", transport_reference(a, b), tri)


def test_public_transport_dispatches_to_triton(device):
    a, b = (t.to(device) for t in awkward_rows(9, 6, seed=1))
    torch.testing.assert_close(transport(a, b, backend="triton"), transport_reference(a, b),
                               atol=1e-6, rtol=1e-5)


def test_atan2_polynomial_is_accurate_on_all_quadrants(device):
    # cos from -1 to 1, sin > 0: the angle of transport covers (0, pi].
    ang = torch.linspace(1e-3, torch.pi - 1e-3, 257)
    a = torch.zeros(257, 2)
    a[:, 0] = 1.0
    b = torch.stack([torch.cos(ang), torch.sin(ang)], -1)
    tri = transport_triton(a.to(device), b.to(device)).cpu()
    # The polynomial is good to ~1e-7; a GPU's approximate sqrt and division add a few ulp.
    tol = 1e-6 if device.type == "cpu" else 4e-6
    assert (tri[:, :-1].norm(dim=-1) - ang).abs().max() < tol
