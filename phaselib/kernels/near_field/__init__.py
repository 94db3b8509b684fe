from .banded import near_field_banded
from .reference import near_field_reference
from .streaming import NearFieldState, near_field_step_reference

__all__ = ["near_field_reference", "near_field_banded", "NearFieldState",
           "near_field_step_reference"]
