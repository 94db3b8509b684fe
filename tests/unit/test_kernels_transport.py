"""The Triton transport kernel against its reference twin, forward and gradients.

Runs under the Triton interpreter on the CPU (tests/unit/conftest.py sets
TRITON_INTERPRET=1). Tolerance in the manner of flash-linear-attention:
rms(ref - tri) / rms(ref) < RATIO, NaN/inf checked first; fp32 rounding gives ~1e-7.
"""

import pytest
import torch

from phaselib import transport
from phaselib.kernels.transport.reference import transport_reference
from phaselib.kernels.transport.triton import transport_triton

RATIO = 1e-5


def assert_close(name, ref, tri, ratio=RATIO):
    assert torch.isfinite(tri).all(), f"{name}: the kernel gives NaN or inf"
    err = (ref - tri).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt().clamp_min(1e-12)
    assert err < ratio, f"{name}: rms(ref - tri) / rms(ref) = {err:.3g} >= {ratio}"


def awkward_rows(n, d, seed):
    """Random rows plus the guards: zero a, zero b, antipodal, equal, scaled copy."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g)
    b = torch.randn(n, d, generator=g)
    if n >= 5:
        a[0] = 0.0
        b[1] = 0.0
        b[2] = -2.5 * a[2]
        b[3] = a[3]
        b[4] = 3.0 * a[4]
    return a, b


@pytest.mark.parametrize("n,d", [(1, 5), (5, 2), (63, 5), (100, 12), (257, 3)])
def test_forward_and_gradients_match_reference(n, d):
    a, b = awkward_rows(n, d, seed=n * 31 + d)
    a.requires_grad_(True)
    b.requires_grad_(True)
    ref, tri = transport_reference(a, b), transport_triton(a, b)
    assert_close("out", ref, tri)
    up = torch.randn_like(ref)
    ga_r, gb_r = torch.autograd.grad(ref, (a, b), up)
    ga_t, gb_t = torch.autograd.grad(tri, (a, b), up)
    assert_close("grad a", ga_r, ga_t)
    assert_close("grad b", gb_r, gb_t)


def test_guard_rows_match_reference_row_by_row():
    a, b = awkward_rows(5, 7, seed=3)
    a.requires_grad_(True)
    b.requires_grad_(True)
    ref, tri = transport_reference(a, b), transport_triton(a, b)
    torch.testing.assert_close(tri, ref, atol=1e-6, rtol=1e-5)
    assert (tri[:2] == 0).all(), "a zero a or b gives the zero delta"
    assert torch.allclose(tri[2, :-1].norm(), torch.tensor(torch.pi)), "antipodal: angle pi"
    up = torch.randn_like(ref)
    for g_r, g_t in zip(torch.autograd.grad(ref, (a, b), up), torch.autograd.grad(tri, (a, b), up)):
        torch.testing.assert_close(g_t, g_r, atol=1e-5, rtol=1e-4)


def test_several_programs_and_leading_dims():
    a, b = awkward_rows(60, 12, seed=7)
    a, b = a.view(3, 4, 5, 12), b.view(3, 4, 5, 12)
    tri = transport_triton(a, b, block_n=8)
    assert tri.shape == (3, 4, 5, 13)
    assert_close("out", transport_reference(a, b), tri)


def test_public_transport_dispatches_to_triton():
    a, b = awkward_rows(9, 6, seed=1)
    torch.testing.assert_close(transport(a, b, backend="triton"), transport_reference(a, b),
                               atol=1e-6, rtol=1e-5)


def test_atan2_polynomial_is_accurate_on_all_quadrants():
    # cos from -1 to 1, sin > 0: the angle of transport covers (0, pi].
    ang = torch.linspace(1e-3, torch.pi - 1e-3, 257)
    a = torch.zeros(257, 2)
    a[:, 0] = 1.0
    b = torch.stack([torch.cos(ang), torch.sin(ang)], -1)
    tri = transport_triton(a, b)
    assert (tri[:, :-1].norm(dim=-1) - ang).abs().max() < 1e-6
