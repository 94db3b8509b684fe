"""F2 explorer: weights plus KV cache against the context, for published model shapes.

Book: Part II, "F2 Quadratic pairwise cost". Memory = the weights (fixed) + the KV cache
(linear in the context, `phaselib.kvcache`), at fp16 and batch 1, drawn against the
memory of one GPU: where the line crosses a GPU's line, the context stops fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from ..kvcache import GPU_MEMORY_GB, PUBLISHED_SHAPES, ModelShape, max_tokens
from ._stack import explorer
from ._svg import line_plot

__all__ = ["KVFrame", "kvcache_frame", "kvcache_svg", "kvcache_explorer", "CONTEXTS"]

CONTEXTS = tuple(2 ** k for k in range(10, 21))      # 1K .. 1M tokens
BYTES = 2                                             # fp16 / bf16
GB = 1e9


@dataclass(frozen=True)
class KVFrame:
    model: str
    seq_len: int
    kv_gb: float                 # KV cache, GB (1e9 bytes)
    weights_gb: float            # parameters at the same precision, GB
    max_tokens: dict             # GPU name -> tokens of cache beside the weights


def kvcache_frame(shape: ModelShape, seq_len: int) -> KVFrame:
    """Memory of one sequence of seq_len tokens at fp16 on `shape`; what fits where."""
    if not isinstance(shape, ModelShape):
        raise TypeError(f"shape must be a phaselib.kvcache.ModelShape, "
                        f"got {type(shape).__name__}")
    return KVFrame(shape.name, seq_len, shape.kv_bytes(seq_len, 1, BYTES) / GB,
                   shape.params * BYTES / GB,
                   {g: max_tokens(shape, gb * GB, bytes_per_elem=BYTES)
                    for g, gb in GPU_MEMORY_GB.items()})


def _gpu_lines():
    """One dashed line per distinct GPU memory, one label on the top line for all."""
    sizes = sorted(set(GPU_MEMORY_GB.values()))
    label = "one GPU: " + " / ".join(f"{gb:g}" for gb in sizes) + " GB"
    return [(gb, "#d62728", label if gb == sizes[-1] else "") for gb in sizes]


def kvcache_svg(shape: ModelShape, seq_len: int) -> str:
    """One frame: weights + cache against context, the GPUs' lines, the chosen point."""
    f = kvcache_frame(shape, seq_len)
    xs = [2 ** (k / 2) for k in range(20, 41)]
    total = [f.weights_gb + shape.kv_bytes(round(x), 1, BYTES) / GB for x in xs]
    kv = [shape.kv_bytes(round(x), 1, BYTES) / GB for x in xs]
    fits = [g for g, n in f.max_tokens.items() if n >= seq_len]
    best = max(f.max_tokens.values())
    where = (f"fits on {', '.join(fits)}" if fits else
             "fits on none of these GPUs"
             + ("" if best else " (the weights alone do not)"))
    note = (f"{f.model}, {seq_len:,} tokens: cache {f.kv_gb:.1f} GB + weights "
            f"{f.weights_gb:.0f} GB = {f.kv_gb + f.weights_gb:.1f} GB; {where}. "
            f"Most tokens beside the weights on one GPU: {best:,}.")
    return line_plot([(xs, total, "#1f77b4", "weights + KV cache"),
                      (xs, kv, "#ff7f0e", "KV cache alone")],
                     title=f"{f.model}: memory for one sequence (fp16)",
                     xlabel="context length (tokens)", ylabel="memory (GB)",
                     xlim=(2 ** 10, 2 ** 20), ylim=(0.1, 10000), xlog=True, ylog=True,
                     hlines=_gpu_lines(),
                     points=[(seq_len, f.weights_gb + f.kv_gb, "#1f77b4"),
                             (seq_len, f.kv_gb, "#ff7f0e")], note=note,
                     legend="lower right")


def kvcache_explorer() -> widgets.VBox:
    """A model picker and a context slider; frames of memory against one GPU's."""
    style = {"description_width": "initial"}
    model = widgets.ToggleButtons(options=[s.name for s in PUBLISHED_SHAPES],
                                  value="Llama-3-8B", description="model", style=style)
    context = widgets.SelectionSlider(options=[f"{n:,}" for n in CONTEXTS],
                                      value=f"{2 ** 15:,}", style=style,
                                      description="context (tokens)")
    frames = [[kvcache_svg(s, n) for n in CONTEXTS] for s in PUBLISHED_SHAPES]
    return explorer("kvcache", "Does the KV cache fit on one GPU?", [model, context],
                    frames,
                    hint="Slide the context to 1M tokens for each model; compare "
                         "Llama-2-70B with Llama-3-70B (8 KV heads each) and "
                         "Llama-2-7B (32).")
