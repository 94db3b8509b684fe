"""Pyramid explorer: which blocks position t reads at each level, as t and level move.

Book: Part IV, "The causal dyadic pyramid". The frames come from the package's own level
arithmetic (`pyramid_mask`, `levels_completed`), so the widget shows what the code does,
masked early positions included.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from .._checks import check_positive_int
from .._levels import default_levels, levels_completed, pyramid_mask
from ._stack import explorer
from ._svg import svg, text

__all__ = ["PyramidFrame", "pyramid_frame", "pyramid_svg", "pyramid_explorer"]

OLD, NEW, DONE = "#9ecae1", "#08519c", "#e0e0e0"


@dataclass(frozen=True)
class PyramidFrame:
    """What position t reads at one level: the two blocks (inclusive token ranges)."""

    t: int
    level: int
    completed: int                          # blocks of 2**level tokens complete at t
    masked: bool                            # fewer than two complete: feature zero
    blocks: tuple[tuple[int, int], ...]     # ((first, last), (first, last)) or ()
    updates: bool                           # does token t complete a block here?


def pyramid_frame(t: int, level: int, levels: int) -> PyramidFrame:
    """The blocks position t (0-based) reads at `level` of a `levels`-level pyramid."""
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ValueError(f"t must be an int >= 0, got {t!r}")
    check_positive_int("levels", levels)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < levels:
        raise ValueError(f"level must be an int in [0, {levels}), got {level!r}")
    s = 1 << level
    n = (t + 1) >> level
    valid = bool(pyramid_mask(t + 1, levels)[t, level])
    older, newer = ((n - 2) * s, (n - 1) * s - 1), ((n - 1) * s, n * s - 1)
    blocks = (older, newer) if valid else ()
    updates = level < levels_completed(t, levels)
    return PyramidFrame(t, level, n, not valid, blocks, updates)


def _span(first: int, last: int) -> str:
    return f"token {first}" if first == last else f"the mean of tokens {first}..{last}"


def _caption(f: PyramidFrame) -> str:
    s = 1 << f.level
    if f.masked:
        blocks = "no block" if f.completed == 0 else "only 1 block"
        size = "1 token" if s == 1 else f"{s} tokens"
        return (f"t = {f.t}, level {f.level}: {blocks} of {size} complete, so this "
                f"level is masked (its feature is zero).")
    (a0, a1), (b0, b1) = f.blocks
    wait = ("" if f.t == b1 else f" Token {f.t} waits for the next block."
            if f.t == b1 + 1 else f" Tokens {b1 + 1}..{f.t} wait for the next block.")
    new = " Token t just completed the newer block." if f.updates else ""
    return (f"t = {f.t}, level {f.level}: transport from {_span(a0, a1)} "
            f"to {_span(b0, b1)}.{new}{wait}")


def pyramid_svg(t: int, level: int, T: int, levels: int) -> str:
    """One frame: a row of blocks per level over T tokens; the chosen level's two read
    blocks coloured, complete blocks grey, the future shaded."""
    cell, left, top, row = 12, 58, 30, 22
    width = left + T * cell + 10
    out = [text(width / 2, 16, f"Blocks read at position t = {t}",
                extra='font-weight="bold"')]
    for lv in range(levels):
        f = pyramid_frame(t, lv, levels)
        y = top + (levels - 1 - lv) * row
        out.append(text(left - 6, y + 13, f"level {lv}", anchor="end",
                        extra='font-weight="bold"' if lv == level else ""))
        s, h = 1 << lv, row - 4
        done = ((t + 1) >> lv) * s         # tokens in complete blocks at this level
        out.append(f'<rect x="{left}" y="{y}" width="{T * cell}" height="{h}" '
                   f'fill="white"/><rect x="{left}" y="{y}" width="{done * cell}" '
                   f'height="{h}" fill="{DONE}"/>')
        if lv == level and f.blocks:
            for (first, last), fill in zip(f.blocks, (OLD, NEW)):
                out.append(f'<rect x="{left + first * cell}" y="{y}" '
                           f'width="{(last - first + 1) * cell}" height="{h}" '
                           f'fill="{fill}"/>')
        seps = "".join(f"M{left + k * cell},{y}v{h}" for k in range(0, T + 1, s))
        out.append(f'<path d="{seps}M{left},{y}h{T * cell}M{left},{y + h}h{T * cell}" '
                   f'stroke="#555" fill="none"/>')
    y_axis = top + levels * row + 2
    out.append(f'<rect x="{left + (t + 1) * cell}" y="{top - 4}" '
               f'width="{(T - t - 1) * cell}" height="{levels * row}" fill="white" '
               f'opacity="0.7"/>')   # the future, faded
    out.append(f'<line x1="{left + (t + 0.5) * cell}" x2="{left + (t + 0.5) * cell}" '
               f'y1="{top - 6}" y2="{y_axis}" stroke="red" stroke-width="2"/>')
    for k in range(0, T, 4):
        out.append(text(left + (k + 0.5) * cell, y_axis + 12, str(k)))
    out.append(text(left + T * cell / 2, y_axis + 28, "token position (tokens)"))
    if t < T - 1:
        out.append(text(left + (t + 1 + T) * cell / 2, top + 8,
                        "future (not yet read)"))
    note = _caption(pyramid_frame(t, level, levels))
    return (svg("".join(out), width, y_axis + 36)
            + f"<div style='font-size:13px'>{note}</div>")


def pyramid_explorer(T: int = 32, levels: int | None = None) -> widgets.VBox:
    """Sliders for the position t and the level; the frame shows the blocks read."""
    check_positive_int("T", T)
    if T < 2:
        raise ValueError(f"T must be >= 2, got {T}")
    L = default_levels(T) if levels is None else levels
    check_positive_int("levels", L)
    style = {"description_width": "initial"}
    t_slider = widgets.IntSlider(value=T // 2, min=0, max=T - 1, style=style,
                                 description="position t")
    l_slider = widgets.IntSlider(value=min(2, L - 1), min=0, max=L - 1, style=style,
                                 description="level")
    frames = [[pyramid_svg(t, lv, T, L) for lv in range(L)] for t in range(T)]
    return explorer("pyramid", "Which blocks does position t read?",
                    [t_slider, l_slider], frames,
                    hint="Light blue: the older block, dark blue: the newer one, grey: "
                         "complete blocks, faded: the future. Move t through a block "
                         "and watch when the pair jumps; at early t whole levels are "
                         "masked.")
