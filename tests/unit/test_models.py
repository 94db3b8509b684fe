"""The model registry: build by name, unknown names refused, widths matched by count."""

import pytest
import torch

from phaselib.models import MODELS, build_model, kind_of, width_for_params
from phaselib.phase_lm import PhaseLM
from phaselib.transformer import TinyTransformer


def test_build_model_gives_the_named_class_with_the_given_fields():
    m = build_model("transformer", 11, block_size=5, n_layer=3, n_head=2, n_embd=8)
    assert type(m) is TinyTransformer and len(m.blocks) == 3 and m.wte.weight.shape == (11, 8)
    p = build_model("phase", 11, block_size=5, n_layer=1, n_head=2, n_embd=8)
    assert type(p) is PhaseLM and p.cfg.vocab_size == 11
    assert sorted(MODELS) == ["phase", "transformer"]


def test_kind_of_names_the_class_and_refuses_others():
    m = build_model("phase", 7, block_size=4, n_layer=1, n_head=1, n_embd=4)
    assert kind_of(m) == "phase"
    with pytest.raises(TypeError, match="model must be one of"):
        kind_of(torch.nn.Linear(2, 2))


def test_build_model_rejects_unknown_names():
    with pytest.raises(ValueError, match="kind must be one of"):
        build_model("rnn", 5)
    with pytest.raises(ValueError, match=r"\['n_heads'\]"):
        build_model("transformer", 5, n_heads=2)


def test_width_for_params_finds_the_hand_counted_width():
    # A bias-free transformer with tied embeddings has V*C + L*(12 C^2 + 2 C) + C parameters
    # (position table left out). V=10, L=1: C=16 gives 160 + 3072 + 32 + 16 = 3,280;
    # C=24 gives 240 + 6912 + 48 + 24 = 7,224.
    assert build_model("transformer", 10, n_layer=1, n_head=1, n_embd=16).num_params() == 3280
    assert build_model("transformer", 10, n_layer=1, n_head=1, n_embd=24).num_params() == 7224
    assert width_for_params("transformer", 10, 3280, multiple=8, n_layer=1, n_head=1) == 16
    assert width_for_params("transformer", 10, 6000, multiple=8, n_layer=1, n_head=1) == 24
    assert width_for_params("transformer", 10, 4000, multiple=8, n_layer=1, n_head=1) == 16
