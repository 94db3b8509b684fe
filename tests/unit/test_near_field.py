"""The near field: banded and streaming versions against the masked [T, T] reference."""

import pytest
import torch

from phaselib.kernels.near_field import (NearFieldState, near_field_banded,
                                         near_field_reference, near_field_step_reference)
from phaselib.phase_lm import NearFieldAttention

pytestmark = pytest.mark.usefixtures("one_thread")

TS = [1, 2, 7, 63, 64, 100, 257]
WINDOWS = [1, 3, 8]


def _qkv(T, w, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, 3, T, 5, generator=g, dtype=dtype) for _ in range(3))
    return q, k, v, torch.randn(3, w, generator=g, dtype=dtype)


@pytest.mark.parametrize("T", TS)
@pytest.mark.parametrize("w", WINDOWS)
def test_banded_equals_the_masked_reference_outputs_and_gradients(T, w):
    outs, grads = [], []
    for fn in (near_field_reference, near_field_banded):
        q, k, v, rb = (t.requires_grad_() for t in _qkv(T, w))
        y = fn(q, k, v, rb, w)
        g_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        (y * g_out).sum().backward()
        outs.append(y.detach())
        grads.append([t.grad for t in (q, k, v, rb)])
    assert outs[0].shape == (2, 3, T, 5)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=0)
    for name, a, b in zip("qkvb", grads[1], grads[0]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=f"gradient of {name}")


@pytest.mark.parametrize("chunk", [1, 5, 16, 300])
def test_banded_does_not_depend_on_the_chunk_size(chunk):
    q, k, v, rb = _qkv(100, 8, dtype=torch.float64)
    want = near_field_reference(q, k, v, rb, 8)
    torch.testing.assert_close(near_field_banded(q, k, v, rb, 8, chunk), want, atol=1e-12, rtol=0)


def test_banded_sees_only_the_window():
    q, k, v, rb = _qkv(40, 3)
    v2 = v.clone()
    v2[:, :, 10] += 1.0
    d = (near_field_banded(q, k, v2, rb, 3) - near_field_banded(q, k, v, rb, 3)).abs()
    d = d.amax(dim=(0, 1, 3))
    assert (d[:10] == 0).all() and (d[13:] == 0).all() and (d[10:13] > 0).all()


def test_the_reference_is_not_plain_causal_attention():
    # a window shorter than T must change the result: the comparison above can fail
    q, k, v, rb = _qkv(20, 3)
    full = near_field_reference(q, k, v, torch.zeros(3, 20), 20)
    assert (near_field_banded(q, k, v, torch.zeros(3, 3), 3) - full).abs().max() > 1e-2


@pytest.mark.parametrize("T", [1, 7, 64, 100])
@pytest.mark.parametrize("w", WINDOWS)
def test_the_ring_step_equals_the_reference_at_every_position(T, w):
    q, k, v, rb = _qkv(T, w)
    want = near_field_reference(q, k, v, rb, w)
    state = NearFieldState.zeros(2, 3, w, 5)
    ys = []
    for t in range(T):
        y, state = near_field_step_reference(q[:, :, t], k[:, :, t], v[:, :, t], rb, state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 2), want, atol=1e-5, rtol=0)
    assert state.t == T and state.nbytes() == 2 * 2 * 3 * w * 5 * 4


def test_the_ring_step_does_not_mutate_its_input_state():
    q, k, v, rb = _qkv(3, 2)
    s0 = NearFieldState.zeros(2, 3, 2, 5)
    _, s1 = near_field_step_reference(q[:, :, 0], k[:, :, 0], v[:, :, 0], rb, s0)
    assert s0.t == 0 and (s0.k == 0).all() and s1.t == 1 and (s1.k[:, :, 0] == k[:, :, 0]).all()


def test_the_ring_step_casts_low_precision_inputs_up_to_the_state():
    # Under autocast q, k, v come out of a projection in bf16; the state stays fp32.
    q, k, v, rb = _qkv(9, 4)
    q, k, v = (x.to(torch.bfloat16) for x in (q, k, v))
    want = near_field_reference(q.float(), k.float(), v.float(), rb, 4)
    state, ys = NearFieldState.zeros(2, 3, 4, 5), []
    for t in range(9):
        y, state = near_field_step_reference(q[:, :, t], k[:, :, t], v[:, :, t], rb,
                                             state)
        ys.append(y)
    assert state.k.dtype == torch.float32
    torch.testing.assert_close(torch.stack(ys, 2), want, atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="k_t must be torch.float32 like the state"):
        near_field_step_reference(q[:, :, 0].float(), k[:, :, 0].double(),
                                  v[:, :, 0].float(), rb, state)


@pytest.mark.parametrize("w", WINDOWS)
def test_module_forward_equals_its_masked_twin_with_gradients(w):
    torch.manual_seed(0)
    att = NearFieldAttention(12, 3, w)
    with torch.no_grad():
        att.rel_bias.normal_()
    x = torch.randn(2, 63, 12)
    y = att(x)
    y.square().sum().backward()
    g1 = [p.grad.clone() for p in att.parameters()]
    att.zero_grad()
    y_ref = att.reference(x)
    y_ref.square().sum().backward()
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    for a, b in zip(g1, (p.grad for p in att.parameters())):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_module_step_equals_forward():
    torch.manual_seed(0)
    att = NearFieldAttention(12, 3, 4).eval()
    with torch.no_grad():
        att.rel_bias.normal_()
    x = torch.randn(2, 30, 12)
    state = att.init_state(2)
    ys = []
    with torch.no_grad():
        for t in range(30):
            y, state = att.step(x[:, t], state)
            ys.append(y)
        torch.testing.assert_close(torch.stack(ys, 1), att(x), atol=1e-5, rtol=0)
