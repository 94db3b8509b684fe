"""Plot helpers: pure functions that draw on an `ax` they are given.

Importing this module changes no global matplotlib state.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_loglog_slope", "plot_attention", "plot_loglog"]


def fit_loglog_slope(xs, ys) -> tuple[float, float]:
    """Least-squares fit of log y = slope * log x + c; returns (slope, c)."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    slope, c = np.polyfit(lx, ly, 1)
    return float(slope), float(c)


def plot_attention(ax, weights, labels=None, title: str = "", cmap: str = "viridis",
                   colorbar: bool = False):
    """Draw one attention pattern [Tq, Tk] (rows: queries, columns: keys), its colours
    scaled from 0 to the pattern's largest weight; with `colorbar`, a scale beside it."""
    w = np.asarray(weights, float)
    if w.ndim != 2:
        raise ValueError(f"weights must be a [Tq, Tk] matrix, got shape {w.shape}")
    im = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=max(1e-9, float(w.max())), aspect="auto")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="attention weight")
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
    if title:
        ax.set_title(title)
    return im


def plot_loglog(ax, xs, ys, label: str, fit: bool = True, **kw):
    """Plot ys against xs on log-log axes; with fit, add the slope to the label."""
    slope = None
    if fit and len(xs) >= 2:
        slope, _ = fit_loglog_slope(xs, ys)
        label = f"{label} (slope {slope:.2f})"
    ax.loglog(xs, ys, marker="o", label=label, **kw)
    return slope
