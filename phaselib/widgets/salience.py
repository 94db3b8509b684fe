"""F5 explorer: the weight left on one relevant key as distractors pile up.

Book: Part II, "F5 Dynamic context collapse". One key beats each of n distractors by a
logit gap delta and keeps w = e^delta / (e^delta + n) (`phaselib.dilution`). The frame
draws w against n on log axes for the chosen gap, with the 0.01 line and the point for
the chosen n: a larger gap only buys a constant factor e^delta of distractors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as widgets

from ..dilution import distractors_to_drop_below, salience_weight
from ._stack import explorer
from ._svg import line_plot

__all__ = ["SalienceFrame", "salience_frame", "salience_svg", "salience_explorer",
           "DELTAS", "DISTRACTORS"]

THRESHOLD = 0.01
DELTAS = tuple(range(0, 11))                                     # logit gaps
DISTRACTORS = tuple(round(10 ** (k / 2)) for k in range(0, 15))  # 1, 3, 10, ..., 1e7
_CURVE_N = [10 ** (k / 4) for k in range(0, 29)]


@dataclass(frozen=True)
class SalienceFrame:
    delta: float
    n: int
    weight: float        # on the relevant key
    below: bool          # weight < 0.01
    n_drop: int          # the fewest distractors that push the weight below 0.01


def salience_frame(delta: float, n: int) -> SalienceFrame:
    """The relevant key's weight at logit gap `delta` against `n` distractors."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0 (distractors), got {n!r}")
    w = salience_weight(float(delta), n).item()
    return SalienceFrame(float(delta), n, w, w < THRESHOLD,
                         distractors_to_drop_below(float(delta), THRESHOLD))


def salience_svg(delta: float, n: int) -> str:
    """One frame: w(n) at this gap (and at gap 0), the 0.01 line, the chosen point."""
    f = salience_frame(delta, n)
    curve = salience_weight(float(delta), _as_list(_CURVE_N)).tolist()
    series = [(_CURVE_N, curve, "#1f77b4", f"logit gap Δ = {delta:g}")]
    if delta != 0:
        zero = salience_weight(0.0, _as_list(_CURVE_N)).tolist()
        series.append((_CURVE_N, zero, "#aaa", "Δ = 0 (no gap)"))
    verdict = "below" if f.below else "above"
    note = (f"Δ = {delta:g}, n = {n:,}: w = {f.weight:.4f}, {verdict} the 0.01 line. "
            f"At this gap {f.n_drop:,} distractors push it below 0.01.")
    return line_plot(series, title="Weight on the one relevant key",
                     xlabel="distractors n (keys)", ylabel="weight w (fraction of 1)",
                     xlim=(1, 1e7), ylim=(1e-6, 1.0), xlog=True, ylog=True,
                     hlines=[(THRESHOLD, "#d62728", "w = 0.01")],
                     points=[(n, max(f.weight, 1e-6), "#ff7f0e")], note=note,
                     legend="lower left")


def _as_list(xs):
    import torch

    return torch.tensor(xs, dtype=torch.float64)


def salience_explorer() -> widgets.VBox:
    """Sliders for the logit gap and the number of distractors."""
    style = {"description_width": "initial"}
    gap = widgets.SelectionSlider(options=[f"{d}" for d in DELTAS], value="2",
                                  description="logit gap Δ", style=style)
    count = widgets.SelectionSlider(options=[f"{n:,}" for n in DISTRACTORS],
                                    value="100", description="distractors n",
                                    style=style)
    frames = [[salience_svg(d, n) for n in DISTRACTORS] for d in DELTAS]
    return explorer("salience", "How much weight does one relevant key keep?",
                    [gap, count], frames,
                    hint="Raise the gap by one and the curve moves right by a factor "
                         "e ≈ 2.7: to stay above 0.01 against 10× more distractors "
                         "the gap must grow by ln 10 ≈ 2.3.")
