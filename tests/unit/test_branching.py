"""Tests for phaselib.branching: the select task, the straight-through step, the gate and
router, parameter budgets, and the transition-width metric."""

import math

import numpy as np
import pytest
import torch

from phaselib.branching import (MLP, HardGate, SwitchRouter, Top1Router, evaluate,
                                slope_bound,
                                expert_width_for_budget, make_model, n_params, profile,
                                select_batch, select_targets, straight_through_step,
                                rise_where_choice_holds, route_purity, transition_center,
                                transition_width)


def test_select_targets_on_a_hand_example():
    x = torch.tensor([[0.3, -0.7, 0.2], [0.3, -0.7, -0.2], [-0.5, 0.9, 1e-6],
                      [0.1, 0.4, 0.0]])
    want = torch.tensor([[0.3], [-0.7], [-0.5], [0.4]])   # s = 0 takes b
    assert torch.equal(select_targets(x), want)


def test_select_batch_ranges_and_targets():
    x, y = select_batch(501, torch.Generator().manual_seed(3), s_range=0.1)
    assert x.shape == (501, 3) and y.shape == (501, 1)
    assert x[:, :2].abs().max() <= 1 and x[:, 2].abs().max() <= 0.1
    assert torch.equal(y, select_targets(x))       # the rule itself: the hand example above


def test_select_targets_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        select_targets(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="floating-point"):
        select_targets(torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="s_range"):
        select_batch(8, s_range=0.0)


def test_straight_through_forward_is_exactly_hard_and_gradient_is_nonzero():
    z = torch.tensor([-2.0, -1e-4, 0.0, 1e-4, 3.0], requires_grad=True)
    g = straight_through_step(z, tau=0.5)
    assert torch.equal(g.detach(), torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]))
    g.sum().backward()
    sig = torch.sigmoid(z.detach() / 0.5)
    torch.testing.assert_close(z.grad, sig * (1 - sig) / 0.5)
    assert (z.grad > 0).all()


def test_straight_through_rejects_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        straight_through_step(torch.zeros(3), tau=0)


def test_hard_gate_output_is_one_expert_exactly():
    torch.manual_seed(0)
    m = HardGate(7, factored=True)
    x, _ = select_batch(97, torch.Generator().manual_seed(1))
    with torch.no_grad():
        g = m.gate_value(x)
        e1, e2 = m.experts[0](x[:, :2]), m.experts[1](x[:, :2])
        y, _ = m(x)
    assert set(g.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(y, torch.where(g > 0, e1, e2))


def test_router_selects_exactly_one_expert_per_example_and_trains_the_router():
    torch.manual_seed(0)
    m = Top1Router(5, n_experts=3)
    x, y = select_batch(131, torch.Generator().manual_seed(2))
    w = m.weights(x)
    assert ((w == 1).sum(1) == 1).all() and ((w == 0).sum(1) == 2).all()
    assert torch.equal(w.argmax(1), m.router(x).argmax(1))
    _, loss = m(x, y)
    loss.backward()
    assert m.router.weight.grad.abs().sum() > 0


def test_switch_router_scales_the_chosen_expert_by_its_probability():
    """Switch routing: one expert per example, its output times its softmax
    probability (below one), and the router learns through that product."""
    torch.manual_seed(0)
    m = SwitchRouter(5, n_experts=3, factored=True)
    x, y = select_batch(131, torch.Generator().manual_seed(2))
    with torch.no_grad():
        p = torch.softmax(m.router(x), -1)
        i = p.argmax(1)
        outs = torch.cat([e(x[:, :2]) for e in m.experts], 1)
        want = (p.gather(1, i[:, None]) * outs.gather(1, i[:, None]))
        w, c = m.weights(x), m.choice(x)
    assert ((w != 0).sum(1) == 1).all() and torch.equal(c.argmax(1), i)
    assert (w.max(1).values < 1).all() and (w.max(1).values > 1 / 3 - 1e-6).all()
    assert torch.allclose(m(x)[0], want, atol=1e-6)
    # The straight-through router's output is the chosen expert's, unscaled.
    t = Top1Router(5, n_experts=3, factored=True)
    t.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.allclose(t(x)[0], outs.gather(1, i[:, None]), atol=1e-6)
    _, loss = m(x, y)
    loss.backward()
    assert m.router.weight.grad.abs().sum() > 0


def test_unchosen_experts_get_no_gradient():
    torch.manual_seed(0)
    m = Top1Router(5, n_experts=3)
    x, y = select_batch(64, torch.Generator().manual_seed(4))
    with torch.no_grad():
        m.router.bias.copy_(torch.tensor([10.0, -10.0, -10.0]))   # expert 0 always
    m(x, y)[1].backward()
    assert m.experts[0][0].weight.grad.abs().sum() > 0
    assert m.experts[1][0].weight.grad is None or (m.experts[1][0].weight.grad == 0).all()


def test_param_counts_and_budget():
    assert n_params(MLP(32)) == 3 * 32 + 32 + 32 * 32 + 32 + 32 + 1
    budget = n_params(MLP(32))
    for kind in ("hard_gate", "top1_router", "switch_router"):
        for factored in (False, True):
            w = expert_width_for_budget(budget, kind, factored=factored)
            assert n_params(make_model(kind, w, factored=factored)) <= budget
            assert n_params(make_model(kind, w + 1, factored=factored)) > budget
    with pytest.raises(ValueError, match="kind"):
        make_model("transformer", 8)
    with pytest.raises(ValueError, match="experts"):
        make_model("mlp", 8, factored=True)


@pytest.mark.parametrize("k", [3.0, 17.0, 250.0])
def test_transition_width_of_a_sigmoid_is_2_ln9_over_k(k):
    s = np.linspace(-2, 2, 40001)
    p = 1 / (1 + np.exp(-k * s))
    assert transition_width(s, p) == pytest.approx(2 * math.log(9) / k, rel=2e-3)
    assert transition_center(s, p) == pytest.approx(0.0, abs=1e-4)


def test_transition_width_of_a_step_is_set_by_the_grid():
    s = np.linspace(-1, 1, 2001)
    p = (s > 0.25).astype(float)
    assert transition_width(s, p) == pytest.approx(0.8 * 0.001, rel=1e-6)
    assert transition_center(s, p) == pytest.approx(0.25 + 0.5 * 0.001, abs=1e-9)


def test_transition_width_is_inf_when_the_rise_is_incomplete_or_reversed():
    s = np.linspace(-1, 1, 101)
    assert transition_width(s, 0.5 + 0.3 * s) == math.inf       # 0.2 .. 0.8
    assert transition_width(s, (s < 0).astype(float)) == math.inf   # falls instead
    assert math.isnan(transition_center(s, np.full_like(s, 0.7)))
    with pytest.raises(ValueError, match="increasing"):
        transition_width(s[::-1], s)


def test_profile_of_a_hard_gate_is_a_step(one_thread):
    torch.manual_seed(0)
    m = HardGate(4, factored=True)
    with torch.no_grad():   # gate on s only, experts return a and b exactly
        m.gate.weight.copy_(torch.tensor([[0.0, 0.0, 5.0]]))
        m.gate.bias.zero_()
    m.experts = torch.nn.ModuleList([_Pick(0), _Pick(1)])
    s = torch.linspace(-0.5, 0.5, 1001)
    p = profile(m, 0.6, -0.2, s)
    torch.testing.assert_close(p, (s > 0).float())
    assert transition_width(s, p) == pytest.approx(0.8 * 0.001, rel=1e-5)
    res = evaluate(m, n_test=512)
    assert all(v < 1e-12 for v in res["mse"].values())


class _Pick(torch.nn.Module):
    def __init__(self, i):
        super().__init__()
        self.i, self.dummy = i, torch.nn.Parameter(torch.zeros(1))

    def forward(self, v):
        return v[:, self.i:self.i + 1] + 0 * self.dummy


def test_check_select_targets_rejects_a_wrong_answer_and_accepts_the_right_one():
    from phaselib.exercises import check_select_targets

    def wrong(x):   # s >= 0 takes a: wrong at s = 0
        return torch.where(x[:, 2:] >= 0, x[:, :1], x[:, 1:2])

    with pytest.raises(AssertionError, match="select"):
        check_select_targets(wrong)
    assert check_select_targets(lambda x: torch.where(x[:, 2:] > 0, x[:, :1], x[:, 1:2]))


def test_check_transition_width_rejects_a_wrong_answer_and_accepts_the_right_one():
    from phaselib.exercises import check_transition_width

    def first_crossings(s, p):   # uses the first rise through 0.1, not the last
        i = np.flatnonzero(p > 0.1)[0]
        j = np.flatnonzero(p >= 0.9)
        return float(s[j[0]] - s[i]) if len(j) else math.inf

    def last_rise(s, p):         # a right answer written here, not the package's
        def cross(i, level):     # interpolate between grid points i and i + 1
            return s[i] + (level - p[i]) / (p[i + 1] - p[i]) * (s[i + 1] - s[i])
        below = np.flatnonzero(p <= 0.1)
        if len(below) == 0 or below[-1] == len(p) - 1:
            return math.inf
        i = below[-1]
        above = i + 1 + np.flatnonzero(p[i + 1:] >= 0.9)
        return float(cross(above[0] - 1, 0.9) - cross(i, 0.1)) if len(above) else math.inf

    with pytest.raises(AssertionError, match="expected"):
        check_transition_width(first_crossings)
    assert check_transition_width(last_rise)


def test_slope_bound_bounds_the_measured_slope(one_thread):
    torch.manual_seed(3)
    m = MLP(11)
    s = torch.linspace(-1, 1, 2001)
    for a, b in [(0.5, -0.5), (-0.9, 0.2)]:
        f = profile(m, a, b, s) * (a - b) + b
        slope = (f.diff() / s.diff()).abs().max().item()
        assert 0 < slope <= slope_bound(m) + 1e-6
    with pytest.raises(TypeError, match="MLP"):
        slope_bound(HardGate(3))


def test_select_batch_leaves_a_margin_around_the_boundary():
    x, y = select_batch(777, torch.Generator().manual_seed(5), s_range=0.3, s_min=0.1)
    s = x[:, 2]
    assert (s.abs() >= 0.1).all() and (s.abs() <= 0.3).all()
    assert (s > 0).any() and (s < 0).any()        # both sides of the boundary
    assert torch.equal(y, select_targets(x))
    with pytest.raises(ValueError, match="s_min"):
        select_batch(8, s_range=0.1, s_min=0.1)


def test_switch_load_balancing_loss_is_switch_transformers_formula():
    """n_experts * sum_i f_i P_i, f from the argmax (no gradient), P the mean
    probability. A router with zero weights ties every score: argmax sends every
    example to expert 0 (f = (1, 0, 0, 0)), P = 1/4 each, so the loss is 4 * 1/4 = 1."""
    m = SwitchRouter(5, n_experts=4, balance=0.01)
    with torch.no_grad():
        m.router.weight.zero_()
        m.router.bias.zero_()
    x, y = select_batch(64, torch.Generator().manual_seed(0))
    assert m.balance_loss(x).item() == pytest.approx(1.0)
    # f differs from P: biases (log 0.6, log 0.4) for two experts send every example to
    # expert 0 (f = (1, 0)) with P = (0.6, 0.4): 2 * (1 * 0.6) = 1.2, where a loss of
    # n * sum P_i^2 would give 1.04 and n * sum f_i^2 would give 2.
    two = SwitchRouter(5, n_experts=2)
    with torch.no_grad():
        two.router.weight.zero_()
        two.router.bias.copy_(torch.tensor([0.6, 0.4]).log())
    assert two.balance_loss(x).item() == pytest.approx(1.2, rel=1e-6)
    # It enters the training loss times `balance`, and not when balance is 0.
    torch.manual_seed(0)
    m.router.reset_parameters()
    plain = SwitchRouter(5, n_experts=4)
    plain.load_state_dict(m.state_dict())
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(m(x)[0], y).item()
        assert m(x, y)[1].item() == pytest.approx(mse + 0.01 * m.balance_loss(x).item())
        assert plain(x, y)[1].item() == pytest.approx(mse)
    # Its gradient is that of n * sum_i f_i P_i with f held fixed: through P alone,
    # written out here from the softmax.
    m.zero_grad()
    m.balance_loss(x).backward()
    got = m.router.weight.grad.clone()
    w = m.router.weight.detach().clone().requires_grad_(True)
    logits = x @ w.T + m.router.bias.detach()
    p = torch.softmax(logits, -1)
    f = torch.zeros(4).index_add_(0, logits.argmax(-1), torch.ones(len(x))) / len(x)
    (4 * (f * p.mean(0)).sum()).backward()
    assert got.abs().sum() > 0 and torch.allclose(got, w.grad, atol=1e-6)


def test_balance_is_checked_and_belongs_to_the_switch_router():
    with pytest.raises(ValueError, match="balance"):
        SwitchRouter(5, balance=-0.1)
    with pytest.raises(ValueError, match="balance"):
        SwitchRouter(5, balance=float("nan"))
    with pytest.raises(ValueError, match="balance"):
        SwitchRouter(5, balance=True)
    with pytest.raises(ValueError, match="switch_router"):
        make_model("top1_router", 5, balance=0.01)
    assert make_model("switch_router", 5, balance=0.01).balance == 0.01


def test_route_purity_reads_how_far_the_choice_follows_the_sign_of_s():
    s = torch.tensor([-0.5, -0.2, 0.1, 0.4, 0.7, -0.9])
    by_sign = torch.nn.functional.one_hot((s > 0).long(), 4).float()
    assert route_purity(by_sign, s) == 1.0
    # Split each side over two experts: still pure.
    four = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 2, 0]), 4).float()
    assert route_purity(four, s) == 1.0
    # One expert for everything: its majority side (three of six, a tie) is credited.
    one = torch.nn.functional.one_hot(torch.zeros(6, dtype=torch.long), 4).float()
    assert route_purity(one, s) == 0.5
    # Expert 0 takes s = -0.5, -0.2, 0.1 (two of three negative), expert 1 the rest
    # (two of three positive): 4 of 6 credited.
    mixed = torch.nn.functional.one_hot(torch.tensor([0, 0, 0, 1, 1, 1]), 4).float()
    assert route_purity(mixed, s) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="one-hot"):
        route_purity(by_sign * 0.5, s)
    with pytest.raises(ValueError, match="s must have shape"):
        route_purity(by_sign, s[:3])
    with pytest.raises(ValueError, match="s must have shape"):
        route_purity(by_sign[:0], s[:0])
    with pytest.raises(ValueError, match="finite"):
        route_purity(by_sign, torch.where(s > 0.5, float("nan"), s))


def test_rise_where_choice_holds_splits_a_switch_from_a_weight_that_follows_s():
    """Two constant experts (a = 1, b = -1) and a router scoring +-k s: the one-hot
    router moves only where its choice flips (0); the Switch router's output there is
    +-sigma(2 k |s|), so it also moves while the choice holds, by the share computed
    here from that closed form."""
    s = torch.linspace(-0.5, 0.5, 201)

    def closed_form_share(k):
        sg = s.double().numpy()
        out = np.where(sg >= 0, 1 / (1 + np.exp(-2 * k * sg)),
                       -1 / (1 + np.exp(2 * k * sg)))
        held = (sg[1:] >= 0) == (sg[:-1] >= 0)
        step = np.abs(np.diff(out))
        return step[held].sum() / step.sum()

    for cls, k in ((Top1Router, 50.0), (SwitchRouter, 50.0), (SwitchRouter, 1.0)):
        m = cls(3, n_experts=2, factored=True)
        with torch.no_grad():
            for e, v in zip(m.experts, (1.0, -1.0)):
                for layer in e:
                    if isinstance(layer, torch.nn.Linear):
                        layer.weight.zero_()
                        layer.bias.zero_()
                e[-1].bias.fill_(v)
            m.router.weight.zero_()
            m.router.bias.zero_()
            m.router.weight[:, 2] = torch.tensor([k, -k])
        share = rise_where_choice_holds(m, 1.0, -1.0, s)
        want = 0.0 if cls is Top1Router else closed_form_share(k)
        assert share == pytest.approx(want, abs=1e-5), (cls.__name__, k)
    assert closed_form_share(50.0) > 0.4 and closed_form_share(1.0) < 0.35
    with pytest.raises(TypeError, match="router"):
        rise_where_choice_holds(MLP(4), 1.0, -1.0, s)
    for bad in (s.flip(0), s[:1]):
        with pytest.raises(ValueError, match="increasing grid"):
            rise_where_choice_holds(m, 1.0, -1.0, bad)
