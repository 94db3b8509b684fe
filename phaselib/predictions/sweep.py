"""The precomputed runs of the chapter "Seed 000's three predictions, tested".

`python -m phaselib.sweep predictions` writes book/part5/results/predictions.json.
Cells: {"experiment": "heads", "n_head": h, "seed": s} trains the in-context task of
`icl` at width 64 with h heads, then measures accuracy against the number of examples
(to four times the training length), attention entropy and the worst single-token
bomb; {"experiment": "distract", "n_head": h, "seed": s} trains the same model on the
variant whose share of irrelevant (distractor) rounds grows with length (DISTRACT) and
measures its accuracy curve; {"experiment": "rl", "seed": s, "pretrain_steps": p}
pre-trains on the shift
family and fine-tunes with REINFORCE within and across families (and, as a control,
from scratch); p = 1500 is the main run, p = 600 a shorter pre-training beside it;
{"experiment": "rl-composed", "seed": s} does the same on the composed family, where
the new task within the family is reachable (`run_rl_composed`).
"""

from __future__ import annotations

import copy
import time

from ..sweep import SweepSpec
from .bombs import bomb_success, worst_bomb
from .icl import ICLTask, accuracy_by_n, query_entropy, same_key_mass, train_icl
from .rl import ComposedFamily, RLFamily, greedy_accuracy, pretrain, reinforce

__all__ = ["HEADS", "BOMB", "ICL", "RL", "EVAL_BATCH", "DISTRACT", "heads_task",
           "train_heads", "heads_accuracy", "run_heads", "run_distract", "run_rl",
           "COMPOSED", "run_rl_composed", "choose_rate", "held_out_pair_gains", "run",
           "sweep"]

HEADS = (1, 2, 4, 8)
ICL = {"train_examples": 32, "eval_examples": 128, "n_embd": 64, "steps": 1000}
BOMB = {"n_base": 16, "n_shown": 1, "search_m": 64, "ms": [16, 32, 64, 128]}
RL = {"pretrain_steps": 1500, "short_pretrain_steps": 600, "rl_steps": 300}
# The composed family (rule registered before its runs): pre-training steps (the
# composed pairs need longer than the single shifts), REINFORCE steps, and the rates
# every fine-tuning tries; each start and task keeps the rate with the highest reward
# over its last 20 steps (`choose_rate`), never the greedy accuracy reported.
COMPOSED = {"pretrain_steps": 3000, "rl_steps": 300, "rates": (3e-4, 1e-3, 3e-3)}
EVAL_BATCH = 512     # sequences of each heads cell's accuracy curve and bomb success
# The variant with a growing irrelevant share: distractor keys, the round at which half
# the rounds are distractors, the head count trained, and the evaluation's sequences.
DISTRACT = {"keys": 8, "half": 32, "n_head": 4, "eval_batch": 1024}


def heads_task(distract: bool = False) -> ICLTask:
    """The in-context task of the heads cells, or its variant with distractors."""
    if distract:
        return ICLTask(max_examples=ICL["train_examples"], distract=DISTRACT["keys"],
                       distract_half=DISTRACT["half"])
    return ICLTask(max_examples=ICL["train_examples"])


def train_heads(n_head: int, seed: int, distract: bool = False):
    """The model of a heads cell: the in-context task (`heads_task`) at width
    ICL["n_embd"] with `n_head` heads, trained for ICL["steps"] steps from `seed` (a
    TinyTransformer whose block holds the evaluation's ICL["eval_examples"] rounds)."""
    return train_icl(heads_task(distract), n_head=n_head, n_embd=ICL["n_embd"],
                     steps=ICL["steps"], seed=seed,
                     block_size=2 * ICL["eval_examples"] + 2 * 64)


def heads_accuracy(model, seed: int) -> dict:
    """A heads cell's first measure: accuracy of `model` and of the ideal observer
    against the number of examples, to ICL["eval_examples"] (`accuracy_by_n`)."""
    return accuracy_by_n(model, heads_task(), n_rounds=ICL["eval_examples"],
                         batch=EVAL_BATCH, seed=seed)


def run_heads(n_head: int, seed: int) -> dict:
    """One model (`train_heads`): the ICL curve (`heads_accuracy`), attention entropy,
    where the attention goes, and the worst single-token bomb with its success."""
    t0 = time.process_time()
    task = heads_task()
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


def run_distract(n_head: int, seed: int) -> dict:
    """One model trained and scored on the variant with a growing irrelevant share:
    accuracy of the model and of the ideal observer at every round to
    ICL["eval_examples"] (over the sequences where that round is scored), and the
    expected share of distractor rounds among the rounds before each query."""
    t0 = time.process_time()
    task = heads_task(distract=True)
    model = train_heads(n_head, seed, distract=True)
    acc = accuracy_by_n(model, task, n_rounds=ICL["eval_examples"],
                        batch=DISTRACT["eval_batch"], seed=seed)
    p = task.distractor_share(ICL["eval_examples"])
    before = [float(p[:i].mean()) if i else 0.0 for i in range(len(p))]
    return {"accuracy": acc["model"], "observer": acc["observer"],
            "scored": acc["scored"], "distractor_share_before": before,
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


def run_rl_composed(seed: int, pretrain_steps: int | None = None,
                    rl_steps: int | None = None, rates=None, base=None) -> dict:
    """Pre-train on the composed family's pairs, then fine-tune with REINFORCE on each
    held-out pair as a shift (within) and as a reflection (across), at every rate of
    COMPOSED["rates"], from the pre-trained model and from an untrained one (the
    control). Returns the pre-training pairs' accuracies and, for each start, kind,
    rate and held-out pair, the accuracy curve and the mean reward of the first and
    last 20 steps. `base`: the pre-trained model when the caller has it (unchanged)."""
    t0 = time.process_time()
    fam = ComposedFamily()
    ps = COMPOSED["pretrain_steps"] if pretrain_steps is None else pretrain_steps
    rs = COMPOSED["rl_steps"] if rl_steps is None else rl_steps
    rates = COMPOSED["rates"] if rates is None else tuple(rates)
    base = pretrain(fam, seed=seed, steps=ps) if base is None else base
    out = {"pairs": [list(p) for p in fam.pairs], "held_out": [list(p) for p in
                                                               fam.held_out],
           "rates": list(rates),
           "pretrain_accuracy": [greedy_accuracy(base, fam, ("shift", h, l))
                                 for h, l in fam.pairs]}
    scratch = pretrain(fam, seed=seed, steps=0)
    for start, model0 in (("pretrained", base), ("scratch", scratch)):
        for name, kind in (("within", "shift"), ("across", "reflect")):
            runs = {}
            for lr in rates:
                runs[str(lr)] = []
                for h, l in fam.held_out:
                    r = reinforce(copy.deepcopy(model0), fam, (kind, h, l), steps=rs,
                                  lr=lr, seed=seed)
                    runs[str(lr)].append({"accuracy": r["accuracy"],
                                          "reward_first": sum(r["reward"][:20]) / 20,
                                          "reward_last": sum(r["reward"][-20:]) / 20})
            out[f"{start}_{name}"] = {"step": r["step"], "runs": runs}
    out["cpu_seconds"] = time.process_time() - t0
    return out


def choose_rate(entry: dict) -> str:
    """The rate (its key in entry["runs"]) whose runs end with the highest mean reward
    over their last 20 steps, averaged over the held-out pairs: a training signal,
    not the greedy accuracy the chapter reports. Ties go to the first rate tried."""
    runs = entry["runs"]
    score = {lr: sum(r["reward_last"] for r in rs) / len(rs) for lr, rs in runs.items()}
    return max(runs, key=lambda lr: (score[lr], -list(runs).index(lr)))


def held_out_pair_gains(entry: dict) -> tuple[list[float], list[str]]:
    """A stricter rate choice than `choose_rate`, on a validation split: for each
    held-out pair, the rate whose runs on the *other* pairs end with the highest mean
    greedy accuracy (leave one pair out; ties to the first rate tried), and that pair's
    gain (last greedy accuracy minus first) at it. No pair's score chooses its own
    rate. -> (gains, one per pair; the rate chosen for each)."""
    runs = entry["runs"]
    rates = list(runs)
    n = len(runs[rates[0]])
    if n < 2 or any(len(rs) != n for rs in runs.values()):
        raise ValueError(f"every rate needs the same two or more pair runs, got "
                         f"{ {lr: len(rs) for lr, rs in runs.items()} }")
    gains, chosen = [], []
    for p in range(n):
        def others(lr):
            return sum(runs[lr][q]["accuracy"][-1] for q in range(n) if q != p)
        lr = max(rates, key=lambda r: (others(r), -rates.index(r)))
        run = runs[lr][p]
        gains.append(run["accuracy"][-1] - run["accuracy"][0])
        chosen.append(lr)
    return gains, chosen


def run(experiment: str, seed: int, n_head: int | None = None,
        pretrain_steps: int | None = None) -> dict:
    if experiment == "heads":
        return run_heads(n_head, seed)
    if experiment == "distract":
        return run_distract(n_head, seed)
    if experiment == "rl":
        return run_rl(seed, pretrain_steps=pretrain_steps)
    if experiment == "rl-composed":
        return run_rl_composed(seed)
    raise ValueError(f"experiment must be 'heads', 'distract', 'rl' or 'rl-composed', "
                     f"got {experiment!r}")


def sweep(seeds=(0, 1, 2, 3, 4)) -> SweepSpec:
    """Every cell over five seeds: at three, the bomb and RL verdicts' intervals
    straddled their thresholds."""
    cells = [{"experiment": "heads", "n_head": h, "seed": s} for s in seeds for h in HEADS]
    cells += [{"experiment": "rl", "seed": s, "pretrain_steps": p}
              for p in (RL["short_pretrain_steps"], RL["pretrain_steps"]) for s in seeds]
    # Added later: the variant with a growing irrelevant share (rule committed first).
    cells += [{"experiment": "distract", "n_head": DISTRACT["n_head"], "seed": s}
              for s in seeds]
    # Added later: RL on the composed family (rule registered first).
    cells += [{"experiment": "rl-composed", "seed": s} for s in seeds]
    return SweepSpec(name="predictions", out="book/part5/results/predictions.json",
                     cells=cells, run=run,
                     description="seed 000's predictions: ICL curve and bombs against "
                                 "heads (width 64), the ICL curve with a growing "
                                 "irrelevant share, RL within/across a task family, "
                                 "and on a family whose new task is reachable")
