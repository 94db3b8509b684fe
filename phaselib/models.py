"""The language models by name: build one from a kind and config fields, match widths.

Book: Part IV, "The phase-transport language model". `MODELS` maps a kind ("phase",
"transformer") to its config dataclass and model class; the command line, checkpoints
and the chapter build models only through `build_model`, and `width_for_params` finds the
width at which a model has a target parameter count (for comparisons at equal size).
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from .phase_lm import PhaseLM, PhaseLMConfig
from .transformer import TinyTransformer, TransformerConfig

__all__ = ["MODELS", "build_model", "width_for_params", "kind_of"]

MODELS = {"phase": (PhaseLMConfig, PhaseLM), "transformer": (TransformerConfig, TinyTransformer)}


def build_model(kind: str, vocab_size: int, **config) -> nn.Module:
    """A fresh `PhaseLM` (kind "phase") or `TinyTransformer` ("transformer"); `config`
    sets fields of its config dataclass (unknown names raise)."""
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {sorted(MODELS)}, got {kind!r}")
    cfg_cls, model_cls = MODELS[kind]
    names = {f.name for f in fields(cfg_cls)}
    unknown = sorted(set(config) - names)
    if unknown:
        raise ValueError(f"config has fields {unknown} that {cfg_cls.__name__} does not "
                         f"have; it has {sorted(names)}")
    return model_cls(cfg_cls(vocab_size=vocab_size, **config))


def width_for_params(kind: str, vocab_size: int, target: int, multiple: int = 8,
                     **config) -> int:
    """The n_embd (a multiple of `multiple`, up to 2048) whose model has the parameter
    count closest to `target`, other fields from `config`. Models are built on the meta
    device, so no memory is allocated."""
    best, best_gap = multiple, None
    with torch.device("meta"):
        for width in range(multiple, 2049, multiple):
            n = build_model(kind, vocab_size, n_embd=width, **config).num_params()
            if best_gap is None or abs(n - target) < best_gap:
                best, best_gap = width, abs(n - target)
            if n > target:
                break
    return best


def kind_of(model: nn.Module) -> str:
    """The MODELS key of `model`'s class ("phase" or "transformer")."""
    for kind, (_, cls) in MODELS.items():
        if type(model) is cls:
            return kind
    raise TypeError(f"model must be one of {[c.__name__ for _, c in MODELS.values()]}, "
                    f"got {type(model).__name__}")
