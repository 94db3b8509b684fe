"""`python -m phaselib.bench pyramid-bandwidth`: see `phaselib.bench.kernels`."""

from .kernels import main_bandwidth as main

__all__ = ["main"]
