"""Does the LayerScale gain's effect hang on its start? (`python -m phaselib.sweep
mqar-start`).

Book: Part III, "The remedies, measured", section "The gain's start". The ablation
(`mqar_sweeps.ABLATION_RULE`) found that a LayerScale gain on what the pyramid and the
slots add to the stream gives the windowed phase model back the window's near lookup,
with the gain started at one value, `mqar.LAYER_SCALE`. A result that held at that
value only would say little about the mechanism. START_RULE asks it again with the gain
started ten times smaller, at the ablation's budget, width, rates and seeds, fixed
before its runs.
"""

from __future__ import annotations

from .mqar_sweeps import _COST, ABLATION_OUT, _at_binding_budget

__all__ = ["START_OUT", "START_MODELS", "START_RULE", "start"]

START_OUT = "book/part3/results/mqar_start.json"
# The windowed phase model with the short convolution and the gain started at a tenth of
# LAYER_SCALE (its additions at initialisation then about a fourteenth of a token's
# embedding, rms 0.0017 against 0.024).
START_MODELS = ("phase-window-ls-small-conv",)
# Fixed before the runs (2026-12-06, stop 47): each comparison (a, b, metric) as in
# ABLATION_RULE: a's accuracy minus b's on the near queries, paired per seed on the same
# test sequences, each model at its seed-0 best rate of LRS by validation accuracy, at
# mqar-recall's 600 steps, judged against the threshold. "start": does the smaller start
# give more of the near lookup than the ablation's (beyond the threshold: the start
# value matters, and the ablation's was not the better)? "gain-small": does the gain,
# started smaller, still give the whole model back its near lookup (ABLATION_RULE's
# "gain" at the smaller start; short of the threshold, the ablation's gain hung on its
# start)? Control of both: the cost being taken apart (the window alone minus the
# windowed phase model, near queries), as in the ablation.
START_RULE = {"threshold": 0.10,
              "comparisons": {
                  "start": ("phase-window-ls-small-conv", "phase-window-ls-conv",
                            "acc_near"),
                  "gain-small": ("phase-window-ls-small-conv", "phase-window-conv",
                                 "acc_near")},
              "controls": {"start": _COST, "gain-small": _COST},
              "compared_with": ABLATION_OUT,
              "registered": "2026-12-06"}


def start(seeds=(0, 1, 2)):
    """Sweep `mqar-start`: START_MODELS at the budget, width, setting, rates and seeds
    of `mqar-ablation` (seed 0 at every rate of LRS, the others at its best), judged by
    START_RULE with `recall.ablation`; about 75 CPU-minutes (a cell takes 10 to 18
    minutes on one thread)."""
    return _at_binding_budget("mqar-start", START_OUT, START_MODELS, seeds,
                              "Part III: the LayerScale gain started ten times "
                              "smaller")
