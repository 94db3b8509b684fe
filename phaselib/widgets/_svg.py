"""Tiny hand-written SVG plots for the explorers' frames (a few KB each, no matplotlib).

Every explorer precomputes many frames and saves them in the page, so a frame must be
small: a PNG from matplotlib is 10-30 KB, these are 1-3 KB. Only what the frames need:
lines and points on linear or log axes, horizontal reference lines, bars.
"""

from __future__ import annotations

import math
from html import escape

__all__ = ["line_plot", "bar_plot", "svg"]

W, H = 440, 270                 # frame size in px
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 26, 40
FONT = 'font-family="sans-serif" font-size="11" text-anchor="middle"'


def svg(body: str, width: int = W, height: int = H) -> str:
    """Wrap SVG elements in a sized <svg> element."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" '
            f'viewBox="0 0 {width} {height}" {FONT}>{body}</svg>')


def text(x, y, s, anchor="middle", extra="") -> str:
    """A text element; the <svg> root sets the font and centres by default."""
    anchor = "" if anchor == "middle" else f' text-anchor="{anchor}"'
    return f'<text x="{x:.1f}" y="{y:.1f}"{anchor} {extra}>{escape(s)}</text>'


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        a, b = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
        step = max(1, (b - a + 5) // 6)
        return [10.0 ** k for k in range(a, b + 1, step) if lo <= 10.0 ** k * (1 + 1e-9)
                and 10.0 ** k <= hi * (1 + 1e-9)]
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float, log: bool, si: bool = False) -> str:
    if log:
        k = round(math.log10(v))
        named = {0: "1", 1: "10", 2: "100"} | ({3: "1k", 6: "1M"} if si else {})
        return named.get(k, f"1e{k}")
    return f"{v:g}"


class _Axes:
    def __init__(self, xlim, ylim, xlog, ylog):
        self.xlim, self.ylim, self.xlog, self.ylog = xlim, ylim, xlog, ylog

    def _u(self, v, lim, log):
        f = math.log10 if log else float
        return (f(v) - f(lim[0])) / (f(lim[1]) - f(lim[0]))

    def px(self, x, y):
        return (LEFT + self._u(x, self.xlim, self.xlog) * (W - LEFT - RIGHT),
                H - BOTTOM - self._u(y, self.ylim, self.ylog) * (H - TOP - BOTTOM))

    def frame(self, title, xlabel, ylabel, xticks: bool = True) -> list[str]:
        out = [f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" '
               f'height="{H - TOP - BOTTOM}" fill="white" stroke="#444"/>',
               text(W / 2, 16, title, extra='font-weight="bold"'),
               text((LEFT + W - RIGHT) / 2, H - 6, xlabel),
               text(14, (TOP + H - BOTTOM) / 2, ylabel,
                    extra=f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})"')]
        for x in _ticks(*self.xlim, self.xlog) if xticks else ():
            X, _ = self.px(x, self.ylim[0])
            out.append(f'<line x1="{X:.1f}" x2="{X:.1f}" y1="{H - BOTTOM}" '
                       f'y2="{H - BOTTOM + 4}" stroke="#444"/>')
            out.append(text(X, H - BOTTOM + 15, _fmt(x, self.xlog, si=True)))
        for y in _ticks(*self.ylim, self.ylog):
            _, Y = self.px(self.xlim[0], y)
            out.append(f'<line x1="{LEFT - 4}" x2="{LEFT}" y1="{Y:.1f}" y2="{Y:.1f}" '
                       f'stroke="#444"/>')
            out.append(text(LEFT - 6, Y + 4, _fmt(y, self.ylog), anchor="end"))
        return out


def line_plot(series, *, title: str, xlabel: str, ylabel: str, xlim, ylim,
              xlog: bool = False, ylog: bool = False, hlines=(), points=(),
              note: str = "", legend: str = "upper left") -> str:
    """An SVG line plot. series: (xs, ys, colour, label); hlines: (y, colour, label);
    points: (x, y, colour); legend: "upper left", "lower left", "upper right" or "lower
    right". Values outside the limits are clipped to the frame."""
    ax = _Axes(xlim, ylim, xlog, ylog)
    out = ax.frame(title, xlabel, ylabel)

    def clip(x, y):
        y = min(max(y, ylim[0]), ylim[1])
        return ax.px(min(max(x, xlim[0]), xlim[1]), y)

    for y, colour, label in hlines:
        _, Y = clip(xlim[0], y)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{Y:.1f}" y2="{Y:.1f}" '
                   f'stroke="{colour}" stroke-dasharray="4 3"/>')
        if label:
            out.append(text(W - RIGHT - 4, Y - 3, label, anchor="end",
                            extra=f'fill="{colour}"'))
    for i, (xs, ys, colour, label) in enumerate(series):
        pts = " ".join("{:.1f},{:.1f}".format(*clip(x, y)) for x, y in zip(xs, ys))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                   f'stroke-width="2"/>')
        lx, anchor = (LEFT + 8, "start") if "left" in legend else (W - RIGHT - 8, "end")
        ly = TOP + 14 + 13 * i if "upper" in legend else H - BOTTOM - 8 - 13 * (
            len(series) - 1 - i)
        out.append(text(lx, ly, label, anchor=anchor, extra=f'fill="{colour}"'))
    for x, y, colour in points:
        X, Y = clip(x, y)
        out.append(f'<circle cx="{X:.1f}" cy="{Y:.1f}" r="5" fill="{colour}" '
                   f'stroke="black"/>')
    body = svg("".join(out))
    return body + (f"<div style='font-size:13px'>{note}</div>" if note else "")


def bar_plot(labels, values, *, title: str, xlabel: str, ylabel: str, ylim=(0.0, 1.0),
             colour: str = "#1f77b4", note: str = "") -> str:
    """An SVG bar chart, one labelled bar per value (the value printed above it)."""
    ax = _Axes((0, len(values)), ylim, False, False)
    out = ax.frame(title, xlabel, ylabel, xticks=False)
    for i, (lab, v) in enumerate(zip(labels, values)):
        x0, y0 = ax.px(i + 0.15, v)
        x1, y1 = ax.px(i + 0.85, ylim[0])
        out.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" '
                   f'height="{max(y1 - y0, 0):.1f}" fill="{colour}"/>')
        out.append(text((x0 + x1) / 2, y0 - 4, f"{v:.2f}"))
        out.append(text((x0 + x1) / 2, H - BOTTOM + 15, str(lab)))
    body = svg("".join(out))
    return body + (f"<div style='font-size:13px'>{note}</div>" if note else "")
