"""Checkers for the chapters' exercises (in the manner of ARENA and Triton-Puzzles).

Each `check_<name>(fn)` runs the learner's `fn` against the package's reference on
seeded inputs, including awkward ones, and either returns True or raises an
AssertionError that says what is wrong. A function that still raises
NotImplementedError is reported as "not attempted yet" (False), so a notebook with an
unsolved exercise still runs to the end.

The checkers live in one module per topic in this package; every `check_*` function of
every module is re-exported here, so a chapter writes `phaselib.exercises.check_<name>`.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__: list[str] = []

for _info in pkgutil.iter_modules(__path__):
    if _info.name.startswith("_") or _info.name == "catalog":  # a tool, not checkers
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in dir(_mod):
        if _name.startswith("check_"):
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
