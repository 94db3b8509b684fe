"""Streaming explorer: what the pyramid carries between tokens against a KV cache.

Book: Part IV, "Streaming". After T tokens one attention layer keeps 2 T D numbers (its
keys and values); the streaming pyramid keeps a `PyramidState` of O(L D) numbers with
L = log2 T levels. The frame draws both against T and marks the chosen context.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from .._checks import check_positive_int
from .._levels import default_levels
from ..kernels.pyramid.streaming import PyramidState
from ._stack import explorer
from ._svg import line_plot

__all__ = ["StreamFrame", "streaming_frame", "streaming_svg", "streaming_explorer",
           "CONTEXTS"]

CONTEXTS = tuple(2 ** k for k in range(4, 21))       # 16 .. 1M tokens
FP32 = 4


@dataclass(frozen=True)
class StreamFrame:
    T: int
    dim: int
    levels: int
    kv_bytes: int         # one layer's keys and values after T tokens, fp32
    state_bytes: int      # the streaming pyramid's state after T tokens, fp32


def streaming_frame(T: int, dim: int = 64) -> StreamFrame:
    """Bytes carried between tokens after T tokens: KV cache vs pyramid state."""
    check_positive_int("T", T)
    check_positive_int("dim", dim)
    L = default_levels(T)
    state = PyramidState.zeros(1, L, dim).nbytes()
    return StreamFrame(T, dim, L, 2 * T * dim * FP32, state)


def streaming_svg(T: int, dim: int = 64) -> str:
    """One frame: both memories against the context on log axes, the chosen T marked."""
    f = streaming_frame(T, dim)
    rows = [streaming_frame(t, dim) for t in CONTEXTS]
    kib = 2 ** 10
    note = (f"T = {T:,} tokens, D = {dim}: the KV cache holds "
            f"{f.kv_bytes / kib:,.1f} KiB ({2 * dim * FP32} bytes for every token), "
            f"the pyramid {f.state_bytes / kib:.1f} KiB in {f.levels} levels "
            f"({f.state_bytes / T:,.2f} bytes per token of context): "
            f"{f.kv_bytes / f.state_bytes:,.1f} times less.")
    return line_plot([(CONTEXTS, [r.kv_bytes / kib for r in rows], "#1f77b4",
                       "attention: KV cache"),
                      (CONTEXTS, [r.state_bytes / kib for r in rows], "#2ca02c",
                       "streaming pyramid: state")],
                     title=f"Memory carried between tokens (1 layer, D = {dim}, fp32)",
                     xlabel="context length T (tokens)", ylabel="state (KiB)",
                     xlim=(CONTEXTS[0], CONTEXTS[-1]), ylim=(1, 1e6), xlog=True,
                     ylog=True, points=[(T, f.kv_bytes / kib, "#1f77b4"),
                                        (T, f.state_bytes / kib, "#2ca02c")], note=note)


def streaming_explorer(dim: int = 64) -> widgets.VBox:
    """A context slider (powers of two); frames of KV cache against pyramid state."""
    check_positive_int("dim", dim)
    context = widgets.SelectionSlider(options=[f"{n:,}" for n in CONTEXTS],
                                      value=f"{2 ** 10:,}",
                                      description="context T (tokens)",
                                      style={"description_width": "initial"})
    frames = [streaming_svg(n, dim) for n in CONTEXTS]
    return explorer("streaming", "What does each method carry to the next token?",
                    [context], frames,
                    hint="Each step right doubles T: the cache doubles, the state "
                         "gains one level.")
