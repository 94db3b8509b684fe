"""Transport explorer: turn and stretch b against a fixed a, and read `transport(a, b)`.

Book: Part IV, "Transport between two vectors". In two dimensions the first two entries
of the transport are a tangent vector at a's direction (its length the angle from a to
b, at most pi), the last is log(|b| / |a|). Turning b past 180 degrees shows the angle
wrap and the tangent flip; stretching b moves only the last entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as widgets
import torch

from ..transport import transport
from ._stack import explorer
from ._svg import svg, text

__all__ = ["TransportFrame", "transport_frame", "transport_svg", "transport_explorer"]

ANGLES = tuple(range(0, 361, 15))                 # degrees b is turned from a
LOG2_SCALES = tuple(k / 2 for k in range(-3, 4))  # |b| / |a| = 2 ** s


@dataclass(frozen=True)
class TransportFrame:
    a: tuple[float, float]
    b: tuple[float, float]
    tangent: tuple[float, float]   # transport(a, b)[:2]
    log_length: float              # transport(a, b)[2]
    angle: float                   # |tangent|, radians, in [0, pi]


def transport_frame(turn_deg: float, log2_scale: float,
                    base_deg: float = 20.0) -> TransportFrame:
    """a: the unit vector at base_deg; b: a turned by turn_deg, scaled 2**log2_scale."""
    for name, v in (("turn_deg", turn_deg), ("log2_scale", log2_scale),
                    ("base_deg", base_deg)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) \
                or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    th_a = math.radians(base_deg)
    th_b = th_a + math.radians(turn_deg)
    r = 2.0 ** log2_scale
    a = torch.tensor([math.cos(th_a), math.sin(th_a)], dtype=torch.float64)
    b = r * torch.tensor([math.cos(th_b), math.sin(th_b)], dtype=torch.float64)
    d = transport(a, b, backend="reference")
    tan = (d[0].item(), d[1].item())
    return TransportFrame(tuple(a.tolist()), tuple(b.tolist()), tan, d[2].item(),
                          math.hypot(*tan))


def _arrow(x0, y0, x1, y1, colour, width=2.5) -> str:
    dx, dy = x1 - x0, y1 - y0
    n = math.hypot(dx, dy)
    if n < 1e-9:
        return ""
    ux, uy = dx / n, dy / n
    hx, hy = x1 - 9 * ux, y1 - 9 * uy
    return (f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{hx:.1f}" y2="{hy:.1f}" '
            f'stroke="{colour}" stroke-width="{width}"/>'
            f'<polygon points="{x1:.1f},{y1:.1f} {hx - 4 * uy:.1f},{hy + 4 * ux:.1f} '
            f'{hx + 4 * uy:.1f},{hy - 4 * ux:.1f}" fill="{colour}"/>')


def transport_svg(turn_deg: float, log2_scale: float) -> str:
    """One frame: a (black), b (blue), and the tangent (red) drawn at a's direction."""
    f = transport_frame(turn_deg, log2_scale)
    cx, cy, u = 170, 165, 50                        # centre, px per unit length
    P = lambda x, y: (cx + u * x, cy - u * y)       # noqa: E731
    out = [text(cx, 16, f"b turned {turn_deg:g}° and scaled by {2 ** log2_scale:.2f}",
                extra='font-weight="bold"'),
           f'<circle cx="{cx}" cy="{cy}" r="{u}" fill="none" stroke="#bbb"/>',
           _arrow(*P(0, 0), *P(*f.a), "black"), _arrow(*P(0, 0), *P(*f.b), "#1f77b4"),
           _arrow(*P(*f.a), *P(f.a[0] + f.tangent[0], f.a[1] + f.tangent[1]), "#d62728",
                  2)]
    out.append(text(*(v + 12 for v in P(*f.a)), "a", extra='font-weight="bold"'))
    out.append(text(*(v - 10 for v in P(*f.b)), "b", extra='fill="#1f77b4" '
                                                        'font-weight="bold"'))
    rows = [("angle |tangent|", f"{f.angle:.2f} rad ({math.degrees(f.angle):.0f}°)"),
            ("tangent (red)", f"({f.tangent[0]:+.2f}, {f.tangent[1]:+.2f})"),
            ("log(|b|/|a|)", f"{f.log_length:+.2f}")]
    for i, (k, v) in enumerate(rows):
        out.append(text(345, 60 + 34 * i, k, extra='fill="#555"'))
        out.append(text(345, 76 + 34 * i, v, extra='font-weight="bold"'))
    out.append(text(cx, 325, "grey: the unit circle; red: the tangent at a, its length "
                    "the angle in radians", extra='fill="#555"'))
    return svg("".join(out), 440, 335)


def transport_explorer() -> widgets.VBox:
    """Sliders for b's turn (degrees) and length ratio; frames of transport(a, b)."""
    style = {"description_width": "initial"}
    turn = widgets.SelectionSlider(options=[f"{d}°" for d in ANGLES], value="60°",
                                   description="turn b by", style=style)
    scale = widgets.SelectionSlider(options=[f"{2 ** s:.2f}" for s in LOG2_SCALES],
                                    value="1.00", description="|b| / |a|", style=style)
    frames = [[transport_svg(d, s) for s in LOG2_SCALES] for d in ANGLES]
    return explorer("transport", "Transport from a to b", [turn, scale], frames,
                    hint="Turn b past 180° and watch the angle shrink again and the "
                         "tangent flip; stretch b and only the last entry moves.")
