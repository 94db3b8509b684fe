"""Properties of the transport between two vectors (book: Part IV, "Transport")."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from phaselib import transport, transport_complex, transport_complex_exp, transport_exp

SETTINGS = settings(max_examples=40, deadline=None)
dims = st.integers(min_value=2, max_value=17)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def rand(seed: int, *shape: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def random_rotation(seed: int, d: int) -> torch.Tensor:
    q, r = torch.linalg.qr(rand(seed, d, d))
    return q * torch.sign(torch.diagonal(r))


@SETTINGS
@given(seed=seeds, d=dims, n=st.integers(1, 6))
def test_transport_of_a_vector_to_itself_is_zero(seed, d, n):
    a = rand(seed, n, d)
    assert torch.allclose(transport(a, a), torch.zeros(n, d + 1, dtype=a.dtype), atol=1e-7)


@SETTINGS
@given(seed=seeds, d=dims, n=st.integers(1, 6))
def test_transport_exp_inverts_transport(seed, d, n):
    a, b = rand(seed, 2, n, d)
    assert torch.allclose(transport_exp(a, transport(a, b)), b, atol=1e-8, rtol=1e-6)


@SETTINGS
@given(seed=seeds, d=dims)
def test_transport_is_equivariant_under_rotations(seed, d):
    a, b = rand(seed, 2, 5, d)
    R = random_rotation(seed + 1, d)
    delta, delta_rot = transport(a, b), transport(a @ R.T, b @ R.T)
    assert torch.allclose(delta_rot[..., :-1], delta[..., :-1] @ R.T, atol=1e-8)
    assert torch.allclose(delta_rot[..., -1], delta[..., -1], atol=1e-10)


@SETTINGS
@given(seed=seeds, d=dims, log_scale=st.floats(-5, 5))
def test_transport_is_invariant_to_scaling_both_vectors(seed, d, log_scale):
    a, b = rand(seed, 2, 4, d)
    s = math.exp(log_scale)
    assert torch.allclose(transport(s * a, s * b), transport(a, b), atol=1e-8)


@SETTINGS
@given(seed=seeds, d=dims)
def test_angle_is_the_length_of_the_tangent_and_log_length_is_exact(seed, d):
    a, b = rand(seed, 2, 3, d)
    delta = transport(a, b)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1, 1)
    assert torch.allclose(delta[..., :-1].norm(dim=-1), torch.arccos(cos), atol=1e-6)
    assert torch.allclose(delta[..., -1], torch.log(b.norm(dim=-1) / a.norm(dim=-1)))


def test_tangent_is_orthogonal_to_the_start_direction():
    a, b = rand(0, 2, 50, 9)
    delta = transport(a, b)
    assert torch.allclose((delta[..., :-1] * a).sum(-1), torch.zeros(50, dtype=a.dtype), atol=1e-10)


def test_small_angles_survive_where_arccos_loses_them():
    a = rand(1, 8, 6, dtype=torch.float32)
    b = a + 1e-5 * rand(2, 8, 6, dtype=torch.float32)
    exact = transport(a.double(), b.double())[..., :-1].norm(dim=-1)
    ours = transport(a, b)[..., :-1].norm(dim=-1).double()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1, 1)
    via_arccos = torch.arccos(cos).double()
    assert ((ours - exact).abs() / exact).max() < 1e-2
    assert ((via_arccos - exact).abs() / exact).max() > 0.1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_gradients_are_finite_at_the_guards(dtype):
    d = 5
    u = torch.zeros(d, dtype=dtype)
    u[0] = 1.0
    v = rand(3, d, dtype=dtype)
    cases = [(torch.zeros(d, dtype=dtype), v), (v, torch.zeros(d, dtype=dtype)),
             (torch.zeros(d, dtype=dtype), torch.zeros(d, dtype=dtype)),
             (v, v.clone()), (v, -v), (u, -u), (v, -v + 1e-9), (v, 3 * v)]
    for a, b in cases:
        a = a.clone().requires_grad_(True)
        b = b.clone().requires_grad_(True)
        delta = transport(a, b)
        ga, gb = torch.autograd.grad(delta.sum() + (delta ** 2).sum(), (a, b))
        assert torch.isfinite(delta).all() and torch.isfinite(ga).all() and torch.isfinite(gb).all()


def test_zero_vectors_give_the_zero_delta():
    v = rand(4, 2, 7)
    z = torch.zeros(2, 7, dtype=v.dtype)
    assert torch.equal(transport(z, v), torch.zeros(2, 8, dtype=v.dtype))
    assert torch.equal(transport(v, z), torch.zeros(2, 8, dtype=v.dtype))


def test_antipodal_directions_give_angle_pi_along_a_deterministic_tangent():
    a = rand(5, 10, 6)
    delta = transport(a, -2.0 * a)
    tangent = delta[..., :-1]
    assert torch.allclose(tangent.norm(dim=-1), torch.full((10,), math.pi, dtype=a.dtype))
    assert torch.allclose((tangent * a).sum(-1), torch.zeros(10, dtype=a.dtype), atol=1e-10)
    assert torch.allclose(delta[..., -1], torch.full((10,), math.log(2.0), dtype=a.dtype))
    # Deterministic: the tangent depends on a's direction alone, not on how far b is.
    torch.testing.assert_close(transport(a, -5.0 * a)[..., :-1], tangent)
    torch.testing.assert_close(transport(3.0 * a, -a)[..., :-1], tangent)


def test_transport_broadcasts_over_leading_axes_only():
    a, b = rand(6, 2, 3, 4, 5)
    assert transport(a, b).shape == (3, 4, 6)
    with pytest.raises(ValueError, match="same shape"):
        transport(a, b[:1])


@pytest.mark.parametrize("bad, match", [
    (lambda: transport([1.0, 2.0], torch.ones(2)), "a must be a torch.Tensor"),
    (lambda: transport(torch.ones(3, dtype=torch.long), torch.ones(3, dtype=torch.long)), "floating-point"),
    (lambda: transport(torch.ones(3, 1), torch.ones(3, 1)), "D >= 2"),
    (lambda: transport(torch.ones(3, 2), torch.ones(3, 2, dtype=torch.float64)), "same dtype"),
    (lambda: transport_exp(torch.ones(3, 2), torch.ones(3, 2)), r"delta must have shape \[..., D\+1\]"),
    (lambda: transport_exp(torch.ones(3, 2), torch.ones(3, 3, dtype=torch.float64)),
     "a and delta must have the same dtype"),
    (lambda: transport_exp(torch.ones(3, 2), torch.ones(3, 3, device="meta")),
     "a and delta must be on the same device"),
    (lambda: transport(torch.ones(2, 2), torch.ones(2, 2), backend="cuda"), "backend must be one of"),
])
def test_bad_input_raises_a_clear_error(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        bad()


@SETTINGS
@given(seed=seeds, pairs=st.integers(1, 8))
def test_complex_transport_is_inverted_and_rotary_invariant(seed, pairs):
    a, b = rand(seed, 2, 3, 2 * pairs)
    delta = transport_complex(a, b)
    assert torch.allclose(transport_complex_exp(a, delta), b, atol=1e-9)
    assert (delta[..., 0::2].abs() <= math.pi + 1e-12).all()
    # The same rotary rotation (one angle per pair) applied to both leaves the delta unchanged.
    theta = rand(seed + 7, pairs)
    rot = torch.stack([theta, torch.zeros_like(theta)], -1).flatten().expand_as(a)
    assert torch.allclose(transport_complex(transport_complex_exp(a, rot), transport_complex_exp(b, rot)),
                          delta, atol=1e-9)


def test_complex_transport_is_finite_at_zero_pairs():
    a = torch.zeros(4, requires_grad=True)
    b = torch.tensor([1.0, 0.0, 0.0, 0.0], requires_grad=True)
    delta = transport_complex(a, b)
    (ga, gb) = torch.autograd.grad(delta.sum(), (a, b))
    assert torch.equal(delta, torch.zeros(4))
    assert torch.isfinite(ga).all() and torch.isfinite(gb).all()
    with pytest.raises(ValueError, match="even last dimension"):
        transport_complex(torch.ones(3), torch.ones(3))
