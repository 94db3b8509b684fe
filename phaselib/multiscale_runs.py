"""The F3 experiments: the chapter's models by name, one training run with its
measurements, and the sweep `f3`.

Book: Part II, "F3 No intrinsic multi-scale structure". `build_f3_model` builds the
transformer, the pyramid model (all levels or level 0 only) and the pyramid's controls
(`multiscale`); `run_f3` trains one on `tasks.multiscale_batch` and records its learning
curves by scale, final losses, heads' distance profiles and a validation loss; `sweep`
is `python -m phaselib.sweep f3`.
"""

from __future__ import annotations

import torch

from .multiscale import (BlockArmTransformer, MultiScaleTransformer,
                         attention_distance_profile)
from .transformer import TinyTransformer, TransformerConfig

__all__ = ["F3_DEFAULTS", "F3_MODELS", "F3_RATES", "REGISTERED_RATES", "ADDED_RATES",
           "NEXT_RATE", "RATES_EXTENDED", "SHARED_RATE", "CHOICE_SEEDS", "F3_STEPS",
           "F3_LONG_STEPS", "STEPS_SEEDS", "STEPS_LEVEL", "STEPS_CONTROL_STEPS",
           "STEPS_OUT", "STEPS_RULES",
           "build_f3_model", "run_f3", "sweep", "steps_to", "sweep_steps"]

# The F3 experiment, run per cell by the sweep (`python -m phaselib.sweep f3`) and live
# in the chapter with the same defaults.
F3_DEFAULTS = dict(vocab=16, seq_len=64, n_layer=2, n_head=4, n_embd=32, d_proj=4, levels=5,
                   batch=32, lr=3e-3, eval_every=25, eval_batch=256)
F3_MODELS = ("transformer", "pyramid", "level0", "centroid", "shift")
# The sweep's short-budget arms, each at its best rate by validation loss. The rule
# registered the first three; every model took the top one, and one grid step past it
# (3e-2, sweep `rate-edges`) did better for all ten models on seed 0, so the comparisons
# held every arm below its best. Fixed 2026-12-07 (stop 50), before any run at its
# rates: the grid extends upward by ADDED_RATES for every model and scale set; if any
# model's seed-0 best then lies at the new top, NEXT_RATE is added for every model
# before the other seeds run (one step, no more). Seeds 1-4 then run at each model's
# best of the whole grid, and the verdicts read it, whatever it gives. A rate whose
# validation loss is not finite (a diverged run) ranks last (`rates.rank`).
REGISTERED_RATES = (1e-3, 3e-3, 1e-2)
ADDED_RATES = (3e-2, 1e-1)
NEXT_RATE = 3e-1
RATES_EXTENDED = "2026-12-07"
# Run at ADDED_RATES: the pyramid with all levels took 1e-1 on both scale sets (every
# other model took 3e-2), so by the rule NEXT_RATE joins the grid.
F3_RATES = REGISTERED_RATES + ADDED_RATES + (NEXT_RATE,)
SHARED_RATE = 3e-2      # every model's choice of F3_RATES but the pyramid's (see sweep)
# A reading fixed 2026-12-07 (stop 51), before its runs, beside the verdicts (which keep
# the book's rule: seed 0 chooses). Seed 0 alone chose 1e-1 for all levels, a rate at
# which three of its five seeds jump halfway, so a rate chosen on one seed can sit at
# an instability. Here each model's rate is chosen by its mean validation loss over
# CHOICE_SEEDS at every rate of F3_RATES (a rate at which any of them diverged ranks
# last); the comparisons are then read at that choice over every seed, and seeds
# 3 and 4 of a model whose choice differs from seed 0's run at it. The chapter says
# whether this reading agrees with the verdicts, whatever it gives.
CHOICE_SEEDS = (0, 1, 2)
F3_STEPS, F3_LONG_STEPS = 600, 2000
# The steps each model takes to learn the longest period (`sweep_steps`, sweep
# `f3-steps`), registered 2026-12-07 (stop 54) before any of its cells ran. A referee
# found that f3-long-range is judged on the loss at the end of the budget, where at
# their best rates both models sit at the floor, so it cannot show one of them taking
# longer; "multiplies the difficulty" is about how long learning takes. New seeds
# (STEPS_SEEDS, none run before), level 0 and all levels, each at seed 0's best rate in
# the f3 sweep (the chapter's rule) and, as the instrument's positive control, at the
# chapter's one rate (F3_DEFAULTS), where the f3 sweep's seeds end with all levels far
# ahead on the longest period. The measure, `steps_to`: the first evaluation (every 25
# steps) at which the held-out loss on the longest period is at most STEPS_LEVEL; a run
# that never gets there counts as the budget, a lower bound.
STEPS_SEEDS = (5, 6, 7, 8, 9)
STEPS_LEVEL = 0.1
# Amended 2026-12-08 (stop 55), after the control had been read and before any run at
# this budget: at the chapter's one rate the F3_STEPS budget stopped most control runs
# of both models short of STEPS_LEVEL, and a run cut off counts as the budget on both
# sides of the ratio, so the control could not show a factor of two whatever the
# models' speeds. The control's two models run again on the same seeds for
# STEPS_CONTROL_STEPS steps at that rate; the verdict reads the control at this budget
# (the F3_STEPS control stays in the results and the chapter shows it). The parts'
# effect, at each model's best rate and F3_STEPS steps, is unchanged.
STEPS_CONTROL_STEPS = F3_LONG_STEPS
STEPS_OUT = "book/part2/results/f3_steps.json"
_STEPS = ("log10 of the steps to a held-out loss of 0.1 nats on the longest period "
          "(a run that never gets there counts as the budget, a lower bound), level 0 "
          "alone over all pyramid levels, paired by seed, each at seed 0's best rate, "
          "scales {sc}, the steps sweep's new seeds; control: the same at the "
          "chapter's one rate")
STEPS_RULES = {"f3-long-range": {
    f"steps, scales {sc}": {"effect": _STEPS.format(sc=sc), "unit": "decades",
                            "threshold": 0.301, "direction": 1}
    for sc in ("1, 4, 16", "1, 3, 12")}}


def build_f3_model(model: str, seed: int, **hp) -> TinyTransformer:
    """The F3 chapter's models: "transformer", "pyramid" (all levels), "level0", and the
    pyramid's controls "centroid" and "shift" (`BlockArmEmbedding`, all levels)."""
    p = {**F3_DEFAULTS, **hp}
    cfg = TransformerConfig(vocab_size=p["vocab"], block_size=p["seq_len"], n_layer=p["n_layer"],
                            n_head=p["n_head"], n_embd=p["n_embd"])
    torch.manual_seed(seed)
    if model == "transformer":
        return TinyTransformer(cfg)
    if model in ("pyramid", "level0"):
        return MultiScaleTransformer(cfg, levels=p["levels"] if model == "pyramid" else 1,
                                     d_proj=p["d_proj"])
    if model in ("centroid", "shift"):
        return BlockArmTransformer(cfg, p["levels"], p["d_proj"], kind=model)
    raise ValueError(f"model must be one of {F3_MODELS}, got {model!r}")


def run_f3(seed: int, scales, model: str, steps: int, device="cpu",
           out: str | None = None, **hp) -> dict:
    """Train one F3 model on `multiscale_batch(scales)` and measure it.

    Returns {"step", "curve" {scale: held-out loss at each evaluation}, "final" {scale:
    loss}, "profiles" {scale: [heads, T] distance profiles on that scale's held-out
    sequences, queries from max(scales) - 1 on}, "n_params", "val_loss" (the mean loss
    over the scales on a validation batch of its own, the split that chooses the rate),
    "lr"}; scales are str keys (JSON). `lr` may be "best": the seed-0 rate of this
    model, scales and steps with the lowest `val_loss` in the results file `out`.
    """
    import torch.nn.functional as F

    from .tasks import multiscale_batch
    from .taps import capture
    from .train import TrainConfig, train

    from .rates import stored_best_rate

    p = {**F3_DEFAULTS, **hp}
    scales = [int(s) for s in scales]
    if p["lr"] == "best":
        if out is None:
            raise ValueError("lr='best' needs out, the results file of the rate cells")
        p["lr"] = stored_best_rate(out, "val_loss", F3_RATES, model=model,
                                   scales=scales, steps=steps)
    if not isinstance(p["lr"], float) or p["lr"] <= 0:
        raise ValueError(f"lr must be a positive float or 'best', got {p['lr']!r}")
    net = build_f3_model(model, seed, **p).to(device)
    x_ev, y_ev, s_ev = multiscale_batch(p["eval_batch"], p["seq_len"], p["vocab"], scales,
                                        return_scales=True,
                                        generator=torch.Generator().manual_seed(seed + 999))
    x_ev, y_ev, s_ev = x_ev.to(device), y_ev.to(device), s_ev.to(device)

    @torch.no_grad()
    def by_scale(m):
        logits, _ = m(x_ev)
        ce = F.cross_entropy(logits.flatten(0, 1), y_ev.flatten(), ignore_index=-1,
                             reduction="none").view(y_ev.shape)
        return {s: ce[(s_ev == s)[:, None] & (y_ev >= 0)].mean().item() for s in scales}

    curve = {"step": [], **{s: [] for s in scales}}

    def evaluate(m):
        for s, v in by_scale(m).items():
            curve[s].append(v)
        curve["step"].append(len(curve["step"]) * p["eval_every"] + p["eval_every"])
        return 0.0

    gen = torch.Generator().manual_seed(seed + 1)
    train(net, lambda step: multiscale_batch(p["batch"], p["seq_len"], p["vocab"], scales,
                                             generator=gen, device=device),
          TrainConfig(steps=steps, lr=p["lr"], eval_every=p["eval_every"], progress=False),
          eval_fn=evaluate)
    names = [f"blocks.{i}.attn.tap_pattern" for i in range(p["n_layer"])]
    with torch.no_grad(), capture(net, names) as taps:
        net(x_ev)
    start = max(scales) - 1
    prof = {str(s): torch.cat([attention_distance_profile(taps[n][s_ev == s], start)
                               for n in names]).cpu().double().round(decimals=5).tolist()
            for s in scales if s > 1}
    g_val = torch.Generator().manual_seed(seed + 5000)     # a batch of its own
    x_val, y_val = multiscale_batch(p["eval_batch"], p["seq_len"], p["vocab"], scales,
                                    generator=g_val)
    with torch.no_grad():
        val = F.cross_entropy(net(x_val.to(device))[0].flatten(0, 1),
                              y_val.to(device).flatten(), ignore_index=-1).item()
    return {"step": curve["step"], "curve": {str(s): curve[s] for s in scales},
            "final": {str(s): v for s, v in by_scale(net).items()}, "profiles": prof,
            "n_params": net.num_params(), "val_loss": val, "lr": p["lr"]}


def sweep(seeds=(0, 1, 2, 3, 4), device: str = "cpu",
          out: str = "book/part2/results/f3.json"):
    """The F3 sweep, on the dyadic scales (1, 4, 16) and on scales that are not powers
    of two (1, 3, 12): the five models of F3_MODELS at F3_STEPS, seed 0 at every rate
    of F3_RATES and the other seeds at seed 0's best by validation loss
    (`rates.rates_then_best`); the transformer, the pyramid and level 0 at the
    chapter's one rate (the instrument's positive control); then a transformer trained
    F3_LONG_STEPS at the chapter's rate (the heads it finds, not a comparison). Five
    seeds: at three, both verdicts' intervals straddled their thresholds. F3_RATES is
    the registered grid extended upward (see its comment)."""
    from .rates import rates_then_best
    from .sweep import SweepSpec

    sets = ([1, 4, 16], [1, 3, 12])
    base = [{"scales": sc, "model": m, "steps": F3_STEPS} for sc in sets
            for m in F3_MODELS]
    cells = rates_then_best(base, F3_RATES, seeds, out)
    # The positive control of the verdicts' instrument: the three models of the
    # comparison at the chapter's one rate (F3_DEFAULTS), where they learn at different
    # speeds. Added after seed 0's rate cells showed every arm solving the task within
    # F3_STEPS at its best rate; the same cells as the sweep's before rates were chosen.
    cells += [{"seed": s, "scales": sc, "model": m, "steps": F3_STEPS} for sc in sets
              for s in seeds for m in ("transformer", "pyramid", "level0")]
    cells += [{"seed": s, "scales": sc, "model": "transformer", "steps": F3_LONG_STEPS}
              for sc in sets for s in seeds]
    # A reading beside the verdicts, not read by them: the pyramid with all levels at
    # SHARED_RATE, the rate every other model chose on the extended grid, on every
    # seed. Fixed (2026-12-07, stop 50) after seeds 1-4 ran at the pyramid's own choice
    # (1e-1), whose runs spike in some seeds: does its halfway loss follow its rate?
    cells += [{"seed": s, "scales": sc, "model": "pyramid", "steps": F3_STEPS,
               "lr": SHARED_RATE} for sc in sets for s in seeds if s != 0]
    # The three-seed choice (CHOICE_SEEDS, fixed before its runs): the other choice
    # seeds at every rate, after every cell above.
    cells += [c | {"lr": lr, "seed": s} for c in base for lr in F3_RATES
              for s in CHOICE_SEEDS if s != 0 and s in seeds
              and not (c["model"] == "pyramid" and lr == SHARED_RATE)]
    return SweepSpec(name="f3", out=out, cells=cells,
                     run=lambda **c: run_f3(device=device, **c),
                     description="F3: held-out loss by scale and distance profiles, "
                                 "transformer vs pyramid features vs level 0 vs the "
                                 "centroid and shift controls, scales 1/4/16 and "
                                 "1/3/12, 600 steps at each model's best rate of six "
                                 "and at the chapter's rate, and transformers at 2000")



def steps_to(result: dict, level: float = STEPS_LEVEL) -> int:
    """The first evaluation step at which `result`'s (a `run_f3` result) held-out loss
    on its longest period is at most `level`; the budget (its last step) when it never
    is, a lower bound."""
    top = max(result["curve"], key=int)
    for step, loss in zip(result["step"], result["curve"][top]):
        if loss is not None and loss <= level:
            return int(step)
    return int(result["step"][-1])


def sweep_steps(seeds=STEPS_SEEDS, device: str = "cpu"):
    """Sweep `f3-steps` (registered with STEPS_RULES before its runs; see their
    comment): level 0 and all levels on both scale sets, each at seed 0's best rate in
    the f3 sweep and at the chapter's one rate, on STEPS_SEEDS, F3_STEPS steps; and
    the control at the chapter's rate again for STEPS_CONTROL_STEPS steps."""
    from .sweep import SweepSpec

    f3_out = "book/part2/results/f3.json"
    cells = [{"seed": s, "scales": sc, "model": m, "steps": F3_STEPS, **rate}
             for rate in ({"lr": "best", "out": f3_out}, {})
             for sc in ([1, 4, 16], [1, 3, 12]) for m in ("level0", "pyramid")
             for s in seeds]
    # The control again at the chapter's rate with the longer budget (see
    # STEPS_CONTROL_STEPS; added after the cells above had run).
    cells += [{"seed": s, "scales": sc, "model": m, "steps": STEPS_CONTROL_STEPS}
              for sc in ([1, 4, 16], [1, 3, 12]) for m in ("level0", "pyramid")
              for s in seeds]
    return SweepSpec(name="f3-steps", out=STEPS_OUT, cells=cells,
                     run=lambda **c: run_f3(device=device, **c),
                     description="F3: steps to learn the longest period, level 0 and "
                                 "all levels at their best rates and at the chapter's "
                                 "one rate, new seeds")
