"""Selection explorer: the selector's weights over scales, by rule and temperature.

Book: Part IV, "Selection, the open problem". Fixed scores over L scale candidates go
through `select_weights` for softmax, sparsemax, 1.5-entmax and hard (straight-through)
selection at a temperature tau: softmax always blends every scale, the sparse rules drop
scales to exact zeros as tau falls, the hard rule picks one at any tau.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import torch

from ..selection import select_weights, selection_entropy
from ._stack import explorer
from ._svg import bar_plot

__all__ = ["SelectionFrame", "selection_frame", "selection_svg", "selection_explorer",
           "SCORES", "KINDS", "TAUS"]

SCORES = (1.0, 2.2, 2.0, 0.3, -0.5)        # one per level: two close favourites
KINDS = ("softmax", "entmax15", "sparsemax", "hard_st")
TAUS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class SelectionFrame:
    kind: str
    tau: float
    weights: tuple[float, ...]
    entropy: float        # nats; 0 for one scale, log L for a uniform blend
    support: int          # scales with a non-zero weight


def selection_frame(kind: str, tau: float, scores=SCORES) -> SelectionFrame:
    """Weights over the scales: `select_weights(scores, kind, tau)`, inference mode."""
    s = torch.tensor(scores, dtype=torch.float64)
    w = select_weights(s, kind, tau, training=False)
    return SelectionFrame(kind, float(tau), tuple(w.tolist()),
                          selection_entropy(w).item() + 0.0,   # no "-0.00"
                          int((w > 0).sum()))


def selection_svg(kind: str, tau: float, scores=SCORES) -> str:
    """One frame: a bar per scale, with the entropy and the support in the caption."""
    f = selection_frame(kind, tau, scores)
    note = (f"{kind} at τ = {tau:g}: weight on {f.support} of {len(scores)} scales; "
            f"entropy {f.entropy:.2f} nats (a uniform blend has "
            f"{torch.log(torch.tensor(float(len(scores)))).item():.2f}). "
            f"Scores: {', '.join(f'{x:g}' for x in scores)}.")
    return bar_plot([f"level {i}" for i in range(len(scores))], f.weights,
                    title=f"Weights over scales: {kind}, τ = {tau:g}",
                    xlabel="scale candidate (pyramid level)",
                    ylabel="weight (sums to 1)", note=note)


def selection_explorer(scores=SCORES) -> widgets.VBox:
    """A rule picker and a temperature slider; frames of the weights over the scales."""
    scores = tuple(float(x) for x in scores)
    if len(scores) < 2:
        raise ValueError(f"scores must hold at least 2 candidates, got {len(scores)}")
    style = {"description_width": "initial"}
    kind = widgets.ToggleButtons(options=list(KINDS), value="softmax",
                                 description="rule", style=style)
    tau = widgets.SelectionSlider(options=[f"{t:g}" for t in TAUS], value="1",
                                  description="temperature τ", style=style)
    frames = [[selection_svg(k, t, scores) for t in TAUS] for k in KINDS]
    return explorer("selection", "How does each rule spread weight over the scales?",
                    [kind, tau], frames,
                    hint="Lower τ: softmax sharpens but never drops a scale; "
                         "entmax and sparsemax zero scales out; hard picks one at "
                         "every τ.")
