"""The Triton pyramid and streaming-step kernels against their reference twins.

The same tests run on CUDA (compiled kernels) and on the CPU under TRITON_INTERPRET=1
(the `device` fixture, tests/unit/conftest.py). Tolerance: `phaselib.testing.assert_close`,
rms(ref - out) / rms(ref) < ratio with NaN/inf checked; fp32 rounding gives ~1e-7. And
at every element (`assert_close_elementwise`): |out - ref| <= atol rms(ref) + rtol |ref|
with `phaselib.kernels.tolerance.tolerance(dtype, "pyramid")`: the centroids are stored in
the dtype, rounded at every level, so rtol = 8u, atol = 16u (unit roundoff u; floors
2e-5), still far below what one wrong row costs.
"""

import pytest
import torch

from phaselib import pyramid
from phaselib.kernels._tiles import MAX_BLOCK_D
from phaselib.kernels.tolerance import tolerance
from phaselib.kernels.pyramid.reference import pyramid_reference
from phaselib.kernels.pyramid.triton import pyramid_triton
from phaselib.pyramid import default_levels
from phaselib.streaming import PyramidState, StreamingPyramid, pyramid_step
from phaselib.testing import assert_close, assert_close_elementwise


def check_against_reference(device, B, T, D, L, block=None, seed=0, dtype=torch.float32,
                            ratio=1e-5, gratio=1e-5):
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed))
    if T > 4:
        x[:, 2] = 0.0                      # a zero token: degenerate level-0 pairs
        x[:, 4] = -x[:, 3]                 # an antipodal pair at level 0
    x = x.to(device, dtype).requires_grad_(True)
    x64 = x.detach().double().requires_grad_(True)
    ref, mask_r = pyramid_reference(x64, L)
    tri, mask_t = pyramid_triton(x, L, block=block)
    assert tri.shape == ref.shape == (B, T, L, D + 1) and tri.dtype == dtype
    assert torch.equal(mask_r, mask_t)
    rtol, atol = tolerance(dtype, "pyramid")
    assert_close("features", ref, tri, ratio)
    assert_close_elementwise("features", ref, tri, rtol, atol)
    assert (tri[:, ~mask_t] == 0).all(), "masked positions must be exactly zero"
    up = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed + 1))
    up = up.to(device, dtype)
    g_tri = torch.autograd.grad(tri, x, up)[0]
    assert g_tri.dtype == dtype
    if not ref.requires_grad:              # T < 2: the reference output is constant zeros
        assert (g_tri == 0).all()
    else:
        g_ref = torch.autograd.grad(ref, x64, up.double())[0]
        assert_close("grad x", g_ref, g_tri, gratio)
        assert_close_elementwise("grad x", g_ref, g_tri, rtol, atol)


@pytest.mark.parametrize("T", [1, 3, 63, 100, 257])
@pytest.mark.parametrize("D", [5, 12])
def test_pyramid_matches_reference_at_odd_sizes(device, T, D):
    check_against_reference(device, 2, T, D, default_levels(T), seed=T + D)


@pytest.mark.parametrize("T,L", [(63, 5), (100, 7)])
def test_pyramid_with_small_tiles_matches_reference(device, T, L):
    # Tiles of 8 rows: many programs, and both branches of the gradient's segment sums
    # (runs of 2**l positions shorter and longer than a tile).
    check_against_reference(device, 1, T, 5, L, block=8, seed=T)


def test_large_d_is_walked_in_tiles(device):
    check_against_reference(device, 2, 37, 2 * MAX_BLOCK_D + 3, 5, seed=9)


def test_more_levels_than_the_sequence_has(device):
    check_against_reference(device, 1, 20, 3, 8, seed=5)


@pytest.mark.parametrize("dtype,ratio,gratio", [(torch.float16, 3e-3, 1e-2),
                                                (torch.bfloat16, 2e-2, 5e-2)])
def test_low_precision_keeps_its_dtype_and_computes_in_fp32(device, dtype, ratio, gratio):
    # bf16 runs under the interpreter too (the centroid kernel averages in fp32; the
    # interpreter's fp32 -> bf16 conversion truncates, a GPU's rounds to nearest).
    check_against_reference(device, 2, 37, 6, 5, seed=3, dtype=dtype, ratio=ratio, gratio=gratio)


def test_public_pyramid_dispatches_to_triton(device):
    x = torch.randn(1, 33, 6).to(device)
    f, m = pyramid(x, backend="triton")
    r, mr = pyramid(x, backend="reference")
    assert torch.equal(m, mr)
    assert_close("features", r, f)


@pytest.mark.parametrize("B,T,D,L", [(3, 37, 5, 6), (1, 20, 12, 3), (2, 9, 2, 1),
                                     (2, 12, MAX_BLOCK_D + 7, 3)])
def test_streaming_triton_step_equals_batch_pyramid(device, B, T, D, L):
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(B * T)).to(device)
    x[:, 4] = 0.0
    ref, _ = pyramid_reference(x, L)
    sp = StreamingPyramid(D, L, backend="triton")
    ys = torch.stack([sp.step(x[:, t]) for t in range(T)], dim=1)
    assert_close("stream", ref, ys)
    assert_close_elementwise("stream", ref, ys, *tolerance(torch.float32, "pyramid"))


def test_streaming_triton_state_equals_reference_state(device):
    B, L, D = 2, 4, 7
    s_ref = PyramidState.zeros(B, L, D, device=device)
    s_tri = PyramidState.zeros(B, L, D, device=device)
    g = torch.Generator().manual_seed(0)
    for _ in range(13):
        x_t = torch.randn(B, D, generator=g).to(device)
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
