"""The Triton pyramid and streaming-step kernels against their reference twins.

Runs under the Triton interpreter on the CPU (tests/unit/conftest.py). Tolerance:
rms(ref - tri) / rms(ref) < RATIO with NaN/inf checked; fp32 rounding gives ~1e-7.
"""

import pytest
import torch

from phaselib import pyramid
from phaselib.kernels.pyramid.reference import pyramid_reference
from phaselib.pyramid import default_levels
from phaselib.pyramid import levels_completed as levels_touched
from phaselib.kernels.pyramid.triton import pyramid_triton
from phaselib.streaming import PyramidState, StreamingPyramid, pyramid_step

RATIO = 1e-5


def assert_close(name, ref, tri, ratio=RATIO):
    assert torch.isfinite(tri).all(), f"{name}: the kernel gives NaN or inf"
    err = (ref - tri).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt().clamp_min(1e-12)
    assert err < ratio, f"{name}: rms(ref - tri) / rms(ref) = {err:.3g} >= {ratio}"


def check_against_reference(B, T, D, L, block=None, seed=0):
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed))
    if T > 4:
        x[:, 2] = 0.0                      # a zero token: degenerate level-0 pairs
        x[:, 4] = -x[:, 3]                 # an antipodal pair at level 0
    x.requires_grad_(True)
    ref, mask_r = pyramid_reference(x, L)
    tri, mask_t = pyramid_triton(x, L, block=block)
    assert tri.shape == ref.shape == (B, T, L, D + 1)
    assert torch.equal(mask_r, mask_t)
    assert_close("features", ref, tri)
    assert (tri[:, ~mask_t] == 0).all(), "masked positions must be exactly zero"
    up = torch.randn_like(ref)
    g_tri = torch.autograd.grad(tri, x, up)[0]
    if not ref.requires_grad:              # T < 2: the reference output is constant zeros
        assert (g_tri == 0).all()
    else:
        assert_close("grad x", torch.autograd.grad(ref, x, up)[0], g_tri)


@pytest.mark.parametrize("T", [1, 3, 63, 100, 257])
@pytest.mark.parametrize("D", [5, 12])
def test_pyramid_matches_reference_at_odd_sizes(T, D):
    check_against_reference(2, T, D, default_levels(T), seed=T + D)


@pytest.mark.parametrize("T,L", [(63, 5), (100, 7)])
def test_pyramid_with_small_tiles_matches_reference(T, L):
    # Tiles of 8 rows: many programs, and both branches of the gradient's segment sums
    # (runs of 2**l positions shorter and longer than a tile).
    check_against_reference(1, T, 5, L, block=8, seed=T)


def test_more_levels_than_the_sequence_has():
    check_against_reference(1, 20, 3, 8, seed=5)


def test_public_pyramid_dispatches_to_triton():
    x = torch.randn(1, 33, 6)
    f, m = pyramid(x, backend="triton")
    r, mr = pyramid(x, backend="reference")
    assert torch.equal(m, mr)
    assert_close("features", r, f)


def test_levels_touched_counts_trailing_ones():
    assert [levels_touched(t, 10) for t in range(8)] == [1, 2, 1, 3, 1, 2, 1, 4]
    assert levels_touched(2 ** 12 - 1, 5) == 5


@pytest.mark.parametrize("B,T,D,L", [(3, 37, 5, 6), (1, 20, 12, 3), (2, 9, 2, 1)])
def test_streaming_triton_step_equals_batch_pyramid(B, T, D, L):
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(B * T))
    x[:, 4] = 0.0
    ref, _ = pyramid_reference(x, L)
    sp = StreamingPyramid(D, L, backend="triton")
    ys = torch.stack([sp.step(x[:, t]) for t in range(T)], dim=1)
    assert_close("stream", ref, ys)


def test_streaming_triton_state_equals_reference_state():
    B, L, D = 2, 4, 7
    s_ref, s_tri = PyramidState.zeros(B, L, D), PyramidState.zeros(B, L, D)
    for t in range(13):
        x_t = torch.randn(B, D)
        y_r, s_ref = pyramid_step(x_t, s_ref, backend="reference")
        y_t, s_tri = pyramid_step(x_t.clone(), s_tri, backend="triton")
        torch.testing.assert_close(y_t, y_r, atol=1e-6, rtol=1e-5)
    assert s_tri.t == s_ref.t == 13
    for name in ("ring", "pending", "features"):
        torch.testing.assert_close(getattr(s_tri, name), getattr(s_ref, name), atol=1e-6, rtol=1e-5)


def test_streaming_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        StreamingPyramid(4, 2, backend="cuda")
    with pytest.raises(ValueError, match="backend"):
        pyramid_step(torch.randn(1, 4), PyramidState.zeros(1, 2, 4), backend="fast")


@pytest.mark.parametrize("dtype,ratio", [(torch.float64, 1e-5), (torch.float16, 3e-3)])
def test_other_dtypes_keep_their_dtype_and_compute_in_fp32(dtype, ratio):
    # (bfloat16 is not supported by the interpreter; it compiles on a GPU.)
    x = torch.randn(2, 37, 6, dtype=torch.float64).to(dtype).requires_grad_(True)
    ref, _ = pyramid_reference(x.detach().double(), 5)
    tri, _ = pyramid_triton(x, 5)
    assert tri.dtype == dtype
    assert_close("features", ref, tri.double(), ratio)
    (g,) = torch.autograd.grad(tri, x, torch.randn_like(tri))
    assert g.dtype == dtype and torch.isfinite(g).all()
