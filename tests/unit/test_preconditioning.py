import pytest
import torch

from phaselib.preconditioning import (TaggedConfig, TaggedTransformer, measure_tag,
                                      steps_to_loss, tag_perms, tag_share, tag_task_batch)
from phaselib.taps import capture


def _model(variant, n_layer=3, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = TaggedConfig(vocab_size=7, n_tags=3, variant=variant, block_size=11,
                       n_layer=n_layer, n_embd=12, n_head=2, **kw)
    return TaggedTransformer(cfg)


def _inputs(B=5, T=11, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(7, (B, T), generator=g), torch.randint(3, (B,), generator=g)


def test_tag_task_targets_by_hand():
    perms = torch.tensor([[1, 2, 0], [2, 0, 1]])
    (idx, tags), y = tag_task_batch(4, 5, perms, generator=torch.Generator().manual_seed(3))
    assert idx.shape == (4, 5) and tags.shape == (4,) and y.shape == (4, 5)
    table = {0: {0: 1, 1: 2, 2: 0}, 1: {0: 2, 1: 0, 2: 1}}  # written out, not perms
    for b in range(4):
        assert y[b, 0].item() == -1
        k = tags[b].item()
        for t in range(1, 5):
            assert y[b, t].item() == table[k][idx[b, t - 1].item()]


def test_tag_perms_rows_are_permutations_and_tags_disagree_on_every_token():
    perms = tag_perms(5, 11, seed=4)
    assert perms.shape == (5, 11)
    assert (perms.sort(-1).values == torch.arange(11)).all()
    for v in range(11):
        assert len(set(perms[:, v].tolist())) == 5
    assert not torch.equal(tag_perms(5, 11, seed=4), tag_perms(5, 11, seed=5))


def test_tag_task_checks_its_arguments():
    with pytest.raises(ValueError, match="permutation of range"):
        tag_task_batch(2, 4, torch.tensor([[0, 0, 1]]))
    with pytest.raises(TypeError, match="perms must be a long tensor"):
        tag_task_batch(2, 4, torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="T must be >= 2"):
        tag_task_batch(2, 1, tag_perms(2, 3))
    with pytest.raises(ValueError, match="n_tags must be in"):
        tag_perms(4, 3)


def test_config_and_forward_reject_bad_input():
    with pytest.raises(ValueError, match="variant must be one of"):
        TaggedConfig(vocab_size=5, n_tags=2, variant="sometimes")
    m = _model("input")
    idx, tags = _inputs()
    with pytest.raises(TypeError, match="inp must be a pair"):
        m(idx)
    with pytest.raises(ValueError, match="tags must lie in"):
        m((idx, tags + 3))
    with pytest.raises(ValueError, match="tags must have shape"):
        m((idx, tags[:2]))


def test_every_layer_adds_exactly_the_tag_embedding():
    torch.manual_seed(0)
    inp = _inputs()
    a, b = _model("input"), _model("every")
    b.load_state_dict(a.state_dict())
    names = ["block_in.1", "block_in.2", "blocks.0.tap_resid_post", "blocks.1.tap_resid_post"]
    with torch.no_grad(), capture(a, names) as ta, capture(b, names) as tb:
        a(inp)
        b(inp)
    e_tag = a.wtag.weight[inp[1]][:, None, :].detach()
    # Same weights and the same x_0: at layer 1 the streams differ by e_tag alone.
    torch.testing.assert_close(tb["block_in.1"] - ta["block_in.1"], e_tag.expand(5, 11, 12))
    # Inside each model: what block l reads is what block l-1 wrote, plus e_tag or not.
    for l in (1, 2):
        torch.testing.assert_close(ta[f"block_in.{l}"], ta[f"blocks.{l - 1}.tap_resid_post"])
        diff = tb[f"block_in.{l}"] - tb[f"blocks.{l - 1}.tap_resid_post"]
        torch.testing.assert_close(diff, e_tag.expand_as(diff))
    assert e_tag.abs().max() > 0


def test_every_equals_input_when_the_tag_table_is_zero():
    inp = _inputs()
    a, b = _model("input"), _model("every")
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        a.wtag.weight.zero_()
        b.wtag.weight.zero_()
        torch.testing.assert_close(a(inp)[0], b(inp)[0])
        b.wtag.weight.normal_()
        assert not torch.allclose(a(inp)[0], b(inp)[0])


@pytest.mark.parametrize("variant", ["input", "every", "slots"])
def test_variants_are_causal(variant):
    m = _model(variant)
    idx, tags = _inputs()
    t0 = 6
    idx2 = idx.clone()
    idx2[:, t0] = (idx2[:, t0] + 1) % 7
    with torch.no_grad():
        out1, out2 = m((idx, tags))[0], m((idx2, tags))[0]
    torch.testing.assert_close(out1[:, :t0], out2[:, :t0])
    assert (out1[:, t0:] - out2[:, t0:]).abs().max() > 1e-6


def test_param_counts_every_equals_input_slots_adds_its_channel():
    a, b, c = _model("input"), _model("every"), _model("slots", n_slots=2)
    assert a.num_params() == b.num_params()
    C, K, L = 12, 2, 3
    slot_params = (C * K + K) + K * C * C + K * C + 2 * C * C  # gate, write, init, q, o
    assert c.num_params() - a.num_params() == slot_params + L * C * C + C  # + read, ln_s


def test_tag_share_by_hand():
    x = torch.tensor([[0.0], [2.0], [1.0], [3.0]])
    lab = torch.tensor([0, 0, 1, 1])
    # mean 1.5, total 5; class means 1 and 2, between 2 * 0.25 + 2 * 0.25 = 1.
    assert tag_share(x, lab) == pytest.approx(0.2)
    assert tag_share(torch.tensor([[1.0], [1.0], [5.0], [5.0]]), lab) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="features must vary"):
        tag_share(torch.ones(4, 2), lab)


def test_steps_to_loss_by_hand():
    losses = [5, 4, 3, 2, 1, 0.5, 0.2, 0.1]
    assert steps_to_loss(losses, 3.0, window=2) == 3     # (3 + 2) / 2 = 2.5
    assert steps_to_loss(losses, 0.2, window=2) == 7     # (0.2 + 0.1) / 2 = 0.15
    assert steps_to_loss(losses, 0.01, window=2) is None


def test_measure_tag_reads_the_slots():
    m = _model("slots", n_layer=2)
    perms = tag_perms(3, 7)
    out = measure_tag(m, perms, n_seq=40, T=11, n_probe=300)
    assert 0 <= out["probe_read"] <= 1 and len(out["probe"]) == 3
    assert out["loss"] > 0


def _targets_right(idx, tags, perms):
    y = torch.full_like(idx, -1)
    for b in range(idx.shape[0]):
        for t in range(1, idx.shape[1]):
            y[b, t] = perms[tags[b], idx[b, t - 1]]
    return y


def _targets_current_token(idx, tags, perms):
    y = perms[tags[:, None], idx]
    y[:, 0] = -1
    return y


def _share_right(x, lab):
    x = x.double() - x.double().mean(0)
    means = torch.stack([x[lab == k].mean(0) for k in range(int(lab.max()) + 1)])
    counts = torch.bincount(lab).double()
    return float((counts[:, None] * means ** 2).sum() / (x ** 2).sum())


def _share_unweighted(x, lab):
    x = x.double() - x.double().mean(0)
    means = torch.stack([x[lab == k].mean(0) for k in range(int(lab.max()) + 1)])
    return float(means.pow(2).sum() * len(x) / means.shape[0] / (x ** 2).sum())


def test_check_tag_targets_accepts_right_rejects_wrong(capsys):
    from phaselib.exercises import check_tag_targets

    assert check_tag_targets(_targets_right) is True
    with pytest.raises(AssertionError, match="the previous token, not the current one"):
        check_tag_targets(_targets_current_token)

    def stub(*a):
        raise NotImplementedError

    assert check_tag_targets(stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def test_check_tag_share_accepts_right_rejects_wrong(capsys):
    from phaselib.exercises import check_tag_share

    assert check_tag_share(_share_right) is True
    with pytest.raises(AssertionError, match="tag share on unequal class sizes"):
        check_tag_share(_share_unweighted)
    assert "all checks passed" in capsys.readouterr().out


def test_variants_share_their_initial_weights_under_one_seed():
    a, b, c = _model("input", seed=7), _model("every", seed=7), _model("slots", seed=7)
    sa, sc = a.state_dict(), c.state_dict()
    for name, w in sa.items():
        torch.testing.assert_close(b.state_dict()[name], w)
        torch.testing.assert_close(sc[name], w, msg=f"{name} starts differently with slots")
    assert set(sc) - set(sa)  # the slot channel's own weights


def test_lookup_task_targets_by_hand():
    from phaselib.preconditioning import lookup_task_batch

    perms = torch.tensor([[1, 2, 0], [2, 0, 1]])
    table = {0: {0: 1, 1: 2, 2: 0}, 1: {0: 2, 1: 0, 2: 1}}  # written out, not perms
    (idx, tags), y = lookup_task_batch(6, 8, perms,
                                       generator=torch.Generator().manual_seed(3))
    assert idx.shape == (6, 8) and y.shape == (6, 8)
    for b in range(6):
        ctx, k = idx[b, :4].tolist(), tags[b].item()
        assert max(ctx) < 3 and y[b, :4].tolist() == [-1] * 4    # values, no targets
        for t in range(4, 8):
            i = idx[b, t].item() - 3                             # query token 3 + i
            assert 0 <= i < 4
            assert y[b, t].item() == table[k][ctx[i]]
    with pytest.raises(ValueError, match="T must be even"):
        lookup_task_batch(2, 7, perms)
    with pytest.raises(ValueError, match="permutation"):
        lookup_task_batch(2, 8, torch.tensor([[0, 0, 1], [2, 0, 1]]))


@pytest.mark.parametrize("variant", ["input", "every", "slots"])
def test_tag_from_keeps_the_tag_out_of_earlier_positions(variant):
    m = _model(variant, tag_from=5)
    idx, tags = _inputs()
    with torch.no_grad():
        out1, out2 = m((idx, tags))[0], m((idx, (tags + 1) % 3))[0]
    torch.testing.assert_close(out1[:, :5], out2[:, :5])     # before tag_from: blind
    assert (out1[:, 5:] - out2[:, 5:]).abs().min() > 0     # every later one: not
    with pytest.raises(ValueError, match="tag_from"):
        _model(variant, tag_from=11)


def test_task_shape_names_the_vocabulary_and_the_tagged_positions():
    from phaselib.preconditioning import task_shape

    assert task_shape("previous", 16, 16) == (16, 0)
    assert task_shape("lookup", 16, 16) == (24, 8)
    with pytest.raises(ValueError, match="task must be one of"):
        task_shape("copy", 16, 16)


def test_chain_task_follows_the_pointer_twice_by_hand():
    from phaselib.preconditioning import chain_task_batch

    perms = torch.tensor([[1, 2, 3, 0], [3, 0, 1, 2]])
    table = {0: [1, 2, 3, 0], 1: [3, 0, 1, 2]}               # written out, not perms
    (idx, tags), y = chain_task_batch(7, 8, perms,
                                      generator=torch.Generator().manual_seed(5))
    assert idx.shape == (7, 8) and y.shape == (7, 8)
    hops_differ = 0
    for b in range(7):
        ctx, k = idx[b, :4].tolist(), tags[b].item()
        assert max(ctx) < 4 and y[b, :4].tolist() == [-1] * 4   # pointers, no targets
        for t in range(4, 8):
            i = idx[b, t].item() - 4                            # query token 4 + i
            assert 0 <= i < 4
            first = ctx[i]                                      # one hop
            second = ctx[first]                                 # and the second
            assert y[b, t].item() == table[k][second]
            hops_differ += second != first
    assert hops_differ > 0      # the second hop is not the first one under another name
    with pytest.raises(ValueError, match="T // 2 = 4 columns"):
        chain_task_batch(2, 8, torch.tensor([[1, 2, 0], [2, 0, 1]]))
    with pytest.raises(ValueError, match="T must be even"):
        chain_task_batch(2, 9, perms)


def test_chain_task_shape_needs_one_value_per_context_position():
    from phaselib.preconditioning import task_shape

    assert task_shape("chain", 8, 16) == (16, 8)
    with pytest.raises(ValueError, match="vocab must equal T // 2 = 8"):
        task_shape("chain", 16, 16)
