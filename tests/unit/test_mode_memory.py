"""The slots chapter's experiment: variants, accuracy windows, the sweep's cells."""

import numpy as np
import pytest
import torch

from phaselib.mode_memory import (ModeConfig, accuracy_between, held_out, mode_model,
                                  run_cell, sweep, train_and_test, variants)


def test_accuracy_between_counts_distances_lo_to_hi_minus_one():
    acc = np.array([1.0, 0.0, 0.5, 0.5, 0.0])     # distances 1 .. 5
    assert accuracy_between(acc, 2, 4) == 0.25    # distances 2, 3
    assert accuracy_between(acc, 1, 6) == 0.4
    with pytest.raises(ValueError, match="need 1 <= lo < hi <= 6"):
        accuracy_between(acc, 3, 7)


def test_variants_build_the_named_memories():
    cfg = ModeConfig(n_embd=8, n_slots=3)
    table = variants(cfg)
    assert mode_model(cfg, **table["window + sink"]).blocks[0].sink is True
    assert mode_model(cfg, **table["window + GRU"]).blocks[1].slots.gru.hidden_size == 24
    assert mode_model(cfg, **table["window + hard slots"]).blocks[0].slots.hard is True
    assert mode_model(cfg, **table["full attention"]).blocks[0].window is None
    assert mode_model(cfg, **table["window"]).blocks[0].slots is None


def test_a_tiny_run_returns_per_position_accuracy_in_range():
    cfg = ModeConfig(train_len=8, test_len=16, n_embd=8, steps=3, batch=4, n_test=5)
    x, y = held_out(cfg, 0)
    assert x.shape == (5, 16)
    _, acc = train_and_test(cfg, 0, x, y)
    assert acc.shape == (15,) and ((acc >= 0) & (acc <= 1)).all()


def test_run_cell_rejects_an_unknown_variant_and_the_sweep_covers_every_seed():
    with pytest.raises(ValueError, match="variant must be one of"):
        run_cell(0, "window + lstm", steps=1)
    spec = sweep(seeds=(0, 1, 2))
    assert spec.out == "book/part4/results/slots.json"
    assert len(spec.cells) == 3 * len(variants(ModeConfig()))
    assert {c["seed"] for c in spec.cells} == {0, 1, 2}
