import pytest
import torch

from phaselib.exercises import check_expand_kv_heads, check_sink_window_mask


def test_expand_kv_heads_accepts_repeat_interleave_and_rejects_tiling():
    assert check_expand_kv_heads(lambda kv, H: kv.repeat_interleave(H // kv.shape[1], 1))
    with pytest.raises(AssertionError, match="tiled"):
        check_expand_kv_heads(lambda kv, H: kv.repeat(1, H // kv.shape[1], 1, 1))

    def stub(kv, H):
        raise NotImplementedError

    assert check_expand_kv_heads(stub) is False


def test_sink_window_mask_accepts_the_cache_and_rejects_a_window_without_sinks():
    def right(T, window, n_sink):
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None, :]
        return (j <= i) & ((i - j < window) | (j < n_sink))

    def no_sinks(T, window, n_sink):
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None, :]
        return (j <= i) & (i - j < window)

    def leaky(T, window, n_sink):
        j = torch.arange(T)[None, :].expand(T, T)
        return j < n_sink + window

    assert check_sink_window_mask(right) is True
    with pytest.raises(AssertionError, match="should be True"):
        check_sink_window_mask(no_sinks)
    with pytest.raises(AssertionError, match="later key"):
        check_sink_window_mask(leaky)
