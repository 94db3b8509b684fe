from .reference import block_centroids, leaky_pyramid_reference, pyramid_reference
from .streaming import PyramidState, pyramid_step_reference

__all__ = ["block_centroids", "leaky_pyramid_reference", "pyramid_reference", "PyramidState",
           "pyramid_step_reference"]
