"""phaselib.kernels._tiles: the tile sizes every kernel uses, on a GPU and under the
interpreter."""

import pytest

from phaselib.kernels._tiles import (GPU_BUDGET, INTERPRETER_BUDGET, MAX_BLOCK_D,
                                     tile_sizes)


def test_gpu_tiles_fill_the_budget_and_max_rows_caps_them(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert tile_sizes(4096, 64) == (GPU_BUDGET // 64, 64)
    assert tile_sizes(4096, 1000) == (GPU_BUDGET // MAX_BLOCK_D, MAX_BLOCK_D)
    assert tile_sizes(3, 64) == (4, 64)                    # no more rows than needed
    assert tile_sizes(4096, 64, max_rows=16) == (16, 64)
    assert tile_sizes(4, 64, max_rows=16) == (4, 64)       # a cap, not a floor
    assert tile_sizes(4096, 64, budget=1 << 8) == (4, 64)
    assert tile_sizes(4096, 64, block=64, max_rows=16) == (64, 64)   # block wins


def test_the_interpreter_takes_big_tiles_and_ignores_max_rows(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert tile_sizes(4096, 64, max_rows=16) == (INTERPRETER_BUDGET // 64, 64)


@pytest.mark.parametrize("kw", [dict(block=3), dict(max_rows=12), dict(max_rows=0)])
def test_sizes_must_be_powers_of_two(kw):
    with pytest.raises(ValueError, match="must be a power of two"):
        tile_sizes(64, 64, **kw)
