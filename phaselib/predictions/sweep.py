"""The precomputed runs of the chapter "Seed 000's three predictions, tested".

`python -m phaselib.sweep predictions` writes book/part5/results/predictions.json.
Cells: {"experiment": "heads", "n_head": h, "seed": s} trains the in-context task of
`icl` at width 64 with h heads, then measures accuracy against the number of examples
(to four times the training length), attention entropy and the worst single-token
bomb; {"experiment": "rl", "seed": s, "pretrain_steps": p} pre-trains on the shift
family and fine-tunes with REINFORCE within and across families (and, as a control,
from scratch); p = 1500 is the main run, p = 600 a shorter pre-training beside it.
"""

from __future__ import annotations

import copy
import time

from ..sweep import SweepSpec
from .bombs import bomb_success, worst_bomb
from .icl import ICLTask, accuracy_by_n, query_entropy, same_key_mass, train_icl
from .rl import RLFamily, greedy_accuracy, pretrain, reinforce

__all__ = ["HEADS", "BOMB", "ICL", "RL", "EVAL_BATCH", "train_heads", "heads_accuracy",
           "run_heads", "run_rl", "run", "sweep"]

HEADS = (1, 2, 4, 8)
ICL = {"train_examples": 32, "eval_examples": 128, "n_embd": 64, "steps": 1000}
BOMB = {"n_base": 16, "n_shown": 1, "search_m": 64, "ms": [16, 32, 64, 128]}
RL = {"pretrain_steps": 1500, "short_pretrain_steps": 600, "rl_steps": 300}
EVAL_BATCH = 512     # sequences of each heads cell's accuracy curve and bomb success


def train_heads(n_head: int, seed: int):
    """The model of a heads cell: the in-context task at width ICL["n_embd"] with
    `n_head` heads, trained for ICL["steps"] steps from `seed` (a TinyTransformer whose
    block holds the evaluation's ICL["eval_examples"] rounds)."""
    task = ICLTask(max_examples=ICL["train_examples"])
    return train_icl(task, n_head=n_head, n_embd=ICL["n_embd"], steps=ICL["steps"],
                     seed=seed, block_size=2 * ICL["eval_examples"] + 2 * 64)


def heads_accuracy(model, seed: int) -> dict:
    """A heads cell's first measure: accuracy of `model` and of the ideal observer
    against the number of examples, to ICL["eval_examples"] (`accuracy_by_n`)."""
    task = ICLTask(max_examples=ICL["train_examples"])
    return accuracy_by_n(model, task, n_rounds=ICL["eval_examples"], batch=EVAL_BATCH,
                         seed=seed)


def run_heads(n_head: int, seed: int) -> dict:
    """One model (`train_heads`): the ICL curve (`heads_accuracy`), attention entropy,
    where the attention goes, and the worst single-token bomb with its success."""
    t0 = time.process_time()
    task = ICLTask(max_examples=ICL["train_examples"])
    model = train_heads(n_head, seed)
    acc = heads_accuracy(model, seed)
    n, batch = ICL["eval_examples"], EVAL_BATCH
    ent = query_entropy(model, task, n_rounds=n, batch=batch // 2, seed=seed)
    where = same_key_mass(model, task, n_rounds=n, batch=batch // 2, seed=seed)
    b = dict(BOMB)
    bomb = worst_bomb(model, task, n_base=b["n_base"], n_shown=b["n_shown"],
                      m=b["search_m"], seed=seed)
    bs = bomb_success(model, task, bomb, n_base=b["n_base"], n_shown=b["n_shown"],
                      ms=b["ms"], batch=batch, seed=seed)
    return {"accuracy": acc["model"], "observer": acc["observer"], "entropy": ent,
            "same_key_mass": where["mass"], "same_key_share": where["share"],
            "bomb": bomb, "bomb_success": bs["success"], "bomb_ms": bs["m"],
            "bomb_clean_accuracy": bs["clean_accuracy"],
            "cpu_seconds": time.process_time() - t0}


def run_rl(seed: int, pretrain_steps: int | None = None, rl_steps: int | None = None,
           base=None):
    """Pre-train, then REINFORCE on the new shift and on the reflection; the same two
    from an untrained model (the control). `base`: the pre-trained model, when the
    caller already has it (`pretrain(RLFamily(), seed=seed, steps=pretrain_steps)`);
    it is not changed."""
    t0 = time.process_time()
    fam = RLFamily()
    ps = RL["pretrain_steps"] if pretrain_steps is None else pretrain_steps
    rs = RL["rl_steps"] if rl_steps is None else rl_steps
    base = pretrain(fam, seed=seed, steps=ps) if base is None else base
    out = {"pretrain_accuracy": [greedy_accuracy(base, fam, ("shift", c))
                                 for c in fam.pretrain_shifts]}
    tasks = {"within": ("shift", fam.new_shift), "across": ("reflect", fam.reflect_c)}
    scratch = pretrain(fam, seed=seed, steps=0)
    for start, model0 in (("pretrained", base), ("scratch", scratch)):
        for name, task in tasks.items():
            r = reinforce(copy.deepcopy(model0), fam, task, steps=rs, seed=seed)
            out[f"{start}_{name}"] = {"step": r["step"], "accuracy": r["accuracy"],
                                      "reward_first": sum(r["reward"][:20]) / 20,
                                      "reward_last": sum(r["reward"][-20:]) / 20}
    out["cpu_seconds"] = time.process_time() - t0
    return out


def run(experiment: str, seed: int, n_head: int | None = None,
        pretrain_steps: int | None = None) -> dict:
    if experiment == "heads":
        return run_heads(n_head, seed)
    if experiment == "rl":
        return run_rl(seed, pretrain_steps=pretrain_steps)
    raise ValueError(f"experiment must be 'heads' or 'rl', got {experiment!r}")


def sweep(seeds=(0, 1, 2)) -> SweepSpec:
    cells = [{"experiment": "heads", "n_head": h, "seed": s} for s in seeds for h in HEADS]
    cells += [{"experiment": "rl", "seed": s, "pretrain_steps": p}
              for p in (RL["short_pretrain_steps"], RL["pretrain_steps"]) for s in seeds]
    return SweepSpec(name="predictions", out="book/part5/results/predictions.json",
                     cells=cells, run=run,
                     description="seed 000's predictions: ICL curve and bombs against "
                                 "heads (width 64), RL within/across a task family")
