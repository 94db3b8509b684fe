"""Streaming pyramid: one token at a time equals the batch pyramid at every step.

Book: Part IV, "Streaming".
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from phaselib import PyramidState, StreamingPyramid, default_levels, pyramid, pyramid_mask, pyramid_step

LENGTHS = (1, 2, 3, 63, 64, 100, 257)


def _x(B, T, D, seed=0):
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed))


def _stream(x, L):
    sp = StreamingPyramid(x.shape[-1], L)
    ys, masks = [], []
    for t in range(x.shape[1]):
        ys.append(sp.step(x[:, t]))
        masks.append(sp.mask_t)
    return torch.stack(ys, 1), torch.stack(masks), sp


@pytest.mark.parametrize("T", LENGTHS)
def test_streaming_equals_batch_at_every_step(T):
    x = _x(2, T, 5, seed=T)
    L = default_levels(T) + 1                            # one level more than T fills
    ys, masks, sp = _stream(x, L)
    want, want_mask = pyramid(x, L)
    torch.testing.assert_close(ys, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(masks, want_mask)
    assert sp.t == T


def test_pyramid_step_functional_form_matches_class():
    x = _x(3, 37, 4, seed=1)
    state = PyramidState.zeros(3, 5, 4)
    ys = []
    for t in range(37):
        y, state = pyramid_step(x[:, t], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), pyramid(x, 5)[0], atol=1e-5, rtol=1e-5)
    assert state.t == 37


def test_step_returns_a_copy_not_the_state():
    sp = StreamingPyramid(4, 3)
    x = _x(1, 6, 4)
    y0 = [sp.step(x[:, t]) for t in range(6)]
    assert not torch.equal(y0[1], y0[5])                 # earlier outputs were not overwritten


def test_state_memory_does_not_grow_with_length():
    sp = StreamingPyramid(8, 6)
    x = _x(1, 300, 8)
    sp.step(x[:, 0])
    size = sp.state.nbytes()
    for t in range(1, 300):
        sp.step(x[:, t])
    assert sp.state.nbytes() == size == 4 * 6 * (2 * 8 + 8 + 9)


def test_reset_starts_a_new_stream():
    x, z = _x(2, 50, 4, seed=1), _x(1, 20, 4, seed=2)
    sp = StreamingPyramid(4, 5)
    for t in range(50):
        sp.step(x[:, t])
    sp.reset()
    assert sp.t == 0 and sp.state is None and not sp.mask_t.any()
    ys = torch.stack([sp.step(z[:, t]) for t in range(20)], 1)   # a new batch size is fine
    torch.testing.assert_close(ys, pyramid(z, 5)[0], atol=1e-5, rtol=1e-5)


def test_bad_x_t_raises():
    sp = StreamingPyramid(4, 3)
    with pytest.raises(ValueError, match="x_t"):
        sp.step(torch.zeros(4))                          # no batch axis
    with pytest.raises(ValueError, match="x_t"):
        sp.step(torch.zeros(1, 5))                       # wrong D
    with pytest.raises(TypeError, match="x_t"):
        sp.step(torch.zeros(1, 4, dtype=torch.long))
    sp.step(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="x_t"):
        sp.step(torch.zeros(3, 4))                       # batch fixed by the first step
    with pytest.raises(TypeError, match="x_t"):
        sp.step(torch.zeros(2, 4, dtype=torch.float64))
    state = PyramidState.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="x_t"):
        pyramid_step(torch.zeros(2, 5), state)


def test_bad_constructor_arguments_name_them():
    with pytest.raises(ValueError, match="dim"):
        StreamingPyramid(1, 3)
    with pytest.raises(ValueError, match="levels"):
        StreamingPyramid(4, 0)
    with pytest.raises(TypeError, match="dim"):
        StreamingPyramid(4.0, 3)


def test_mask_t_follows_pyramid_mask():
    sp = StreamingPyramid(3, 4)
    want = pyramid_mask(20, 4)
    for t in range(20):
        sp.step(torch.ones(1, 3) * (t + 1))
        assert torch.equal(sp.mask_t, want[t])


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 150), L=st.integers(1, 9), B=st.integers(1, 2), D=st.integers(2, 6))
def test_streaming_equals_batch_for_any_shape(T, L, B, D):
    x = _x(B, T, D, seed=T * 31 + L)
    ys, masks, _ = _stream(x, L)
    want, want_mask = pyramid(x, L)
    torch.testing.assert_close(ys, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(masks, want_mask)


def test_step_under_autocast_casts_its_input_up_to_the_state_dtype():
    x = _x(2, 20, 6, seed=4)
    proj = torch.nn.Linear(6, 6)
    state, ys = PyramidState.zeros(2, 4, 6), []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        h = proj(x)
        assert h.dtype == torch.bfloat16                  # what autocast hands the step
        for t in range(20):
            y, state = pyramid_step(h[:, t], state)
            ys.append(y)
    assert state.ring.dtype == torch.float32 and ys[0].dtype == torch.float32
    # The same as the fp32 pyramid of the bf16 values: the cast up is exact.
    torch.testing.assert_close(torch.stack(ys, 1), pyramid(h.float(), 4)[0],
                               atol=1e-6, rtol=1e-5)


def test_step_refuses_a_cast_that_would_round():
    with pytest.raises(TypeError, match="x_t must be torch.bfloat16 like the state"):
        pyramid_step(torch.zeros(2, 4),
                     PyramidState.zeros(2, 3, 4, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="x_t"):
        pyramid_step(torch.zeros(2, 4, dtype=torch.float16),
                     PyramidState.zeros(2, 3, 4, dtype=torch.bfloat16))
    y, _ = pyramid_step(torch.ones(2, 4, dtype=torch.float16),
                        PyramidState.zeros(2, 3, 4))
    assert y.dtype == torch.float32
