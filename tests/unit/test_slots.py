"""Tests for phaselib.slots: the scan, its reference twin, and DecisionSlots."""

import math

import pytest
import torch

from phaselib.slots import DecisionSlots, slot_scan, slot_scan_reference
from phaselib.taps import capture


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("T,chunk", [(1, 4), (7, 4), (33, 8), (65, 32), (50, 1)])
def test_chunked_scan_equals_the_loop(T, chunk):
    g = torch.Generator().manual_seed(T)
    a = torch.rand(3, T, 2, 5, generator=g)
    b = torch.randn(3, T, 2, 5, generator=g)
    s0 = torch.randn(2, 5, generator=g)
    torch.testing.assert_close(slot_scan(a, b, s0, chunk), slot_scan_reference(a, b, s0))


def test_chunked_scan_equals_the_loop_with_hard_gates_and_batched_init():
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(2, 41, 3, 4, generator=g) > 0.7).float()
    b = torch.randn(2, 41, 3, 4, generator=g) * (1 - a)
    s0 = torch.randn(2, 3, 4, generator=g)
    torch.testing.assert_close(slot_scan(a, b, s0, 8), slot_scan_reference(a, b, s0))


def test_chunked_scan_gradients_equal_the_loop():
    g = torch.Generator().manual_seed(2)
    a0, b0, s00 = torch.rand(2, 19, 3, generator=g), torch.randn(2, 19, 3, generator=g), torch.randn(3, generator=g)
    w = torch.randn(2, 19, 3, generator=g)
    grads = []
    for fn in (lambda a, b, s: slot_scan(a, b, s, 4), slot_scan_reference):
        a, b, s0 = (t.clone().requires_grad_() for t in (a0, b0, s00))
        (fn(a, b, s0) * w).sum().backward()
        grads.append((a.grad, b.grad, s0.grad))
    for x, y in zip(*grads):
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("hard", [False, True])
def test_shapes(hard):
    m = DecisionSlots(6, n_slots=3, hard=hard)
    read, slots = m(_rand(2, 11, 6))
    assert read.shape == (2, 11, 6)
    assert slots.shape == (2, 11, 3, 6)


@pytest.mark.parametrize("hard", [False, True])
def test_causal(hard):
    m = DecisionSlots(5, n_slots=2, hard=hard, chunk=4)
    with torch.no_grad():
        m.gate.bias.zero_()  # gates open and closed in both modes
    x = _rand(2, 23, 5)
    s = 9
    r1, k1 = m(x)
    x2 = x.clone()
    x2[:, s] += 10.0
    r2, k2 = m(x2)
    torch.testing.assert_close(r1[:, :s], r2[:, :s])
    torch.testing.assert_close(k1[:, :s], k2[:, :s])
    assert not torch.allclose(k1[:, s:], k2[:, s:])


def test_fixed_gates_and_zero_queries_give_hand_computed_slots_and_a_plain_mean():
    # Gates fixed at sigmoid(log 3) = 3/4: slot_t = 3/4 w_t + 1/4 slot_{t-1}, so by hand
    # slot_0 = 3/4 w_0 + 1/4 init, slot_1 = 3/4 w_1 + 3/16 w_0 + 1/16 init,
    # slot_2 = 3/4 w_2 + 3/16 w_1 + 3/64 w_0 + 1/64 init. Zero queries: the read is
    # o(mean over slots).
    m = DecisionSlots(4, n_slots=3)
    with torch.no_grad():
        m.gate.weight.zero_()
        m.gate.bias.fill_(math.log(3.0))
        m.q.weight.zero_()
    x = _rand(2, 9, 4)
    read, slots = m(x)
    w = m.write(x).view(2, 9, 3, 4)
    init = m.init.expand(2, 3, 4)
    torch.testing.assert_close(slots[:, 0], 3 / 4 * w[:, 0] + init / 4)
    torch.testing.assert_close(slots[:, 1], 3 / 4 * w[:, 1] + 3 / 16 * w[:, 0] + init / 16)
    torch.testing.assert_close(slots[:, 2], 3 / 4 * w[:, 2] + 3 / 16 * w[:, 1]
                               + 3 / 64 * w[:, 0] + init / 64)
    torch.testing.assert_close(read, m.o(slots.mean(2)))


def test_hard_gates_are_zero_or_one_and_hold_exactly():
    m = DecisionSlots(4, n_slots=2, hard=True)
    x = _rand(1, 30, 4)
    with torch.no_grad():
        m.gate.weight.zero_()
        m.gate.bias.fill_(-1.0)  # never write: the slots keep their initial value
    with capture(m, ["tap_gate"]) as store:
        _, slots = m(x)
    assert ((store["tap_gate"] == 0) | (store["tap_gate"] == 1)).all()
    assert torch.equal(slots, m.init.detach().expand(1, 30, 2, 4))


def test_gradients_flow_through_hard_gates():
    m = DecisionSlots(4, n_slots=2, hard=True, gate_bias=0.0)  # some gates open, some closed
    read, slots = m(_rand(2, 13, 4))
    (read.pow(2).sum() + slots.pow(2).sum()).backward()
    assert m.gate.weight.grad.abs().sum() > 0
    assert m.write.weight.grad.abs().sum() > 0


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="n_slots"):
        DecisionSlots(4, n_slots=0)
    with pytest.raises(ValueError, match="n_embd"):
        DecisionSlots(0)
    m = DecisionSlots(4)
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        m(_rand(3, 4))
    with pytest.raises(ValueError, match="n_embd"):
        m(_rand(1, 3, 5))
    with pytest.raises(TypeError, match="x must be a floating-point"):
        m(torch.ones(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="s0"):
        slot_scan(_rand(1, 3, 2), _rand(1, 3, 2), _rand(3))


@pytest.mark.parametrize("hard", [False, True])
def test_step_equals_forward_at_every_position(hard):
    m = DecisionSlots(6, n_slots=3, hard=hard, gate_bias=0.0, chunk=4)
    x = _rand(2, 19, 6)
    read, slots = m(x)
    state = None
    for t in range(19):
        r, state = m.step(x[:, t], state)
        torch.testing.assert_close(r, read[:, t])
        torch.testing.assert_close(state, slots[:, t])
    with pytest.raises(ValueError, match="x_t"):
        m.step(_rand(2, 5), None)


def test_gru_state_has_the_slots_state_size_and_is_causal():
    from phaselib.slots import GRUState

    torch.manual_seed(0)
    m = GRUState(6, 3)
    x = torch.randn(2, 9, 6)
    read, h = m(x)
    assert read.shape == (2, 9, 6) and h.shape == (2, 9, 18)
    x2 = x.clone()
    x2[:, 4] += 1.0
    read2, _ = m(x2)
    assert torch.equal(read[:, :4], read2[:, :4])          # the past does not move
    assert not torch.allclose(read[:, 4:], read2[:, 4:])   # the future does
    with pytest.raises(ValueError, match="x must have C = n_embd = 6"):
        m(torch.randn(2, 9, 5))


def test_slot_scan_takes_a_broadcast_over_the_trailing_dims():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(2, 45, 3, 1, generator=g)
    b = torch.randn(2, 45, 3, 5, generator=g)
    s0 = torch.randn(3, 5, generator=g)
    want = slot_scan_reference(a.expand_as(b), b, s0)
    torch.testing.assert_close(slot_scan(a, b, s0, chunk=8), want)
    torch.testing.assert_close(slot_scan_reference(a, b, s0), want)
    with pytest.raises(ValueError, match="broadcasts"):
        slot_scan(torch.rand(2, 45, 3, 2), b, s0)
