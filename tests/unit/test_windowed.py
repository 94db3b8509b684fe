"""The windowed transformer of the slots chapter: what each position can see."""

import pytest
import torch

from phaselib.windowed import WindowedBlock, WindowedLM


def model(window, n_layer=1, **kw):
    torch.manual_seed(0)
    return WindowedLM(7, 5, 16, 2, window, n_layer=n_layer, **kw).eval()


def changed_positions(m, s, T=20):
    """Positions whose logits move when the token at position s is changed."""
    idx = torch.randint(7, (2, T), generator=torch.Generator().manual_seed(1))
    idx2 = idx.clone()
    idx2[:, s] = (idx2[:, s] + 3) % 7
    with torch.no_grad():
        a, b = m(idx)[0], m(idx2)[0]
    return [t for t in range(T) if not torch.allclose(a[:, t], b[:, t], atol=1e-6)]


def test_one_block_sees_exactly_the_last_window_tokens():
    # Window 4, one block: position t sees tokens t-3 .. t, so token 6 reaches 6 .. 9.
    assert changed_positions(model(4), 6) == [6, 7, 8, 9]
    assert changed_positions(model(1), 6) == [6]


def test_two_blocks_reach_two_windows_back():
    # Each block adds window - 1 = 2 of reach: token 6 reaches 6 .. 10.
    assert changed_positions(model(3, n_layer=2), 6) == [6, 7, 8, 9, 10]


def test_full_attention_sees_every_earlier_token():
    assert changed_positions(model(None), 6) == list(range(6, 20))


def test_slots_carry_a_token_beyond_the_window():
    # Mostly-holding gates (bias -4): what the slots write at token 6 is still there at
    # every later position, far beyond the window of 2 (without slots: 6 and 7 only).
    assert changed_positions(model(2), 6) == [6, 7]
    assert changed_positions(model(2, n_slots=2, gate_bias=-4.0), 6) == list(range(6, 20))


def test_window_at_least_T_equals_full_attention():
    idx = torch.randint(7, (3, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(9)(idx)[0], model(None)(idx)[0])


def test_loss_ignores_minus_one_targets():
    m = model(3)
    idx = torch.randint(7, (2, 6), generator=torch.Generator().manual_seed(3))
    y = torch.randint(5, (2, 6), generator=torch.Generator().manual_seed(4))
    y[:, 0] = -1
    logits, loss = m(idx, y)
    want = torch.nn.functional.cross_entropy(logits[:, 1:].reshape(-1, 5), y[:, 1:].reshape(-1))
    torch.testing.assert_close(loss, want)
    assert logits.shape == (2, 6, 5)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="window must be a positive int"):
        WindowedBlock(16, 2, 0)
    with pytest.raises(ValueError, match="divisible by n_head"):
        WindowedBlock(16, 3, 4)
    with pytest.raises(ValueError, match="n_slots must be an int >= 0"):
        WindowedLM(7, 5, 16, 2, 4, n_slots=-1)
    with pytest.raises(ValueError, match="idx must be a long tensor"):
        model(3)(torch.zeros(2, 5))


def test_sink_lets_every_position_see_the_first_token_and_nothing_else_new():
    # Window 2, one block: token 0 reaches every later position through the sink, while
    # token 6 still reaches only 6 and 7.
    m = model(2, sink=True)
    assert changed_positions(m, 0) == list(range(20))
    assert changed_positions(m, 6) == [6, 7]
    assert changed_positions(model(2), 0) == [0, 1]


def test_gru_memory_carries_a_token_beyond_the_window_and_stays_causal():
    m = model(2, n_slots=2, memory="gru")
    assert changed_positions(m, 6) == list(range(6, 20))
    assert isinstance(m.blocks[0].slots.gru, torch.nn.GRU)
    assert m.blocks[0].slots.gru.hidden_size == 2 * 16      # K * C, the slots' state


def test_bad_memory_and_sink_raise():
    with pytest.raises(ValueError, match="memory must be 'slots' or 'gru'"):
        WindowedLM(7, 5, 16, 2, 3, n_slots=2, memory="lstm")
    with pytest.raises(TypeError, match="sink must be a bool"):
        WindowedLM(7, 5, 16, 2, 3, sink=1)
