"""The causal dyadic pyramid: equal to a slow loop, causal at every level, masked, checked.

Book: Part IV, "The causal dyadic pyramid". The slow loop below is the definition read
literally: at t, level l has n = (t+1) // 2**l completed blocks; when n >= 2 the feature
is the transport between the means of blocks n-2 and n-1.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from phaselib import default_levels, leaky_pyramid, pyramid, pyramid_mask, transport
from phaselib.exercises.pyramid import find_leaks

LENGTHS = (1, 2, 3, 63, 64, 100, 257)


def slow_pyramid(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The definition as a Python loop over batch, time and level (obviously right, slow)."""
    B, T, D = x.shape
    out = torch.zeros(B, T, levels, D + 1, dtype=x.dtype)
    mask = torch.zeros(T, levels, dtype=torch.bool)
    for t in range(T):
        for level in range(levels):
            s = 2 ** level
            n = (t + 1) // s                      # blocks [0, s), [s, 2s), ... ending at or before t
            if n < 2:
                continue
            mask[t, level] = True
            for b in range(B):
                prev = x[b, (n - 2) * s:(n - 1) * s].mean(0)
                last = x[b, (n - 1) * s:n * s].mean(0)
                assert (n * s) - 1 <= t           # the loop itself never looks ahead
                out[b, t, level] = transport(prev, last)
    return out, mask


def _x(B, T, D, seed=0, dtype=torch.float32):
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("T", LENGTHS)
def test_pyramid_equals_slow_loop(T):
    x = _x(2, T, 5, seed=T)
    L = default_levels(T)
    feats, mask = pyramid(x, L)
    want, want_mask = slow_pyramid(x, L)
    assert feats.shape == (2, T, L, 6) and mask.shape == (T, L)
    assert torch.equal(mask, want_mask)
    torch.testing.assert_close(feats, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("T", (3, 64, 100))
def test_pyramid_equals_slow_loop_in_float64_with_extra_levels(T):
    # More levels than T can fill: the extra levels are masked zeros, not errors.
    x = _x(1, T, 3, seed=1, dtype=torch.float64)
    L = default_levels(T) + 2
    feats, mask = pyramid(x, L)
    want, want_mask = slow_pyramid(x, L)
    assert torch.equal(mask, want_mask)
    torch.testing.assert_close(feats, want, atol=1e-10, rtol=1e-9)
    assert not mask[:, -1].any() and feats[:, :, -1].abs().max() == 0


@settings(max_examples=25, deadline=None)
@given(T=st.integers(2, 130), level=st.integers(0, 6), data=st.data())
def test_pyramid_is_causal_at_every_level(T, level, data):
    """Change x[:, s]: no feature at t < s moves, at any level."""
    s = data.draw(st.integers(0, T - 1), label="s")
    L = level + 1
    x = _x(2, T, 4, seed=T + 7 * level)
    y = x.clone()
    y[:, s] += torch.randn(2, 4, generator=torch.Generator().manual_seed(s)) * 3.0
    fx, _ = pyramid(x, L)
    fy, _ = pyramid(y, L)
    assert torch.equal(fx[:, :s], fy[:, :s]), f"features before s={s} moved"


@pytest.mark.parametrize("level", range(6))
def test_pyramid_feature_moves_when_its_block_completes(level):
    """The other side of causality: x[:, s] does reach the level once s's block is done."""
    T, s = 200, 70
    x = _x(1, T, 4, seed=3)
    y = x.clone()
    y[:, s] += 2.0
    fx, _ = pyramid(x, level + 1)
    fy, _ = pyramid(y, level + 1)
    size = 2 ** level
    done = (s // size + 1) * size - 1                  # where the block holding s completes
    if done + size < T:                                 # ...and a second block exists by then
        moved = (fx[0, :, level] - fy[0, :, level]).abs().amax(-1) > 0
        assert not moved[:done].any() and moved[done]


@pytest.mark.parametrize("level", range(1, 6))
def test_leaky_pyramid_fails_the_perturbation_test(level):
    """The naive pyramid reads the unfinished block, so the past moves when the future does."""
    T = 128
    size = 2 ** level
    s = 3 * size + size - 1                              # last position of block 3
    x = _x(1, T, 4, seed=level)
    y = x.clone()
    y[:, s] += 2.0
    fx, _ = leaky_pyramid(x, level + 1)
    fy, _ = leaky_pyramid(y, level + 1)
    moved = (fx[0, :s, level] - fy[0, :s, level]).abs().amax(-1) > 1e-6
    assert moved.any(), "the leaky pyramid should leak the future at levels >= 1"
    assert moved.nonzero().min().item() == 3 * size      # from the start of the block on


def test_leaky_pyramid_level0_is_causal():
    x = _x(1, 40, 4)
    y = x.clone()
    y[:, 20] += 1.0
    assert torch.equal(leaky_pyramid(x, 1)[0][:, :20], leaky_pyramid(y, 1)[0][:, :20])


@pytest.mark.parametrize("T,L", [(1, 1), (2, 1), (5, 3), (64, 6), (100, 7)])
def test_mask_marks_two_completed_blocks_and_features_are_zero_elsewhere(T, L):
    mask = pyramid_mask(T, L)
    want = torch.tensor([[(t + 1) // 2 ** l >= 2 for l in range(L)] for t in range(T)], dtype=torch.bool)
    assert torch.equal(mask, want)
    feats, m = pyramid(_x(2, T, 3), L)
    assert torch.equal(m, mask)
    assert (feats[:, ~mask] == 0).all()
    if mask.any():                                       # valid entries carry a signal
        assert (feats[:, mask].abs().amax(-1) > 0).all()


@pytest.mark.parametrize("T,L", [(1, 1), (2, 1), (3, 1), (4, 2), (7, 2), (8, 3), (1000, 9), (1024, 10)])
def test_default_levels_covers_every_level_with_two_blocks(T, L):
    assert default_levels(T) == L
    assert pyramid(_x(1, T, 2))[0].shape[2] == L
    if T >= 2:
        assert pyramid_mask(T, L)[-1].all()              # every default level is used somewhere


def test_bad_inputs_name_the_argument():
    x = _x(1, 8, 4)
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        pyramid(x[0])                                    # rank 2
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        pyramid(x[None])                                 # rank 4
    with pytest.raises(TypeError, match="x must be a floating-point"):
        pyramid(torch.ones(1, 8, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        pyramid(x.numpy())
    with pytest.raises(ValueError, match="levels"):
        pyramid(x, 0)
    with pytest.raises(ValueError, match="levels"):
        pyramid(x, -2)
    with pytest.raises(TypeError, match="levels"):
        pyramid(x, 2.0)
    with pytest.raises(ValueError, match="x must have D >= 2"):
        pyramid(x[..., :1])
    with pytest.raises(ValueError, match="x must have B >= 1 and T >= 1"):
        pyramid(x[:, :0])
    with pytest.raises(ValueError, match="backend"):
        pyramid(x, backend="cuda")
    with pytest.raises(ValueError, match="levels"):
        leaky_pyramid(x, 0)


def test_pyramid_gradients_are_finite_and_causal():
    x = _x(1, 33, 4).requires_grad_()
    feats, _ = pyramid(x)
    feats[:, 10].sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[:, 11:].abs().max() == 0


def test_find_leaks_flags_the_leaky_pyramid_and_passes_the_causal_one():
    """The perturbation test as the exercise checkers run it, over every s at once."""
    x = _x(1, 24, 3, seed=5)
    assert find_leaks(lambda z: pyramid(z, 4)[0], x) == []
    leaks = find_leaks(lambda z: leaky_pyramid(z, 4)[0], x)
    assert leaks and all(t < s for s, t in leaks)
    assert (5, 4) in leaks                       # x[5] is in level 1's block {4, 5}, read at t = 4


def test_levels_completed_counts_one_plus_trailing_ones_capped():
    from phaselib.pyramid import levels_completed

    assert [levels_completed(t, 10) for t in range(8)] == [1, 2, 1, 3, 1, 2, 1, 4]
    assert levels_completed(2 ** 12 - 1, 5) == 5
    assert levels_completed(6, 1) == 1
    with pytest.raises(ValueError, match="t >= 0"):
        levels_completed(-1, 3)


def test_levels_completed_matches_the_blocks_the_stream_completes():
    # Independent count: level l completes a block at t when t + 1 is a multiple of 2**l.
    from phaselib.pyramid import levels_completed

    for t in range(70):
        want = sum(1 for lvl in range(6) if (t + 1) % (1 << lvl) == 0)
        assert levels_completed(t, 6) == want, t
