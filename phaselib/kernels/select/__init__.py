from .reference import level_offsets, select_reference

__all__ = ["level_offsets", "select_reference"]
