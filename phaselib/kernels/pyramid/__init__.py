from .reference import (block_centroids, default_levels, leaky_pyramid_reference, pyramid_mask,
                        pyramid_reference)
from .streaming import PyramidState, pyramid_step_reference

__all__ = ["block_centroids", "default_levels", "leaky_pyramid_reference", "pyramid_mask",
           "pyramid_reference", "PyramidState", "pyramid_step_reference"]
