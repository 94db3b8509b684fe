"""Checkpoints: a model, its configs, vocabulary, history and (optionally) the state to
resume its training, saved as plain data.

Book: Part IV, "The phase-transport language model", and "Running at scale". A
checkpoint is a dict of tensors, strings, numbers and lists, so
`torch.load(path, weights_only=True)` reads it and nothing is unpickled. Files are
written atomically (`provenance.atomic_torch_save`): a kill during a save leaves the
previous checkpoint in place. A file that is not a checkpoint is refused with a
ValueError saying so (never with advice to load it unsafely).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .models import MODELS, kind_of
from .provenance import atomic_torch_save
from .train import History, TrainConfig

__all__ = ["FORMAT", "Checkpoint", "save_checkpoint", "load_checkpoint"]

FORMAT = "phaselib-lm-checkpoint-v1"


@dataclass
class Checkpoint:
    """model (rebuilt, in eval mode), train_config, vocab, history, extra (a dict of
    plain data), and resume: None, or the state `python -m phaselib.train --resume`
    continues from (step, optimizer, rng, run)."""

    model: nn.Module
    train_config: TrainConfig | None
    vocab: list[str] | None
    history: History | None
    extra: dict
    resume: dict | None = field(default=None)


def save_checkpoint(path: str | Path, model: nn.Module, cfg: TrainConfig | None = None, *,
                    vocab: list[str] | None = None, history: History | None = None,
                    extra: dict | None = None, resume: dict | None = None) -> Path:
    """Write model weights and configs as plain data (readable with weights_only=True),
    atomically; returns the path. `resume`: plain data to continue training from (see
    `phaselib.cli_runs`)."""
    ckpt = {"format": FORMAT, "kind": kind_of(model), "model_config": asdict(model.cfg),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "train_config": None if cfg is None else asdict(cfg),
            "vocab": None if vocab is None else list(vocab),
            "history": None if history is None else asdict(history),
            "extra": dict(extra or {}), "resume": resume}
    path = atomic_torch_save(ckpt, Path(path))
    # A run killed during an earlier save leaves its temporary file (a whole checkpoint's
    # size) beside the target; the save that succeeds after it removes it.
    for left in path.parent.glob(f".{path.name}.*.tmp"):
        left.unlink(missing_ok=True)
    return path


def _not_a_checkpoint(path, why: str) -> ValueError:
    return ValueError(f"{path} is not a phaselib language-model checkpoint ({FORMAT}): "
                      f"{why}")


def load_checkpoint(path: str | Path, device="cpu") -> Checkpoint:
    """Rebuild the model saved by `save_checkpoint` (torch.load with weights_only=True).

    Raises FileNotFoundError for a missing file and ValueError for any other file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path must be an existing checkpoint file, got {str(path)!r}")
    try:
        with warnings.catch_warnings():  # a pickle of another protocol: refused below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            ckpt = torch.load(path, map_location=device, weights_only=True)
    except OSError:
        raise
    except Exception:  # UnpicklingError, EOFError, KeyError, BadZipFile...: not ours
        # torch's own message here suggests weights_only=False; that would run any
        # code a file of unknown origin holds, so it is not repeated.
        raise _not_a_checkpoint(path, "it does not hold plain tensors and numbers (a "
                                "torch.save of weights and configs)") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise _not_a_checkpoint(path, "it has no format field naming it")
    if ckpt.get("kind") not in MODELS:
        raise _not_a_checkpoint(path, f"unknown model kind {ckpt.get('kind')!r}")
    cfg_cls, model_cls = MODELS[ckpt["kind"]]
    model = model_cls(cfg_cls(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    tc, hist = ckpt["train_config"], ckpt["history"]
    return Checkpoint(model, None if tc is None else TrainConfig(**tc), ckpt["vocab"],
                      None if hist is None else History(**hist), ckpt["extra"],
                      ckpt.get("resume"))
