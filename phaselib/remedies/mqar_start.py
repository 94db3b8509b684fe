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

from .mqar_sweeps import _COST, ABLATION_OUT, _at_binding_budget, ablation

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
              "registered": "2026-12-06",
              # Amended 2026-12-07 (stop 52), before any run of seeds 3 and 4: "start"
              # came out inconclusive at three seeds (its interval straddles the
              # threshold), and the book's rule then asks for five. Seeds 3 and 4 of
              # both its arms run here: the smaller start at its seed-0 choice in this
              # file, the ablation's gained model at its seed-0 choice in the
              # ablation's (`ABLATION_OUT`, whose stored cells stay as they are). A
              # comparison is paired over the seeds both its models ran, so "start"
              # reads five, "gain-small" (whose other arm ran three) and the control
              # keep three. Whatever five give is the verdict; no more are run.
              "seeds": 5, "seeds_added": "2026-12-07"}


def start(seeds=tuple(range(START_RULE["seeds"]))):
    """Sweep `mqar-start`: START_MODELS at the budget, width, setting and rates of
    `mqar-ablation` (seed 0 at every rate of LRS, the others at its best), and the
    ablation's gained model (the other arm of "start") at the seeds the ablation did
    not run, at its rate there; judged by START_RULE with `recall.ablation`. About 110
    CPU-minutes in all (a cell takes 6 to 10 minutes on one thread)."""
    spec = _at_binding_budget("mqar-start", START_OUT, START_MODELS, seeds,
                              "Part III: the LayerScale gain started ten times "
                              "smaller")
    other = START_RULE["comparisons"]["start"][1]
    ran = {c["seed"] for c in ablation().cells}
    spec.cells += [c for c in ablation(seeds).cells
                   if c["model"] == other and c["seed"] not in ran]
    return spec
