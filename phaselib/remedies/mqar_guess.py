"""Recall past the window, judged against a guess (`python -m phaselib.sweep mqar-guess`).

Book: Part III, "The remedies, measured", section "Against a guess". The reach verdicts
of `mqar-recall` and `mqar-long` compare the windowed phase model's accuracy on the far
queries (the value at least NEAR positions back, out of the window's sight) with the
window alone's, which answers almost none. But a model that only knew which values the
context holds, and not which key each belongs to, would answer a quarter of them (a
guess among the pairs' values), so a far-query gain over the window alone need not be a
lookup. GUESS_RULE asks the question against the best such guess instead, on the same
queries, for seeds that no MQAR sweep had run, fixed before its runs.
"""

from __future__ import annotations

import torch

from ..claims.rule import Effect, Rule, judge
from .mqar import NEAR, mqar_baselines, mqar_test_batch, run_cell, value_distance
from .mqar_sweeps import ABLATION_OUT, BINDING_BATCH, LONG_STEPS, RECALL_OUT

__all__ = ["GUESS_OUT", "GUESS_MODELS", "GUESSES", "GUESS_RULE", "guess", "far_guess",
           "beyond_guess"]

GUESS_OUT = "book/part3/results/mqar_guess.json"
# The two windowed phase models of mqar-long, each with the results file whose seed-0
# rates choose its rate (as there).
GUESS_MODELS = {"phase-window-ls-conv": ABLATION_OUT, "phase-window-conv": RECALL_OUT}
# The guesses that need no binding (`mqar_baselines`): among the pairs' values, among
# the value-range tokens seen before the query, the most frequent of those.
GUESSES = ("pair_values", "seen_values", "most_frequent")
# Fixed before the runs (2026-12-06, stop 46), after mqar-long had been read: per seed,
# a windowed model's accuracy on the far queries minus the best of GUESSES on the same
# queries of its own test sequences. Beyond the threshold, the model answers far queries
# that no guess without binding could; short of it (with the control), it does not carry
# recall past its window. Each model at twice mqar-recall's steps and its seed-0 best
# rate there, as in mqar-long, on new seeds. Control: the same instrument on attention
# with its convolution, which sees every key (mqar-binding's runs, at their best rate).
GUESS_RULE = {"threshold": 0.10, "steps": LONG_STEPS, "seeds": (5, 6, 7),
              "comparisons": {"reach": "phase-window-ls-conv",
                              "reach-plain": "phase-window-conv"},
              "control": "fused-conv", "guesses": GUESSES, "registered": "2026-12-06"}


def guess(seeds=GUESS_RULE["seeds"]):
    """Sweep `mqar-guess`: GUESS_MODELS at GUESS_RULE's steps and seeds (width 64,
    (T, pairs) = (64, 4), mqar-recall's batch), each at its seed-0 best rate of the
    600-step sweep named beside it; about 90 CPU-minutes (a cell takes 13 to 19
    minutes on one thread)."""
    from ..sweep import SweepSpec

    cells = [{"model": m, "width": 64, "T": 64, "n_pairs": 4,
              "steps": GUESS_RULE["steps"], "batch": BINDING_BATCH, "lr": "best",
              "out": src, "seed": int(s)}
             for m, src in GUESS_MODELS.items() for s in seeds]
    return SweepSpec(name="mqar-guess", out=GUESS_OUT, cells=cells, run=run_cell,
                     description="Part III: the windowed phase models' far queries "
                                 "against a guess without binding, new seeds")


def far_guess(seed: int, T: int = 64, n_pairs: int = 4,
              guesses=GUESSES) -> float:
    """The best expected accuracy of `guesses` (names of `mqar_baselines`) on the far
    queries (value at least NEAR back) of the test sequences `run_cell` scores for
    `seed` (`mqar_test_batch`)."""
    unknown = set(guesses) - set(GUESSES)
    if not guesses or unknown:
        raise ValueError(f"guesses must be names of {GUESSES}, got {guesses!r}")
    x, y = mqar_test_batch(seed, T, n_pairs)
    far = torch.where(value_distance(x, y, n_pairs) >= NEAR, y, torch.full_like(y, -1))
    base = mqar_baselines(x, far, n_pairs)
    return max(base[g] for g in guesses)


def beyond_guess(runs: dict, control_runs: dict, rule: dict = GUESS_RULE,
                 T: int = 64, n_pairs: int = 4) -> dict:
    """{name: (effect, control, judgement) or None while its model has not run on
    every seed of `rule`} for each comparison of `rule` (GUESS_RULE). `runs`:
    {"<model>@<steps>": {seed: result}} (`recall.at_steps`); `control_runs`: {seed:
    result} of rule["control"] at its best rate (`recall.best_rate_results`)."""
    if len(control_runs) < 3:
        raise ValueError(f"control_runs must hold 3 or more seeds, got "
                         f"{sorted(control_runs)}")
    guess_of = {}

    def minus_guess(results: dict, name: str) -> Effect:
        seeds = sorted(results)
        for s in seeds:
            if s not in guess_of:
                guess_of[s] = far_guess(s, T, n_pairs, rule["guesses"])
        return Effect(f"far-query accuracy, {name} minus the best guess without "
                      f"binding", tuple(results[s]["acc_far"] - guess_of[s]
                                        for s in seeds), "accuracy")

    ctl = minus_guess(control_runs, rule["control"])
    out = {}
    for key, model in rule["comparisons"].items():
        got = runs.get(f"{model}@{rule['steps']}", {})
        if not set(rule["seeds"]) <= set(got):
            out[key] = None
            continue
        eff = minus_guess({s: got[s] for s in rule["seeds"]}, model)
        out[key] = (eff, ctl, judge(eff, Rule(rule["threshold"]), ctl))
    return out
