"""Explorers for the book: each control tied to a Stack of precomputed frames.

Book: the chapters' "Explore" sections. Each `*_explorer(...)` returns an ipywidgets box
(CSS class `phaselib-explorer`) whose controls work in the built page with no kernel
(`jslink` to a `Stack` of frames); each frame comes from a pure `*_frame(...)` function
that the tests check on its own, drawn as a small SVG by `*_svg(...)`.
"""

from ._stack import CSS_CLASS, index_of, visible_frame
from .kvcache import kvcache_explorer, kvcache_frame
from .pyramid import pyramid_explorer, pyramid_frame
from .salience import salience_explorer, salience_frame
from .selection import selection_explorer, selection_frame
from .streaming import streaming_explorer, streaming_frame
from .transport import transport_explorer, transport_frame

__all__ = ["CSS_CLASS", "index_of", "visible_frame",
           "pyramid_explorer", "pyramid_frame", "transport_explorer", "transport_frame",
           "salience_explorer", "salience_frame", "kvcache_explorer", "kvcache_frame",
           "streaming_explorer", "streaming_frame", "selection_explorer",
           "selection_frame"]
