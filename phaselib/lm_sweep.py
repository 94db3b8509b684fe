"""The language-model table as one sweep: `python -m phaselib.sweep lm`.

Book: Part IV, "The phase-transport language model". A cell is a model variant x block
(context length) x seed x budget, on the built-in Shakespeare plays (90/10 split), 4
layers x 128 wide, `TOKENS_PER_STEP` tokens per step at every block (batch = 1024 /
block), AdamW with warmup and cosine decay over the cell's steps.

Budgets: "steps" trains `STEPS[block]` steps at learning rate `LR`. The main models at
the blocks of `LONG_STEPS` also train `LONG_STEPS[block]` steps at `LONG_LR` (cells whose
base_steps and lr say so), with one seed at `LR` beside them to show what the rate does
to each model. "time" trains for the time the
transformer takes for those steps, converted into steps with the per-step CPU times of
`lm_speed.json` (`python -m phaselib.bench lm-speed`, one thread, median of repeats):
steps = round(STEPS[block] * t_transformer / t_variant). The wall clock of the
training run itself is never used, since this machine is shared and loaded; the
transformer is the reference, so it has no "time" cells (its "steps" cell is both).

Each cell records: the held-out loss over a fixed sample (the first `EVAL_TOKENS`
tokens of the held-out split, every target scored once, non-overlapping windows), the
loss by position in the window over the same windows, parameters, steps, final training
loss, CPU seconds of training, and (time cells) the per-step times used.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .lm_runs import load_corpus, train_lm
from .models import build_model
from .results_files import results_path
from .train import TrainConfig, _window_losses

__all__ = ["VARIANTS", "MAIN", "ABLATIONS", "BASELINES", "BASELINE_LONG_BLOCKS", "STEPS",
           "BASELINE_SPEED_PATH", "LR", "LONG_STEPS", "LONG_LR", "LONG_ABLATIONS",
           "RATES", "BLOCKS",
           "TOKENS_PER_STEP", "EVAL_TOKENS", "SHAPE", "SPEED_PATH", "variant_model",
           "time_budget_steps", "budget_current", "run_cell", "sweep", "merge_results"]

SHAPE = dict(n_layer=4, n_embd=128, n_head=4)          # the CLI's defaults
TOKENS_PER_STEP = 1024                                   # 16 x 64, 4 x 256, 1 x 1024
BLOCKS = (64, 256, 1024)
STEPS = {64: 500, 256: 500, 1024: 500}                   # reduced (the issue used 2000)
LR = 1e-3                     # nanoGPT's rate, for every cell but the long ones
LONG_STEPS = {64: 2000, 1024: 2000}  # nanoGPT's 2000 steps: the main models and ...
LONG_LR = 3e-3                # ... at a rate that suits models this small, with a
                              # seed-0 check of every long model at each of RATES
# The rates every long model is tried at (seed 0, equal steps): its rate is the one of
# these with the lowest held-out loss (`best_rate`); the three-seed cells are at LONG_LR.
RATES = (LR, LONG_LR, 1e-2)
EVAL_TOKENS = 131_072
SPEED_PATH = "book/part4/results/lm_speed.json"
OUT = "book/part4/results/lm.json"

# name: (kind, config fields). The ablations change one thing of "phase-window", which
# is 116 wide as in the runs (822k parameters against the transformer's 796k; at
# 128 it would have 996k); "phase" keeps the width 128 (733k).
_W = {"window": 8, "n_embd": 116}
VARIANTS: dict[str, tuple[str, dict]] = {
    "transformer": ("transformer", {}),
    "phase": ("phase", {}),
    "phase-window": ("phase", _W),
    "window-only": ("phase", _W | {"features": "none", "n_slots": 0}),
    "mean-diff": ("phase", _W | {"features": "mean_diff"}),
    "no-slots": ("phase", _W | {"n_slots": 0}),
    "sparsemax": ("phase", _W | {"selector": "sparsemax"}),
    "hard-st": ("phase", _W | {"selector": "hard_st"}),
    "transformer-rope": ("transformer", {"pos": "rope"}),
}
MAIN = ("transformer", "phase", "phase-window")
ABLATIONS = ("window-only", "mean-diff", "no-slots", "sparsemax", "hard-st")
# ... the two ablations that say what the windowed model's pyramid adds: the window
# alone (no pyramid, no slots) and the window with block-mean differences in place of
# transport. Their long cells come after everything else, so that they add to the file.
LONG_ABLATIONS = ("window-only", "mean-diff")
# A second baseline: the transformer with rotary positions instead of a position table.
# Equal steps at every block; at BASELINE_LONG_BLOCKS also the long cells, with time
# cells there too: its step costs a little more than the table transformer's (turning
# queries and keys), measured with the table transformer in the same run of
# `python -m phaselib.bench lm-speed --variants transformer transformer-rope --out
# BASELINE_SPEED_PATH`, so that its time budget compares two times taken together.
BASELINES = ("transformer-rope",)
BASELINE_LONG_BLOCKS = (64, 1024)  # where it also runs the long cells
BASELINE_SPEED_PATH = "book/part4/results/lm_speed_rope.json"


def variant_model(variant: str, vocab_size: int, block: int):
    """A fresh model of `variant` (a VARIANTS key) at context `block`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    kind, cfg = VARIANTS[variant]
    return build_model(kind, vocab_size, **({"block_size": block} | SHAPE | cfg))


def _speed_rows(path) -> dict:
    doc = json.loads(results_path(path).read_text(encoding="utf-8"))
    return {(r["variant"], r["block"]): r for r in doc["rows"]}, doc.get("provenance", {})


def time_budget_steps(variant: str, block: int, base_steps: int,
                      speed_path=SPEED_PATH) -> tuple[int, dict]:
    """(steps, record): the steps `variant` gets in the time the transformer takes for
    `base_steps` steps, from the CPU seconds per step in the speed file."""
    rows, prov = _speed_rows(speed_path)
    missing = [v for v in ("transformer", variant) if (v, block) not in rows]
    if missing:
        raise ValueError(f"{speed_path} has no per-step time for {missing} at block "
                         f"{block}; run python -m phaselib.bench lm-speed --variants ...")
    t_ref = rows[("transformer", block)]["cpu_s_per_step"]
    t_var = rows[(variant, block)]["cpu_s_per_step"]
    steps = max(1, round(base_steps * t_ref / t_var))
    return steps, {"cpu_s_per_step": t_var, "transformer_cpu_s_per_step": t_ref,
                   "speed_file": str(speed_path), "speed_commit": prov.get("git_commit")}


def budget_current(cell: dict) -> bool:
    """Whether a stored cell's budget comes from inputs HEAD still holds: equal-steps
    cells always; an equal-time cell when the speed file it was budgeted from is the
    one here (its recorded commit), so that a re-run gets the same steps."""
    if cell["params"].get("budget") != "time":
        return True
    _, prov = _speed_rows(cell["params"].get("speed_path", SPEED_PATH))
    return cell["result"].get("speed_commit") == prov.get("git_commit")


def _held_out(model, va, block: int) -> tuple[float, list[float]]:
    """(mean loss over every target of va, mean loss at each position of full windows)."""
    total, count, rows = 0.0, 0, []
    for row, first in _window_losses(model, va, block, max(1, 8192 // block), None, None):
        total += float(row[first:].double().sum())
        count += len(row) - first
        if len(row) == block:
            rows.append(row)
    pos = torch.stack(rows).double().mean(0)
    return total / count, [round(float(v), 4) for v in pos]


def run_cell(variant: str, block: int, seed: int, budget: str, base_steps: int,
             lr: float = LR, threads: int = 1, speed_path=SPEED_PATH) -> dict:
    """Train and score one cell (see the module docstring); returns its results."""
    if budget not in ("steps", "time"):
        raise ValueError(f"budget must be 'steps' or 'time', got {budget!r}")
    torch.set_num_threads(threads)
    tok, tr, va = load_corpus()
    extra = {}
    steps = base_steps
    if budget == "time":
        steps, extra = time_budget_steps(variant, block, base_steps, speed_path)
    torch.manual_seed(seed)
    model = variant_model(variant, tok.vocab_size, block)
    batch = max(1, TOKENS_PER_STEP // block)
    cfg = TrainConfig(steps=steps, lr=lr, warmup=min(100, steps // 5), progress=False)
    hist, stats = train_lm(model, tr, cfg, block=block, batch=batch, seed=seed)
    val, pos = _held_out(model, va[:EVAL_TOKENS], block)
    return {"val_loss": val, "position_losses": pos, "params": model.num_params(),
            "steps": steps, "batch": batch, "tokens_per_step": batch * block,
            "final_train_loss": round(sum(hist.loss[-20:]) / len(hist.loss[-20:]), 5),
            "train_cpu_s": round(stats["train_cpu_s"], 2),
            "train_wall_s": round(stats["train_s"], 2),
            "threads": threads, "eval_tokens": min(EVAL_TOKENS, len(va)) - 1,
            "lr": cfg.lr, "warmup": cfg.warmup, **extra}


def sweep(seeds=(0, 1, 2)):
    """The "lm" sweep: main variants at blocks 64, 256, 1024 (steps and time budgets),
    then the ablations, then the main variants at `LONG_STEPS`, then the second
    baseline (steps, then its long time cells), then the `LONG_ABLATIONS` at
    `LONG_STEPS`; cells in the order they should be run."""
    from .sweep import SweepSpec

    cells = []
    for block in BLOCKS:
        for group in (MAIN, ABLATIONS):
            for budget in ("steps", "time"):
                for seed in seeds:
                    for v in group:
                        if budget == "time" and v == "transformer":
                            continue          # the reference: its steps cell is both
                        cells.append({"variant": v, "block": block, "seed": int(seed),
                                      "budget": budget, "base_steps": STEPS[block]})
    for block, long_steps in LONG_STEPS.items():
        long_ = {"block": block, "base_steps": long_steps}
        for budget in ("steps", "time"):
            for seed in seeds:
                for v in MAIN:
                    if budget == "time" and v == "transformer":
                        continue
                    cells.append({"variant": v, "seed": int(seed), "budget": budget,
                                  "lr": LONG_LR} | long_)
        cells += [{"variant": v, "seed": int(seeds[0]), "budget": "steps", "lr": LR}
                  | long_ for v in MAIN]
    for v in BASELINES:
        cells += [{"variant": v, "block": block, "seed": int(seed), "budget": "steps",
                   "base_steps": STEPS[block]} for block in BLOCKS for seed in seeds]
        cells += [{"variant": v, "block": block, "seed": int(seed), "budget": "steps",
                   "lr": LONG_LR, "base_steps": LONG_STEPS[block]}
                  for block in BASELINE_LONG_BLOCKS for seed in seeds]
        cells += [{"variant": v, "block": block, "seed": int(seed), "budget": "time",
                   "lr": LONG_LR, "base_steps": LONG_STEPS[block],
                   "speed_path": BASELINE_SPEED_PATH}
                  for block in BASELINE_LONG_BLOCKS for seed in seeds]
    for block, long_steps in LONG_STEPS.items():
        long_ = {"block": block, "base_steps": long_steps}
        for budget in ("steps", "time"):
            cells += [{"variant": v, "seed": int(seed), "budget": budget, "lr": LONG_LR}
                      | long_ for seed in seeds for v in LONG_ABLATIONS]
        cells += [{"variant": v, "seed": int(seeds[0]), "budget": "steps", "lr": LR}
                  | long_ for v in LONG_ABLATIONS]
    # The third rate of RATES for every long model, and the rotary baseline's LR: added
    # last, so that they add to the file.
    for block, long_steps in LONG_STEPS.items():
        long_ = {"block": block, "base_steps": long_steps}
        base = BASELINES if block in BASELINE_LONG_BLOCKS else ()
        cells += [{"variant": v, "seed": int(seeds[0]), "budget": "steps", "lr": LR}
                  | long_ for v in base]
        for lr in (r for r in RATES if r not in (LR, LONG_LR)):
            cells += [{"variant": v, "seed": int(seeds[0]), "budget": "steps", "lr": lr}
                      | long_ for v in MAIN + base + LONG_ABLATIONS]
    return SweepSpec("lm", OUT, cells, run_cell,
                     "PhaseLM variants vs the transformer at blocks 64/256/1024, equal "
                     "steps and equal (CPU-time-converted) time",
                     rerunnable=budget_current)


def merge_results(paths, out=OUT, allow_dirty: bool = False) -> Path:
    """Merge results files of sweep "lm" run in parallel (one process per seed, each with
    its own --out) into `out`: `phaselib.sweep.merge_sweep_files("lm", ...)`."""
    from .sweep.store import merge_sweep_files

    return merge_sweep_files("lm", paths, out, allow_dirty=allow_dirty)
