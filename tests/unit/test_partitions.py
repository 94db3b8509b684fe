"""Partitions of a character stream: cut counting, aligned starts, block-local batches."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from phaselib.partitions import (aligned_starts, block_batch, block_lengths, cut_mask, cut_share,
                                 expected_cut_share, geometric_starts, line_spans, loss_by_offset,
                                 shuffled_starts, word_spans)

TEXT = "Romeo:\nBut, soft! what light\nthrough yonder window breaks?\n\nJuliet:\nAy me!\n"


def test_spans_cover_words_and_lines():
    assert [TEXT[s:e] for s, e in word_spans(TEXT)][:5] == ["Romeo", "But", "soft", "what", "light"]
    assert [TEXT[s:e] for s, e in line_spans(TEXT)] == ["Romeo:", "But, soft! what light",
                                                        "through yonder window breaks?", "Juliet:", "Ay me!"]


@settings(max_examples=40, deadline=None)
@given(s=st.integers(0, 200), L=st.integers(1, 30), size=st.integers(1, 40))
def test_cut_mask_agrees_with_counting_boundaries_inside_the_span(s, L, size):
    inside = any(b % size == 0 for b in range(s + 1, s + L))
    assert cut_mask(np.array([[s, s + L]]), size)[0] == inside


def test_expected_share_is_the_average_over_offsets():
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 1000, 300)
    spans = np.stack([starts, starts + rng.integers(1, 12, 300)], 1)
    size = 7
    avg = np.mean([cut_mask(spans, size, offset=o).mean() for o in range(size)])
    assert avg == pytest.approx(expected_cut_share(spans[:, 1] - spans[:, 0], size))


def test_one_character_spans_are_never_cut_and_long_ones_always():
    assert cut_share(np.array([[5, 6], [9, 10]]), 2) == 0.0
    assert cut_mask(np.array([[3, 40]]), 8).all()


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), size=st.integers(1, 50), seed=st.integers(0, 1000))
def test_aligned_starts_fall_on_units_and_keep_about_n_over_size_blocks(n, size, seed):
    rng = np.random.default_rng(seed)
    units = np.unique(np.concatenate([[0], rng.integers(0, n, max(1, n // 4))]))
    starts = aligned_starts(n, size, units)
    assert starts[0] == 0 and (np.diff(starts) > 0).all() and starts[-1] < n
    assert set(starts.tolist()) <= set(units.tolist())
    assert len(starts) <= len(geometric_starts(n, size))


def test_max_len_splits_long_blocks():
    starts = aligned_starts(100, 10, np.array([0, 60]), max_len=15)
    assert block_lengths(starts, 100).max() <= 15


def test_shuffled_starts_keep_the_lengths():
    starts = aligned_starts(500, 16, word_spans("ab cde f " * 60)[:, 0])
    sh = shuffled_starts(starts, 500, seed=3)
    assert sorted(block_lengths(sh, 500)) == sorted(block_lengths(starts, 500))


def test_block_batch_starts_with_bos_and_targets_every_character():
    data = torch.arange(10, 20)
    x, y = block_batch(data, np.array([0, 3, 7]), [0, 2], bos=99)
    assert x.tolist() == [[99, 10, 11], [99, 17, 18]]
    assert y.tolist() == [[10, 11, 12], [17, 18, 19]]
    x, y = block_batch(data, np.array([0, 3, 7]), [2, 1], bos=99)
    assert y[0].tolist() == [17, 18, 19, -1] and x[1].tolist() == [99, 13, 14, 15]


def test_loss_by_offset_counts_every_character_once():
    from phaselib.transformer import TinyTransformer, TransformerConfig

    torch.manual_seed(0)
    m = TinyTransformer(TransformerConfig(vocab_size=6, block_size=8, n_layer=1, n_head=1, n_embd=8))
    data = torch.randint(0, 5, (37,))
    starts = aligned_starts(37, 5, np.arange(0, 37, 3), max_len=8)
    tot, cnt = loss_by_offset(m, data, starts, bos=5, batch=4)
    assert cnt.sum() == 37 and np.isfinite(tot).all()


class _DeviceProbe(torch.nn.Module):
    """A model whose parameter lives on the meta device (a stand-in for a GPU): it
    records where its input arrives and answers uniform logits over 6 tokens."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1, device="meta"))
        self.seen = []

    def forward(self, x):
        self.seen.append(x.device.type)
        return torch.zeros(*x.shape, 6), None


def test_loss_by_offset_sends_batches_to_the_model_device():
    m = _DeviceProbe()
    data = torch.randint(0, 5, (12,))
    tot, cnt = loss_by_offset(m, data, np.array([0, 4, 8]), bos=5, batch=2)
    assert m.seen == ["meta", "meta"]                  # 3 blocks in batches of 2
    # Uniform logits over 6 tokens: every character costs log 6 nats; 3 blocks of 4.
    np.testing.assert_allclose(tot, np.full(4, 3 * np.log(6)), rtol=1e-6)
    assert cnt.tolist() == [3, 3, 3, 3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_loss_by_offset_on_gpu_equals_cpu():
    from phaselib.transformer import TinyTransformer, TransformerConfig

    torch.manual_seed(0)
    m = TinyTransformer(TransformerConfig(vocab_size=6, block_size=8, n_layer=1, n_head=1,
                                          n_embd=8))
    data = torch.randint(0, 5, (37,))
    starts = aligned_starts(37, 5, np.arange(0, 37, 3), max_len=8)
    cpu = loss_by_offset(m, data, starts, bos=5, batch=4)
    gpu = loss_by_offset(m.cuda(), data.cuda(), starts, bos=5, batch=4)
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-4)
    assert gpu[1].tolist() == cpu[1].tolist()


@pytest.mark.parametrize("call, match", [(lambda: cut_mask(np.zeros((3, 2)), 0), "size must be"),
                                         (lambda: cut_mask(np.zeros(3), 4), r"spans must have shape"),
                                         (lambda: geometric_starts(10, 2.5), "size must be")])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_budget_batch_scores_exactly_the_budget_of_characters():
    from phaselib.partitions import budget_batch
    data = torch.arange(1000) % 50
    starts = np.array([0, 3, 40, 41, 100, 230, 500, 777])
    for n_chars, seed in ((64, 0), (200, 1), (513, 2)):
        x, y = budget_batch(data, starts, n_chars, bos=50,
                            generator=torch.Generator().manual_seed(seed))
        assert int((y >= 0).sum()) == n_chars
        assert x.shape == y.shape and (x[:, 0] == 50).all()
    with pytest.raises(ValueError, match="size must be a positive int"):
        budget_batch(data, starts, 0, bos=50)


def test_partition_starts_controls_keep_the_aligned_lengths_and_ignore_the_text():
    from phaselib.partitions import partition_starts
    text = (TEXT * 40)
    n = len(text)
    for unit in ("word", "line"):
        aligned = partition_starts(text, 16, f"{unit}-aligned")
        shuffled = partition_starts(text, 16, f"{unit} lengths, shuffled", seed=3)
        assert sorted(block_lengths(aligned, n)) == sorted(block_lengths(shuffled, n))
        assert not np.array_equal(aligned, shuffled)
    spans = word_spans(text)
    aligned = partition_starts(text, 16, "word-aligned")
    assert np.isin(aligned[1:], spans[:, 0]).mean() > 0.9   # aligned starts are word starts
    assert np.array_equal(partition_starts(text, 16, "geometric"), np.arange(0, n, 16))
    with pytest.raises(ValueError, match="name must be one of"):
        partition_starts(text, 16, "sentence-aligned")


def test_loss_by_char_sums_by_offset_to_loss_by_offset():
    from phaselib.partitions import loss_by_char
    from phaselib.transformer import TinyTransformer, TransformerConfig

    torch.manual_seed(1)
    m = TinyTransformer(TransformerConfig(vocab_size=6, block_size=8, n_layer=1, n_head=1,
                                          n_embd=8))
    data = torch.randint(0, 5, (41,))
    starts = aligned_starts(41, 5, np.arange(0, 41, 3), max_len=8)
    per_char = loss_by_char(m, data, starts, bos=5, batch=3)
    tot, cnt = loss_by_offset(m, data, starts, bos=5, batch=4)
    assert np.isfinite(per_char).all() and len(per_char) == 41
    offset = np.arange(41) - starts[np.searchsorted(starts, np.arange(41), "right") - 1]
    by_offset = np.bincount(offset, weights=per_char, minlength=len(tot))
    assert np.allclose(by_offset[: len(tot)], tot, atol=1e-4)


def test_near_boundary_marks_the_first_k_characters_of_every_block_of_any_partition():
    from phaselib.partitions import near_boundary

    mask = near_boundary(20, [np.array([0, 10]), np.array([0, 3, 17])], k=2)
    assert np.flatnonzero(mask).tolist() == [0, 1, 3, 4, 10, 11, 17, 18]
    # a block shorter than k marks only its own characters
    assert np.flatnonzero(near_boundary(5, [np.array([0, 1, 4])], k=3)).tolist() == \
        [0, 1, 2, 3, 4]


def test_same_chars_gap_scores_both_models_on_the_same_characters():
    from phaselib.partitions import PARTITIONS
    from phaselib.partitions_runs import SAME_CHARS_PAIR, SAME_CHARS_PAIRS, same_chars_gap
    n = 40
    control = {"char_loss": np.full(n, 2.0), "starts": np.array([0, 10, 30]),
               "loss": 2.0}
    aligned = {"char_loss": np.full(n, 1.5), "starts": np.array([0, 20]), "loss": 1.5}
    aligned["char_loss"][25:] = 9.0        # far from any boundary: must not count
    r = same_chars_gap(0, head_chars=2, runs=dict(zip(SAME_CHARS_PAIR,
                                                      (control, aligned))))
    # near a boundary of either partition: 0, 1, 10, 11, 20, 21, 30, 31
    assert r["share"] == 8 / n
    assert r["gap"] == pytest.approx(2.0 - (6 * 1.5 + 2 * 9.0) / 8)
    # each pair is a control and the partition it shuffles, both trained by the sweep
    for control, aligned in SAME_CHARS_PAIRS.values():
        assert {control, aligned} <= set(PARTITIONS)
        assert control.split()[0] == aligned.split("-")[0] and "shuffled" in control


def test_the_sweep_tries_every_rate_on_seed_zero_then_uses_the_best():
    from phaselib.partitions import PARTITIONS
    from phaselib.partitions_runs import F4_DEFAULTS, F4_RATES, F4_SWEEP_STEPS, sweep

    assert len(sweep().cells) == len(PARTITIONS) * (len(F4_RATES) + 4)   # five seeds
    cells = sweep(seeds=(0, 1, 2), out="r.json").cells
    n_rate = len(PARTITIONS) * len(F4_RATES)
    assert all(c["seed"] == 0 and isinstance(c["lr"], float) for c in cells[:n_rate])
    assert {(c["partition"], c["lr"]) for c in cells[:n_rate]} == {
        (p, r) for p in PARTITIONS for r in F4_RATES}
    assert all(c["lr"] == "best" and c["out"] == "r.json" and c["seed"] in (1, 2)
               for c in cells[n_rate:])
    assert all(c["steps"] == F4_SWEEP_STEPS for c in cells)
    assert F4_SWEEP_STEPS >= 5 * F4_DEFAULTS["steps"]       # off the live plateau


def test_near_loss_gives_the_same_characters_gap_as_two_models_scored_together():
    from phaselib.partitions_runs import SAME_CHARS_PAIR, run_f4, same_chars_gap

    hp = dict(steps=3, n_embd=8, n_head=1, n_layer=1, block=16, eval_chars=3000)
    runs = {name: run_f4(0, name, by_char=True, **hp) for name in SAME_CHARS_PAIR}
    a, b = (runs[name] for name in SAME_CHARS_PAIR)
    assert set(a["near_loss"]) == set(b["near_loss"]) == {"line"}
    g = same_chars_gap(0, head_chars=8, runs=runs)["gap"]
    assert a["near_loss"]["line"] - b["near_loss"]["line"] == pytest.approx(g, abs=1e-9)
    assert np.isfinite(a["val_loss"]) and a["lr"] == 3e-3
    with pytest.raises(ValueError, match="lr='best' needs out"):
        run_f4(0, "geometric", lr="best", **hp)
    with pytest.raises(ValueError, match="lr must be a positive float"):
        run_f4(0, "geometric", lr=-1.0, **hp)


def test_the_same_characters_sweep_runs_both_pairs_on_new_seeds_at_their_best_rates():
    from phaselib.partitions_runs import (F4_SWEEP_STEPS, SAME_CHARS_PAIRS, SAME_RULES,
                                          SAME_SEEDS, sweep)
    from phaselib.sweep import get_spec

    cells = get_spec("f4-same").cells
    assert not set(SAME_SEEDS) & {c["seed"] for c in sweep().cells}
    names = {n for pair in SAME_CHARS_PAIRS.values() for n in pair}
    assert {(c["seed"], c["partition"]) for c in cells} == {
        (s, n) for s in SAME_SEEDS for n in names}
    assert {c["lr"] for c in cells} == {"best"}
    assert {c["steps"] for c in cells} == {F4_SWEEP_STEPS}
    rule = SAME_RULES["f4-misaligned"]["word starts, same characters"]
    assert (rule["threshold"], rule["direction"]) == (0.01, 1)
