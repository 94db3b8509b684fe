"""The command line `python -m phaselib.train`: train a character language model, or
score a saved one, and report the loss over the whole held-out split.

Book: Part IV, "The phase-transport language model", and "Running at scale".

    python -m phaselib.train --model phase|transformer [--text FILE] [--steps N]
        [--window W] [--n-slots K] [--selector S] [--features transport|mean_diff|none]
        [--lr LR] [--warmup N] [--weight-decay WD] [--beta2 B2]
        [--out ckpt.pt [--save-every N]] [--resume ckpt.pt]
        [--results-json run.json [--allow-dirty]]
    python -m phaselib.train --eval-only ckpt.pt [--results-json run.json]

With `--out`, the checkpoint is written at the end and, with `--save-every N`, every N
steps, each time with what resuming needs (optimizer, step, the data generator and the
RNG states); `--resume ckpt.pt` continues such a run exactly (on CPU, to the same bits)
and refuses a checkpoint made with another model or data configuration. Ctrl-C saves a
resumable checkpoint (with `--out`) and prints the command that continues the run.
`--eval-only CKPT` scores a checkpoint without training (its speed and wall time are
the training run's, as the checkpoint recorded them).

A results file written into the book (`--results-json book/...`) must come from a
commit: the run refuses a working tree with uncommitted changes before it trains, unless
`--allow-dirty`, which marks the file `allow_dirty: true`.

This module reads the flags and checks them; `phaselib.cli_runs` does the two runs and
writes the results record. `python -m phaselib.train` reaches `main` through
`phaselib/train/__main__.py`.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from .cli_runs import run_eval_only, run_training
from .models import MODELS
from .phase_lm import FEATURES
from .provenance import DirtyTreeError, require_clean

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m phaselib.train",
                                description="Train a character language model and report "
                                            "the loss over the whole held-out split.")
    a = p.add_argument
    a("--model", choices=sorted(MODELS), help="required unless --eval-only")
    a("--text", help="a UTF-8 text file (default: the built-in Shakespeare plays)")
    a("--steps", type=int, default=2000)
    a("--block", type=int, default=64)
    a("--batch", type=int, default=12)
    a("--n-layer", type=int, default=4)
    a("--n-embd", type=int, default=128)
    a("--n-head", type=int, default=4)
    a("--window", type=int, default=0, help="phase: exact near-field window (0: none)")
    a("--selector", default="softmax", help="phase: ScaleSelector kind, or none")
    a("--n-slots", type=int, default=4, help="phase: decision slots (0: none)")
    a("--pyr-dim", type=int, default=32, help="phase: width the pyramid runs on")
    a("--features", default="transport", choices=FEATURES,
      help="phase: level features (mean_diff: block-mean differences; none: no pyramid)")
    a("--lr", type=float, default=1e-3)
    a("--warmup", type=int, default=100)
    a("--weight-decay", type=float, default=0.0,
      help="AdamW weight decay on weight matrices and embeddings")
    a("--beta2", type=float, default=0.999, help="AdamW's second-moment decay")
    a("--seed", type=int, default=1337)
    a("--eval-batch", type=int, default=64)
    a("--device", default="auto")
    a("--threads", type=int, default=None)
    a("--sample", type=int, default=0, help="print this many sampled characters")
    a("--prompt", default="\n")
    a("--out", help="write a checkpoint here (at the end, and every --save-every steps)")
    a("--save-every", type=int, default=0, metavar="N",
      help="with --out: also save a resumable checkpoint every N steps "
           "(0: at the end only)")
    a("--resume", metavar="CKPT",
      help="continue the run saved in CKPT (give the same model and data flags); "
           "--out defaults to CKPT")
    a("--results-json", metavar="PATH",
      help="write the run's results (configs, params, held-out loss, loss by position, "
           "speed, history, machine, command) as JSON here; into the book only from a "
           "clean working tree")
    a("--allow-dirty", action="store_true",
      help="write the result even from uncommitted code, marked `allow_dirty: true`")
    a("--eval-only", metavar="CKPT",
      help="do not train: score this checkpoint on the whole held-out split of its "
           "corpus (or --text); the model flags are taken from the checkpoint")
    a("--note", action="append", default=[],
      help="a line of provenance to store in the results file (repeatable)")
    return p


def main(argv: list[str] | None = None) -> dict:
    """The command line (see the module docstring); returns what it prints, as a dict."""
    p = parser()
    args = sys.argv[1:] if argv is None else [str(x) for x in argv]
    a = p.parse_args(args)
    command = "python -m phaselib.train " + shlex.join(args)
    for name in ("steps", "block", "batch", "n_layer", "n_embd", "n_head", "pyr_dim",
                 "eval_batch"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if a.save_every < 0:
        p.error(f"--save-every must be >= 0, got {a.save_every}")
    git = None  # the commit the run starts from, for the results file
    if a.results_json:  # fail now, not after an hour of training
        try:
            git = require_clean(a.results_json, a.allow_dirty)
        except DirtyTreeError as e:
            p.error(str(e))
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if a.device == "auto" else a.device))
    if a.eval_only:
        return run_eval_only(p, a, command, device, git)
    return run_training(p, a, args, command, device, git)
